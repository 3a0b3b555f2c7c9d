"""A before/after picture: a row of the input's frames above a row of the output's, at the same
times, each labelled with its time. Frames are found by seeking (to the keyframe before each
time, then decoding forward to it), so a long video is not decoded whole."""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

import av
from av.container import InputContainer
from av.video.frame import VideoFrame
from PIL import Image, ImageDraw, ImageFont

from dropcut_media._av import FrameClock, open_input, rotation_of
from dropcut_media.errors import MediaPlanInvalid, MediaUnreadable

LABEL_HEIGHT = 18  # pixels of caption above each row's pictures
ROW_TITLE_WIDTH = 64  # pixels of "before"/"after" at each row's left
GAP = 4
EPSILON = Fraction(1, 100_000)  # seconds: a time given as a float still finds its frame
BACKGROUND = (24, 24, 24)
INK = (235, 235, 235)
#: Pillow rotates counterclockwise: the display matrix's rotation is counterclockwise too.
_TRANSPOSE = {
    90: Image.Transpose.ROTATE_90,
    -90: Image.Transpose.ROTATE_270,
    180: Image.Transpose.ROTATE_180,
    -180: Image.Transpose.ROTATE_180,
}


def contact_sheet(
    before: Path, after: Path, png_out: Path, *, times: Sequence[float], thumb_width: int = 320
) -> None:
    """Write ``png_out``: the frame of ``before`` (top row) and of ``after`` (bottom row) shown at
    each of ``times`` (seconds from each video's first frame; a time past a video's end shows
    its last frame), ``thumb_width`` pixels wide each, as displayed (rotation applied), each
    captioned with its time.

    Raises MediaUnreadable (either video cannot be read) and MediaPlanInvalid (no times).
    """
    if not times:
        raise MediaPlanInvalid("a contact sheet needs at least one time")
    rows = [
        ("before", _thumbnails(before, times, thumb_width)),
        ("after", _thumbnails(after, times, thumb_width)),
    ]
    heights = [max(t.height for t in thumbs) for _, thumbs in rows]
    width = ROW_TITLE_WIDTH + len(times) * (thumb_width + GAP) + GAP
    height = sum(LABEL_HEIGHT + h + GAP for h in heights) + GAP
    sheet = Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default()
    y = GAP
    for (title, thumbs), row_height in zip(rows, heights, strict=True):
        draw.text((GAP, y + LABEL_HEIGHT + row_height // 2 - 6), title, fill=INK, font=font)
        for column, (when, thumb) in enumerate(zip(times, thumbs, strict=True)):
            x = ROW_TITLE_WIDTH + column * (thumb_width + GAP)
            draw.text((x, y + 3), f"{when:.2f} s", fill=INK, font=font)
            sheet.paste(thumb, (x, y + LABEL_HEIGHT + (row_height - thumb.height) // 2))
        y += LABEL_HEIGHT + row_height + GAP
    png_out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(png_out, format="PNG", optimize=False)


def _thumbnails(path: Path, times: Sequence[float], width: int) -> list[Image.Image]:
    with open_input(path) as container:
        video = container.streams.video[0]
        rotation = rotation_of(container, video)
        thumbs = []
        for when in times:
            frame = frame_at(container, Fraction(when).limit_denominator(1_000_000))
            # PyAV 19.0.2's stub leaves to_image untyped; it returns a PIL image.
            picture: Image.Image = frame.to_image()  # type: ignore[no-untyped-call]
            if rotation in _TRANSPOSE:
                picture = picture.transpose(_TRANSPOSE[rotation])
            height = max(2, round(picture.height * width / picture.width))
            thumbs.append(picture.resize((width, height), Image.Resampling.BILINEAR))
        return thumbs


def frame_at(container: InputContainer, when: Fraction) -> VideoFrame:
    """The frame of the container's first video stream shown at ``when`` seconds from its first
    frame (the latest presented at or before it; the last frame past the end; the first before
    the start). Seeks to the keyframe at or before ``when``, then decodes forward."""
    video = container.streams.video[0]
    clock = FrameClock(video)
    target = max(0, int(when / clock.time_base)) + clock.origin
    container.seek(target, stream=video, backward=True, any_frame=False)
    shown: VideoFrame | None = None
    try:
        for frame in container.decode(video):
            if shown is not None and clock.time(frame) > when + EPSILON:
                break
            shown = frame
    except av.FFmpegError as exc:
        raise MediaUnreadable(f"{Path(container.name).name} could not be decoded ({exc})") from exc
    if shown is None:
        raise MediaUnreadable(f"{Path(container.name).name} has no decodable frame")
    return shown
