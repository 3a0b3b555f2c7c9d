"""The simulator's real (cheap) video edit: fetch, check, decode, restyle by keyword, encode.

Keywords in the prompt (case-insensitive) pick the look; several may combine:

- "monochrome" / "black and white" / "grayscale" / "greyscale" -> gray
- "sepia" -> sepia tone
- "invert" / "negative" -> inverted colours
- "warm" / "cool" -> colour grade (warmer = more red, cooler = more blue)
- "mirror" / "flip" -> horizontal mirror
- none of the colour keywords above (mirror alone counts as a look) -> default grade:
  boosted saturation + vignette, so every output differs visibly from its input

``aspect_ratio`` ("16:9", "9:16", "1:1") centre-crops to that ratio (even dimensions). A reference
image is scaled to a quarter of the output width and composited into the TOP-RIGHT corner with
an 8 px margin (see :func:`thumbnail_box`). The output is H.264 yuv420p MP4, with AAC audio only
when audio is kept and the input has some. Like the model (``devstack.simulator.limits``), the
output runs at 24 fps whatever the input's rate (pictures repeated or dropped by their timestamps)
and lasts as long as the input (within half an output frame); a rotated input (display matrix) is
edited and returned as a player shows it.
"""

from __future__ import annotations

import base64
import io
import re
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import httpx
import numpy as np
from PIL import Image

from devstack.simulator.limits import OUTPUT_FPS, VideoFacts

MP4_FORMAT_NAMES = ("mov", "mp4")
IMAGE_FORMATS = ("JPEG", "PNG", "WEBP")


class MediaError(Exception):
    """A problem with the task's inputs; the task ends failed with ``code``."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(code, message)  # both in args: it crosses the edit process pool
        self.code = code
        self.message = message

    def __str__(self) -> str:
        return self.message


@dataclass
class EditSpec:
    prompt: str
    keep_audio: bool = False
    aspect_ratio: str | None = None
    reference_image: bytes | None = None


def fetch(url: str, *, max_bytes: int, timeout: float = 30.0, what: str = "video") -> bytes:
    """Download ``url`` (http(s) or data: URI) into memory, at most ``max_bytes``."""
    if url.startswith("data:"):
        try:
            header, _, payload = url.partition(",")
            if header.endswith(";base64"):
                data = base64.b64decode(payload, validate=False)
            else:
                data = urllib.parse.unquote_to_bytes(payload)
        except ValueError as exc:
            raise MediaError(f"{what}_download_failed", f"invalid data URI: {exc}") from exc
        if len(data) > max_bytes:
            raise MediaError(f"{what}_too_large", f"{what} exceeds {max_bytes} bytes")
        return data
    try:
        with (
            httpx.Client(timeout=timeout, follow_redirects=True) as client,
            client.stream("GET", url) as resp,
        ):
            if resp.status_code != 200:
                raise MediaError(
                    f"{what}_download_failed",
                    f"could not fetch {what}: HTTP {resp.status_code}",
                )
            length = resp.headers.get("content-length")
            if length is not None and length.isdigit() and int(length) > max_bytes:
                raise MediaError(f"{what}_too_large", f"{what} exceeds {max_bytes} bytes")
            buf = bytearray()
            for chunk in resp.iter_bytes():
                buf.extend(chunk)
                if len(buf) > max_bytes:
                    raise MediaError(f"{what}_too_large", f"{what} exceeds {max_bytes} bytes")
            return bytes(buf)
    except httpx.HTTPError as exc:
        raise MediaError(
            f"{what}_download_failed", f"could not fetch {what}: {type(exc).__name__}: {exc}"
        ) from exc


def probe_video_bytes(data: bytes) -> float:
    """Check the bytes are an MP4/MOV with a video stream; return its duration in seconds."""
    try:
        with av.open(io.BytesIO(data)) as c:
            names = c.format.name.split(",")
            if not any(n in MP4_FORMAT_NAMES for n in names) or not c.streams.video:
                raise MediaError("unsupported_video_format", "input must be an .mp4 or .mov video")
            if c.duration is not None:
                return c.duration / 1_000_000
            v = c.streams.video[0]
            if v.duration is not None and v.time_base is not None:
                return float(v.duration * v.time_base)
            return 0.0
    except MediaError:
        raise
    except (av.FFmpegError, ValueError, OSError) as exc:
        raise MediaError(
            "unsupported_video_format", f"input is not a readable video: {exc}"
        ) from exc


def video_facts(data: bytes) -> VideoFacts:
    """The facts the model's limits are about (``limits.VideoFacts``) for an MP4/MOV in memory.
    Raises ``MediaError`` (``unsupported_video_format``) as ``probe_video_bytes`` does."""
    seconds = probe_video_bytes(data)
    try:
        with av.open(io.BytesIO(data)) as c:
            v = c.streams.video[0]
            width, height = v.codec_context.width, v.codec_context.height
            rate = v.average_rate or v.guessed_rate
        if _quarter_turns(data) % 2:
            width, height = height, width
    except (av.FFmpegError, ValueError, OSError) as exc:
        raise MediaError(
            "unsupported_video_format", f"input is not a readable video: {exc}"
        ) from exc
    return VideoFacts(
        seconds=seconds,
        width=width,
        height=height,
        fps=float(rate) if rate else None,
        size_bytes=len(data),
    )


def check_image_bytes(data: bytes) -> Image.Image:
    try:
        img = Image.open(io.BytesIO(data))
        img.load()
    except Exception as exc:
        raise MediaError("unsupported_image_format", f"reference image unreadable: {exc}") from exc
    if img.format not in IMAGE_FORMATS:
        raise MediaError(
            "unsupported_image_format", f"reference image format {img.format} not supported"
        )
    return img.convert("RGB")


# --- looks -------------------------------------------------------------------------------------

_SEPIA = np.array(
    [[0.393, 0.769, 0.189], [0.349, 0.686, 0.168], [0.272, 0.534, 0.131]], dtype=np.float32
)


def looks_for(prompt: str) -> list[str]:
    p = prompt.lower()
    looks: list[str] = []
    if re.search(r"monochrome|black[\s-]*(and|&)[\s-]*white|gr[ae]y\s*scale", p):
        looks.append("gray")
    if "sepia" in p:
        looks.append("sepia")
    if "invert" in p or "negative" in p:
        looks.append("invert")
    if "warm" in p:
        looks.append("warm")
    if "cool" in p:
        looks.append("cool")
    if "mirror" in p or "flip" in p:
        looks.append("mirror")
    if not looks:
        looks.append("default")
    return looks


def crop_box(width: int, height: int, aspect_ratio: str | None) -> tuple[int, int, int, int]:
    """(x, y, w, h) of the centre crop for ``aspect_ratio``, even sizes."""
    if not aspect_ratio:
        w, h = width, height
    else:
        a, b = (int(x) for x in aspect_ratio.split(":"))
        if width * b > height * a:  # too wide
            h = height
            w = height * a // b
        else:
            w = width
            h = width * b // a
    w -= w % 2
    h -= h % 2
    w, h = max(w, 2), max(h, 2)
    return (width - w) // 2, (height - h) // 2, w, h


def thumbnail_box(width: int, height: int) -> tuple[int, int, int, int]:
    """(x, y, w, h) of the reference-image thumbnail in an output of ``width`` x ``height``."""
    tw = max(8, width // 4)
    th = max(8, min(height // 3, tw))
    margin = 8 if width > 64 and height > 64 else 0
    return width - tw - margin, margin, tw, th


class _Styler:
    def __init__(self, looks: list[str], width: int, height: int) -> None:
        self.looks = looks
        self.vignette: np.ndarray | None = None
        if "default" in looks:
            y = np.linspace(-1, 1, height, dtype=np.float32)[:, None]
            x = np.linspace(-1, 1, width, dtype=np.float32)[None, :]
            r2 = x * x + y * y
            self.vignette = np.clip(1.0 - 0.45 * r2, 0.35, 1.0)[:, :, None]

    def __call__(self, rgb: np.ndarray) -> np.ndarray:
        looks = self.looks
        colour = [x for x in looks if x != "mirror"]
        if colour:
            img = rgb.astype(np.float32)
            for look in colour:
                if look == "gray":
                    y = img @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
                    img = np.repeat(y[:, :, None], 3, axis=2)
                elif look == "sepia":
                    img = img @ _SEPIA.T
                elif look == "invert":
                    img = 255.0 - img
                elif look == "warm":
                    img = img * np.array([1.2, 1.05, 0.75], dtype=np.float32)
                elif look == "cool":
                    img = img * np.array([0.75, 0.95, 1.2], dtype=np.float32)
                elif look == "default":
                    mean = img.mean(axis=2, keepdims=True)
                    img = mean + (img - mean) * 1.6
                    assert self.vignette is not None
                    img = img * self.vignette
            rgb = np.clip(img, 0, 255).astype(np.uint8)
        if "mirror" in looks:
            rgb = rgb[:, ::-1, :]
        return rgb


class _FrameEditor:
    """What happens to each picture: centre crop to the aspect ratio, restyle, then the reference
    thumbnail composited in (see :func:`crop_box` and :func:`thumbnail_box`)."""

    def __init__(
        self,
        looks: list[str],
        width: int,
        height: int,
        aspect_ratio: str | None,
        thumb_img: Image.Image | None,
    ) -> None:
        self.input_size = (width, height)
        self.x, self.y, self.width, self.height = crop_box(width, height, aspect_ratio)
        self.styler = _Styler(looks, self.width, self.height)
        self.thumb: tuple[int, int, np.ndarray] | None = None
        if thumb_img is not None:
            tx, ty, tw, th = thumbnail_box(self.width, self.height)
            self.thumb = (tx, ty, np.asarray(thumb_img.resize((tw, th)), dtype=np.uint8))

    def __call__(self, rgb: np.ndarray) -> np.ndarray:
        """One decoded RGB picture, edited (C-contiguous, as ``VideoFrame.from_ndarray`` wants)."""
        x, y, w, h = self.x, self.y, self.width, self.height
        if (w, h) != self.input_size:
            rgb = rgb[y : y + h, x : x + w]
        rgb = self.styler(rgb)
        if self.thumb is not None:
            tx, ty, arr = self.thumb
            rgb = np.ascontiguousarray(rgb)
            rgb[ty : ty + arr.shape[0], tx : tx + arr.shape[1]] = arr
        return np.ascontiguousarray(rgb)


def _add_video_stream(out: av.container.OutputContainer, width: int, height: int) -> av.VideoStream:
    """The output's H.264 yuv420p stream at ``OUTPUT_FPS`` (ultrafast, CRF 20)."""
    vout = out.add_stream("libx264", rate=OUTPUT_FPS)
    vout.width = width
    vout.height = height
    vout.pix_fmt = "yuv420p"
    vout.options = {"preset": "ultrafast", "crf": "20"}
    return vout


def _add_audio_stream(out: av.container.OutputContainer, ain: av.AudioStream) -> av.AudioStream:
    """The output's AAC stream: the input's sample rate (48 kHz if unknown), mono or stereo."""
    layout = ain.codec_context.layout.name or "stereo"
    if layout not in ("mono", "stereo"):
        layout = "stereo"
    return out.add_stream("aac", rate=ain.codec_context.sample_rate or 48000, layout=layout)


def _mux(out: av.container.OutputContainer, packets: list[av.Packet[Any]]) -> None:
    """Write ``packets`` (an encoder's output) into ``out``."""
    for pkt in packets:
        out.mux(pkt)


def _quarter_turns(data: bytes) -> int:
    """Counter-clockwise quarter turns a player applies to the video (its display matrix), 0..3,
    read from the first decoded picture (PyAV exposes the matrix per frame)."""
    with av.open(io.BytesIO(data)) as inp:
        for frame in inp.decode(video=0):
            return _turns(frame)
    return 0


def _turns(frame: av.VideoFrame) -> int:
    return round((frame.rotation or 0) / 90) % 4


def _container_seconds(inp: av.container.InputContainer, vin: av.VideoStream) -> float | None:
    """The input's duration as its index gives it (the container's, else the video stream's)."""
    if inp.duration is not None and inp.duration > 0:
        return inp.duration / 1_000_000
    if vin.duration and vin.time_base is not None:
        return float(vin.duration * vin.time_base)
    return None


class _Resampler:
    """Turns the input's pictures (at their own timestamps) into a constant ``OUTPUT_FPS`` stream.

    Output slot ``k`` (time ``k / OUTPUT_FPS``) shows the last input picture whose time, measured
    from the first picture, is at most ``(k + 1/2) / OUTPUT_FPS`` (the nearest-slot rule of
    FFmpeg's ``fps`` filter): pictures are repeated or dropped, never blended. ``slots`` output
    pictures are written, ``round(duration * OUTPUT_FPS)``, so the output lasts the input's
    duration within half an output frame; when the index gives no duration, the last picture's
    end time is used.
    """

    def __init__(
        self,
        out: av.container.OutputContainer,
        vout: av.VideoStream,
        edit: _FrameEditor,
        seconds: float | None,
    ) -> None:
        self.out, self.vout, self.edit = out, vout, edit
        self.slots = max(1, round(seconds * OUTPUT_FPS)) if seconds is not None else None
        self.written = 0
        self.origin: float | None = None
        self.last_time = 0.0
        self.last_step = float(1 / OUTPUT_FPS)
        self.pending: av.VideoFrame | None = None
        self.pending_rgb: np.ndarray | None = None

    def add(self, frame: av.VideoFrame) -> None:
        """Take the next decoded input picture; write the output slots that end before it."""
        if frame.time is None:  # no timestamp: one picture after the last
            rel = self.last_time + self.last_step if self.pending is not None else 0.0
        else:
            if self.origin is None:
                self.origin = float(frame.time)
            rel = float(frame.time) - self.origin
        if self.pending is not None and rel > self.last_time:
            self.last_step = rel - self.last_time
        while self.pending is not None and rel > (self.written + 0.5) / OUTPUT_FPS:
            if self.slots is not None and self.written >= self.slots:
                return
            self._write()
        self.pending, self.pending_rgb, self.last_time = frame, None, rel

    def finish(self) -> int:
        """Write the remaining slots (holding the last picture) and flush; the pictures written."""
        if self.pending is not None:
            slots = self.slots
            if slots is None:
                slots = max(1, round((self.last_time + self.last_step) * OUTPUT_FPS))
            while self.written < slots:
                self._write()
        _mux(self.out, self.vout.encode())
        return self.written

    def _write(self) -> None:
        assert self.pending is not None
        if self.pending_rgb is None:
            rgb = self.pending.to_ndarray(format="rgb24")
            turns = _turns(self.pending)  # shown as a player shows it, as the model receives it
            if turns:
                rgb = np.ascontiguousarray(np.rot90(rgb, k=turns))
            self.pending_rgb = self.edit(rgb)
        vf = av.VideoFrame.from_ndarray(self.pending_rgb, format="rgb24")
        vf.pts = self.written
        vf.time_base = 1 / OUTPUT_FPS
        self.written += 1
        _mux(self.out, self.vout.encode(vf))


def _transcode(
    inp: av.container.InputContainer,
    out: av.container.OutputContainer,
    vin: av.VideoStream,
    ain: av.AudioStream | None,
    edit: _FrameEditor,
) -> tuple[int, bool]:
    """Decode ``vin`` (and ``ain``, if kept), edit each picture, encode and mux into ``out`` at
    ``OUTPUT_FPS`` for the input's duration (see ``_Resampler``). Returns the number of video
    frames written and whether an audio stream was."""
    vout = _add_video_stream(out, edit.width, edit.height)
    aout = _add_audio_stream(out, ain) if ain is not None else None
    pictures = _Resampler(out, vout, edit, _container_seconds(inp, vin))
    streams = [vin] + ([ain] if ain is not None else [])
    for frame in inp.decode(*streams):
        if isinstance(frame, av.VideoFrame):
            pictures.add(frame)
        elif aout is not None:
            frame.pts = None
            _mux(out, aout.encode(frame))
    n = pictures.finish()
    if aout is not None:
        _mux(out, aout.encode())
    return n, aout is not None


def edit_video(data: bytes, output: Path, spec: EditSpec) -> dict[str, object]:
    """Decode ``data`` (an MP4/MOV), restyle it per ``spec``, write H.264 MP4 to ``output``."""
    thumb_img = check_image_bytes(spec.reference_image) if spec.reference_image else None
    looks = looks_for(spec.prompt)
    tmp = output.with_name(output.name + ".part")
    try:
        with av.open(io.BytesIO(data)) as inp:
            vin = inp.streams.video[0]
            vin.thread_type = "AUTO"
            ain = inp.streams.audio[0] if (spec.keep_audio and inp.streams.audio) else None
            ctx = vin.codec_context
            width, height = ctx.width, ctx.height
            if _quarter_turns(data) % 2:  # shown portrait: edit the picture as displayed
                width, height = height, width
            edit = _FrameEditor(looks, width, height, spec.aspect_ratio, thumb_img)
            with av.open(str(tmp), "w", format="mp4") as out:
                n, audio = _transcode(inp, out, vin, ain, edit)
        if n == 0:
            raise MediaError("unsupported_video_format", "input video has no decodable frames")
        tmp.replace(output)
    except MediaError:
        tmp.unlink(missing_ok=True)
        raise
    except (av.FFmpegError, ValueError, OSError) as exc:
        tmp.unlink(missing_ok=True)
        raise MediaError("video_processing_failed", f"could not process video: {exc}") from exc
    return {"looks": looks, "width": edit.width, "height": edit.height, "frames": n, "audio": audio}
