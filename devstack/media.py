"""Small media helpers for tests and demos: sample clips/images, probing, frame grabbing.

Everything is done with PyAV (H.264 + AAC encoders ship in its wheel), numpy and pillow.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
from PIL import Image

# Colour bars (RGB), left to right: deliberately asymmetric so a mirror is detectable.
_BARS = np.array(
    [
        (235, 235, 235),
        (235, 235, 16),
        (16, 235, 235),
        (16, 235, 16),
        (235, 16, 235),
        (235, 16, 16),
        (16, 16, 235),
        (40, 40, 40),
    ],
    dtype=np.uint8,
)


def _background(width: int, height: int, pattern: str) -> np.ndarray:
    if pattern == "bars":
        idx = (np.arange(width) * len(_BARS)) // width
        row = _BARS[idx]
        img = np.repeat(row[None, :, :], height, axis=0).astype(np.int16)
        # vertical gradient in the lower quarter makes the picture less flat
        q = height * 3 // 4
        ramp = np.linspace(0, 1, height - q, dtype=np.float32)[:, None, None]
        img[q:] = (img[q:] * (1.0 - 0.7 * ramp)).astype(np.int16)
        return img.clip(0, 255).astype(np.uint8)
    if pattern == "gradient":
        x = np.linspace(0, 255, width, dtype=np.float32)[None, :]
        y = np.linspace(0, 255, height, dtype=np.float32)[:, None]
        r = np.broadcast_to(x, (height, width))
        g = np.broadcast_to(y, (height, width))
        b = np.broadcast_to(255 - x, (height, width))
        return np.stack([r, g, b], axis=-1).astype(np.uint8)
    raise ValueError(f"unknown pattern {pattern!r}")


def make_sample_video(
    path: str | Path,
    *,
    seconds: float = 4.0,
    width: int = 320,
    height: int = 240,
    fps: int = 24,
    audio: bool = True,
    pattern: str = "bars",
) -> Path:
    """Write a real H.264 (+ AAC sine tone) MP4 with colourful moving content."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    width -= width % 2
    height -= height % 2
    n_frames = max(1, round(seconds * fps))
    bg = _background(width, height, pattern)
    side = max(8, min(width, height) // 5)
    with av.open(str(path), "w", format="mp4") as out:
        vs = out.add_stream("libx264", rate=fps)
        vs.width = width
        vs.height = height
        vs.pix_fmt = "yuv420p"
        vs.options = {"preset": "ultrafast", "tune": "zerolatency"}
        as_ = None
        if audio:
            as_ = out.add_stream("aac", rate=48000, layout="mono")
        for i in range(n_frames):
            img = bg.copy()
            t = i / fps
            x = int((width - side) * (0.5 + 0.5 * np.sin(2 * np.pi * t / max(seconds, 0.1))))
            y = int((height - side) * i / max(n_frames - 1, 1))
            img[y : y + side, x : x + side] = (255, 128, 0)
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            frame.pts = i
            frame.time_base = Fraction(1, fps)
            for pkt in vs.encode(frame):
                out.mux(pkt)
        for pkt in vs.encode():
            out.mux(pkt)
        if as_ is not None:
            rate = 48000
            total = int(seconds * rate)
            chunk = 1024
            for start in range(0, total, chunk):
                n = min(chunk, total - start)
                tt = (np.arange(start, start + n, dtype=np.float32)) / rate
                samples = (0.3 * np.sin(2 * np.pi * 440.0 * tt)).astype(np.float32)[None, :]
                af = av.AudioFrame.from_ndarray(samples, format="fltp", layout="mono")
                af.sample_rate = rate
                af.pts = start
                af.time_base = Fraction(1, rate)
                for pkt in as_.encode(af):
                    out.mux(pkt)
            for pkt in as_.encode():
                out.mux(pkt)
    return path


def make_sample_image(
    path: str | Path,
    size: tuple[int, int] = (128, 128),
    color: tuple[int, int, int] = (255, 0, 255),
) -> Path:
    """Write a solid-colour image; the format follows the suffix (PNG by default)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fmt = None if path.suffix else "PNG"
    img = Image.new("RGB", size, color)
    if path.suffix.lower() in (".jpg", ".jpeg"):
        img.save(path, format="JPEG", quality=95)
    else:
        img.save(path, format=fmt)
    return path


def probe(path: str | Path) -> dict[str, Any]:
    """Duration (s), width, height, video codec, fps, has_audio, audio codec, container format."""
    with av.open(str(path)) as c:
        v = c.streams.video[0] if c.streams.video else None
        a = c.streams.audio[0] if c.streams.audio else None
        duration = None
        if c.duration is not None:
            duration = c.duration / 1_000_000
        elif v is not None and v.duration is not None and v.time_base is not None:
            duration = float(v.duration * v.time_base)
        return {
            "duration": duration,
            "width": v.codec_context.width if v else None,
            "height": v.codec_context.height if v else None,
            "video_codec": v.codec_context.name if v else None,
            "fps": float(v.average_rate) if v is not None and v.average_rate else None,
            "has_audio": a is not None,
            "audio_codec": a.codec_context.name if a else None,
            "format": c.format.name,
        }


def frame_at(path: str | Path, t: float) -> np.ndarray:
    """The first decoded frame at or after ``t`` seconds (or the last frame), as RGB uint8."""
    last = None
    with av.open(str(path)) as c:
        stream = c.streams.video[0]
        for frame in c.decode(stream):
            last = frame
            if frame.time is not None and frame.time >= t - 1e-6:
                break
    if last is None:
        raise ValueError(f"no video frames in {path}")
    return last.to_ndarray(format="rgb24")
