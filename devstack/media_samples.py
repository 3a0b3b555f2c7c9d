"""Synthetic clips for the media layer's tests, benchmark and demo: each second (or each shot)
has its own solid colour, so any frame tells where in the input it came from.

    make_colour_clip(path, seconds=31, width=320, height=240, fps=30)
    colour_of(clip_second) -> (r, g, b)

A white square marks the stored picture's top-left corner (to check rotation), and a mono 440 Hz
tone is the audio. Codec, pixel format, container and display rotation are chosen freely (e.g.
a phone-style HEVC 10-bit MOV with rotation 90).
"""

from __future__ import annotations

import colorsys
from collections.abc import Callable, Sequence
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np

from devstack.media import TONE_RATE
from dropcut_media._av import exact_rate

MARK = 0.15  # the corner marker's side, as a share of the smaller side


def colour_of(index: int) -> tuple[int, int, int]:
    """A distinct, saturated colour for second (or shot) ``index``: hues 137.5 degrees apart,
    alternating brightness, far apart in both RGB and luma for consecutive indices."""
    hue = (index * 0.381966) % 1.0
    value = 0.95 if index % 2 == 0 else 0.55
    r, g, b = colorsys.hsv_to_rgb(hue, 0.9, value)
    return round(r * 255), round(g * 255), round(b * 255)


def by_second(t: float) -> int:
    """The colour index of the input's second ``t`` falls in (the default)."""
    return int(t)


def shots(changes: Sequence[float]) -> Callable[[float], int]:
    """A colour index that changes only at the given times (seconds): one shot between each."""
    ordered = sorted(changes)

    def index(t: float) -> int:
        return sum(1 for c in ordered if t >= c - 1e-9)

    return index


def make_colour_clip(
    path: str | Path,
    *,
    seconds: float = 4.0,
    width: int = 320,
    height: int = 240,
    fps: float | Fraction = 30,
    audio: bool = True,
    colour_index: Callable[[float], int] = by_second,
    codec: str = "libx264",
    pix_fmt: str = "yuv420p",
    container_format: str = "mp4",
    rotation: int = 0,
    gop: int | None = None,
    preset: str = "ultrafast",
    audio_rate: int = TONE_RATE,
    stereo: bool = False,
    audio_start: float = 0.0,
    audio_seconds: float | None = None,
    audio_codec: str = "aac",
) -> Path:
    """Write a clip whose frame at time t is colour_of(colour_index(t)), with a white square in
    the stored picture's top-left corner; ``rotation`` (degrees counterclockwise) is written as
    the display matrix; ``gop`` frames between keyframes (the encoder's default if None);
    ``preset`` x264's (ultrafast has no B-frames, faster presets do). The tone: ``audio_rate``
    Hz, mono or ``stereo``, starting ``audio_start`` s after the first frame and lasting
    ``audio_seconds`` (the video's length if None), in ``audio_codec`` (e.g. pcm_s16le in a
    MOV)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rate = exact_rate(fps)
    count = max(1, round(seconds * rate))
    side = max(2, int(min(width, height) * MARK))
    with av.open(str(path), "w", format=container_format) as out:
        stream: Any = out.add_stream(codec, rate=rate)
        stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
        options = {"preset": preset}
        if codec == "libx265":
            options["x265-params"] = "log-level=error"
        stream.options = options
        if gop:
            stream.codec_context.gop_size = gop
        if rotation:
            stream.set_display_rotation(rotation)
        layout = "stereo" if stereo else "mono"
        tone = out.add_stream(audio_codec, rate=audio_rate, layout=layout) if audio else None
        cached: dict[int, Any] = {}
        for i in range(count):
            index = colour_index(float(i / rate))
            if index not in cached:
                picture = np.empty((height, width, 3), dtype=np.uint8)
                picture[:] = colour_of(index)
                picture[:side, :side] = 255
                cached = {index: av.VideoFrame.from_ndarray(picture, format="rgb24")}
            frame = cached[index].reformat(format=pix_fmt)
            frame.pts = i
            frame.time_base = 1 / rate
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
        if tone is not None:
            length = float(count / rate) if audio_seconds is None else audio_seconds
            _tone(out, tone, length, rate=audio_rate, layout=layout, start=audio_start)
    return path


def _tone(out: Any, stream: Any, seconds: float, *, rate: int, layout: str, start: float) -> None:
    """A 440 Hz sine of ``seconds`` starting ``start`` s into the file, into ``stream``."""
    channels = 2 if layout == "stereo" else 1
    total = int(seconds * rate)
    offset = round(start * rate)
    for first in range(0, total, 1024):
        count = min(1024, total - first)
        t = np.arange(first, first + count, dtype=np.float32) / rate
        samples = (0.3 * np.sin(2 * np.pi * 440.0 * t)).astype(np.float32)
        planar = np.repeat(samples[None, :], channels, axis=0)
        if stream.codec_context.name.startswith("pcm_s16"):
            interleaved = (planar.T.reshape(1, -1) * 32767).astype(np.int16)
            frame = av.AudioFrame.from_ndarray(interleaved, format="s16", layout=layout)
        else:
            frame = av.AudioFrame.from_ndarray(planar, format="fltp", layout=layout)
        frame.sample_rate = rate
        frame.pts = offset + first
        frame.time_base = Fraction(1, rate)
        for packet in stream.encode(frame):
            out.mux(packet)
    for packet in stream.encode():
        out.mux(packet)


def mean_colour(rgb: np.ndarray) -> tuple[int, int, int]:
    """The mean colour of a picture's centre (away from the corner mark and any bars)."""
    h, w = rgb.shape[:2]
    centre = rgb[h // 3 : 2 * h // 3, w // 3 : 2 * w // 3].reshape(-1, 3).mean(axis=0)
    return int(centre[0]), int(centre[1]), int(centre[2])


def nearest_index(rgb: np.ndarray, candidates: range) -> int:
    """Which colour index (of ``candidates``) a picture's centre shows."""
    r, g, b = mean_colour(rgb)
    return min(
        candidates,
        key=lambda i: sum((x - y) ** 2 for x, y in zip(colour_of(i), (r, g, b), strict=True)),
    )


def frames(path: str | Path) -> list[tuple[float, np.ndarray, bool]]:
    """Every decoded frame of a (small) clip: (time in s, RGB picture, key frame)."""
    out = []
    with av.open(str(path)) as c:
        for frame in c.decode(c.streams.video[0]):
            out.append(
                (float(frame.time or 0.0), frame.to_ndarray(format="rgb24"), frame.key_frame)
            )
    return out


__all__ = [
    "TONE_RATE",
    "by_second",
    "colour_of",
    "frames",
    "make_colour_clip",
    "mean_colour",
    "nearest_index",
    "shots",
]
