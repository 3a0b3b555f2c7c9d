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

from devstack.media import TONE_RATE, _mux_tone

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
) -> Path:
    """Write a clip whose frame at time t is colour_of(colour_index(t)), with a white square in
    the stored picture's top-left corner; ``rotation`` (degrees counterclockwise) is written as
    the display matrix; ``gop`` frames between keyframes (the encoder's default if None)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rate = Fraction(fps).limit_denominator(1001)
    count = max(1, round(seconds * rate))
    side = max(2, int(min(width, height) * MARK))
    with av.open(str(path), "w", format=container_format) as out:
        stream: Any = out.add_stream(codec, rate=rate)
        stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
        options = {"preset": "ultrafast"}
        if codec == "libx265":
            options["x265-params"] = "log-level=error"
        stream.options = options
        if gop:
            stream.codec_context.gop_size = gop
        if rotation:
            stream.set_display_rotation(rotation)
        tone = out.add_stream("aac", rate=TONE_RATE, layout="mono") if audio else None
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
            _mux_tone(out, tone, float(count / rate))
    return path


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
