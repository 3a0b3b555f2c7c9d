"""What a video file holds, read from its header (no decoding): for checks and tests."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Any

import av

from dropcut_media._av import open_input, rotation_of, stream_duration
from dropcut_media.errors import MediaUnreadable

#: How many pictures of an edited video must decode before it is stored: a provider's result
#: with valid boxes and random media data was stored as a success (issue 26, item 9).
DECODE_CHECK_FRAMES = 3
#: Packets read at most while looking for them (a decoder holds a few back for reordering).
DECODE_CHECK_PACKETS = 48


def describe(path: Path) -> dict[str, Any]:
    """The facts of the video at ``path``, as plain data.

    Keys: ``duration_seconds`` (float: the video stream's, else the container's), ``width`` and
    ``height`` (int: as displayed, the rotation applied), ``coded_width``/``coded_height`` (as
    stored), ``fps`` (float: average frame rate, 0.0 if unknown), ``frames`` (int: from the index,
    0 if unknown), ``video_codec`` (e.g. "h264", "hevc"), ``pix_fmt`` (e.g. "yuv420p"),
    ``rotation`` (int degrees counterclockwise, as FFmpeg reads the display matrix: a phone held
    upright records -90 or 90), ``has_audio`` (bool), ``audio_codec`` (str or None),
    ``audio_duration_seconds`` (float or None), ``format`` (the container's names), ``size_bytes``.

    Raises MediaUnreadable if the file cannot be opened or has no video stream. The rotation is
    read from the first decoded frame's display matrix when the stream header does not carry it
    (PyAV exposes it on frames only), so one frame is decoded.
    """
    with open_input(path) as container:
        video = container.streams.video[0]
        ctx = video.codec_context
        rotation = rotation_of(container, video)
        swap = rotation % 180 != 0
        audio = container.streams.audio[0] if container.streams.audio else None
        duration = stream_duration(video)
        if duration is None and container.duration is not None:
            duration = Fraction(container.duration, av.time_base)
        return {
            "duration_seconds": float(duration or 0.0),
            "width": ctx.height if swap else ctx.width,
            "height": ctx.width if swap else ctx.height,
            "coded_width": ctx.width,
            "coded_height": ctx.height,
            "fps": float(video.average_rate) if video.average_rate else 0.0,
            "frames": int(video.frames or 0),
            "video_codec": ctx.name,
            "pix_fmt": ctx.pix_fmt,
            "rotation": rotation,
            "has_audio": audio is not None,
            "audio_codec": audio.codec_context.name if audio is not None else None,
            "audio_duration_seconds": (
                float(stream_duration(audio) or 0.0) if audio is not None else None
            ),
            "format": container.format.name,
            "size_bytes": Path(path).stat().st_size,
        }


def check_decodes(path: Path, *, frames: int = DECODE_CHECK_FRAMES) -> int:
    """Decode the first ``frames`` pictures of the video at ``path`` (all of them when it has
    fewer); the number decoded. One decode thread, at most DECODE_CHECK_PACKETS packets read.

    Raises MediaUnreadable when the file does not open, a packet does not decode, or no
    picture comes out: a file whose MP4 boxes are valid and whose media data is not.
    """
    decoded = 0
    with open_input(path) as container:
        video = container.streams.video[0]
        video.thread_type = "NONE"
        try:
            for read, packet in enumerate(container.demux(video), start=1):
                decoded += len(packet.decode())  # the last, empty packet flushes the decoder
                if decoded >= frames or read >= DECODE_CHECK_PACKETS:
                    break
        except av.FFmpegError as exc:
            raise MediaUnreadable(
                f"{Path(path).name}: its picture does not decode ({exc})"
            ) from exc
    if decoded == 0:
        raise MediaUnreadable(f"{Path(path).name}: no picture decodes")
    return decoded
