"""Small media helpers for tests and demos: sample clips/images, probing, frame grabbing.

Everything is done with PyAV (H.264 + AAC encoders ship in its wheel), numpy and pillow.
"""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path
from typing import Any, BinaryIO, NamedTuple

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
    codec: str = "libx264",
    pix_fmt: str = "yuv420p",
    container: str = "mp4",
    audio_codec: str = "aac",
) -> Path:
    """Write a real H.264 (+ AAC sine tone) MP4 with colourful moving content; `codec` "libx265"
    with `pix_fmt` "yuv420p10le" writes a 10-bit HEVC, `container` "mov" a QuickTime file,
    "matroska" an MKV, "webm" (with `codec` "libvpx-vp9", `audio_codec` "libopus") a WebM."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    width -= width % 2
    height -= height % 2
    n_frames = max(1, round(seconds * fps))
    bg = _background(width, height, pattern)
    side = max(8, min(width, height) // 5)
    with av.open(str(path), "w", format=container) as out:
        vs = out.add_stream(codec, rate=fps)
        vs.width = width
        vs.height = height
        vs.pix_fmt = pix_fmt
        vs.options = {"preset": "ultrafast", "tune": "zerolatency"}
        if codec.startswith("libvpx"):
            vs.options = {"deadline": "realtime", "cpu-used": "8"}
        if codec == "libx265":
            vs.options = {**vs.options, "x265-params": "log-level=error"}
        as_ = None
        if audio:
            as_ = out.add_stream(audio_codec, rate=TONE_RATE, layout="mono")
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
            _mux_tone(out, as_, seconds)
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


# --- MP4/MOV box layouts, for tests of dropcut.formats.probe ---------------------------------------


class TopLevelBox(NamedTuple):
    """One top-level MP4/MOV box: its fourcc, where its header starts, its total size."""

    type: str
    offset: int
    size: int
    header_size: int

    @property
    def end(self) -> int:
        return self.offset + self.size


def top_level_boxes(path: str | Path) -> list[TopLevelBox]:
    """The top-level boxes of an MP4/MOV, in file order (reads only their headers)."""
    boxes: list[TopLevelBox] = []
    size = Path(path).stat().st_size
    with open(path, "rb") as f:
        offset = 0
        while offset + 8 <= size:
            f.seek(offset)
            header = f.read(16)
            box_size, box_type = int.from_bytes(header[:4], "big"), header[4:8].decode("latin-1")
            header_size = 8
            if box_size == 1:
                box_size, header_size = int.from_bytes(header[8:16], "big"), 16
            elif box_size == 0:
                box_size = size - offset
            if box_size < header_size:
                raise ValueError(f"{path}: box {box_type!r} at {offset} has size {box_size}")
            boxes.append(TopLevelBox(box_type, offset, box_size, header_size))
            offset += box_size
    return boxes


def _remux(src: str | Path, dst: str | Path, *, format: str, options: dict[str, str]) -> Path:
    """Copy the audio and video packets of src into a new container, without re-encoding."""
    dst = Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(src)) as inp, av.open(str(dst), "w", format=format, options=options) as out:
        wanted = [s for s in inp.streams if s.type in ("video", "audio")]
        streams = {s.index: out.add_stream_from_template(s) for s in wanted}
        for packet in inp.demux(wanted):
            if packet.dts is None:  # demux ends each stream with an empty flush packet
                continue
            packet.stream = streams[packet.stream.index]
            out.mux(packet)
    return dst


def _remuxed_sample(
    path: str | Path, *, format: str, options: dict[str, str], seconds: float, **sample: Any
) -> Path:
    path = Path(path)
    source = path.with_name(path.name + ".source.mp4")
    try:
        make_sample_video(source, seconds=seconds, **sample)
        return _remux(source, path, format=format, options=options)
    finally:
        source.unlink(missing_ok=True)


def make_sample_mov(path: str | Path, seconds: float = 4.0, **sample: Any) -> Path:
    """A QuickTime .mov (ftyp brand "qt  ", moov at the end); `sample` as for make_sample_video."""
    return _remuxed_sample(path, format="mov", options={}, seconds=seconds, **sample)


def make_faststart_copy(src: str | Path, dst: str | Path) -> Path:
    """A copy of src with its index (moov) moved before the media data, as for streaming."""
    fmt = "mov" if Path(dst).suffix.lower() == ".mov" else "mp4"
    return _remux(src, dst, format=fmt, options={"movflags": "faststart"})


def fragmented_mp4(path: str | Path, seconds: float = 4.0, **sample: Any) -> Path:
    """A fragmented MP4: an empty moov (with mvex) then moof/mdat pairs of about 1 s each.

    FFmpeg writes no mehd box here and leaves the mvhd duration 0, so the index alone does not
    give the duration; it ends with an mfra box.
    """
    options = {"movflags": "frag_keyframe+empty_moov", "frag_duration": "1000000"}
    return _remuxed_sample(path, format="mp4", options=options, seconds=seconds, **sample)


def pad_mdat(
    src: str | Path, dst: str | Path, total_bytes: int, *, largesize: bool | None = None
) -> Path:
    """Copy an MP4/MOV laid out ftyp, [free], mdat, moov, growing its mdat to make dst total_bytes.

    Zero bytes are appended at the end of the mdat, so the sample offsets in moov (which point
    earlier into the mdat) stay valid and the file still plays. A 64-bit mdat size is used when
    the size needs it or `largesize` is True: the mdat header then takes over the 8-byte
    free/wide box before it, as FFmpeg intends, so the media data does not move. Written
    streaming, as a sparse file where the filesystem allows.
    """
    src, dst = Path(src), Path(dst)
    boxes = top_level_boxes(src)
    names = [b.type for b in boxes]
    if "mdat" not in names or "moov" not in names or names.index("moov") < names.index("mdat"):
        raise ValueError(f"{src}: pad_mdat needs the moov after the mdat, got {names}")
    at = names.index("mdat")
    mdat = boxes[at]
    src_size = src.stat().st_size
    grow = total_bytes - src_size
    if grow < 0:
        raise ValueError(f"{src} is already {src_size} bytes, more than {total_bytes}")
    if largesize is None:
        largesize = mdat.size + grow > 0xFFFF_FFFF
    header_start = mdat.offset
    if largesize and mdat.header_size == 8:
        before = boxes[at - 1] if at > 0 else None
        if before is None or before.type not in ("free", "wide") or before.size != 8:
            raise ValueError(f"{src}: no 8-byte free/wide box before mdat to make room for")
        header_start = before.offset
    payload_start = mdat.offset + mdat.header_size
    new_size = mdat.end + grow - header_start
    if largesize:
        header = (1).to_bytes(4, "big") + b"mdat" + new_size.to_bytes(8, "big")
    else:
        header = new_size.to_bytes(4, "big") + b"mdat"
    with open(src, "rb") as fin, open(dst, "wb") as fout:
        _copy_range(fin, fout, 0, header_start)
        fout.write(header)
        _copy_range(fin, fout, payload_start, mdat.end - payload_start)
        fout.seek(grow, os.SEEK_CUR)  # the gap reads back as zeros
        _copy_range(fin, fout, mdat.end, src_size - mdat.end)
    if dst.stat().st_size != total_bytes:
        raise AssertionError(f"{dst} came out {dst.stat().st_size} bytes, not {total_bytes}")
    return dst


def _copy_range(fin: BinaryIO, fout: BinaryIO, start: int, length: int) -> None:
    fin.seek(start)
    while length > 0:
        chunk = fin.read(min(length, 1024 * 1024))
        if not chunk:
            raise ValueError(f"{fin.name} ended {length} bytes early")
        fout.write(chunk)
        length -= len(chunk)


def make_audio_only_mp4(path: str | Path, seconds: float = 1.0) -> Path:
    """An MP4 with an AAC track and no video track."""
    path = Path(path)
    with av.open(str(path), "w", format="mp4") as out:
        _mux_tone(out, out.add_stream("aac", rate=TONE_RATE, layout="mono"), seconds)
    return path


TONE_RATE = 48000


def _mux_tone(out: Any, stream: Any, seconds: float) -> None:
    """Encode a 440 Hz mono sine of `seconds` into `stream` of container `out`."""
    total = int(seconds * TONE_RATE)
    for start in range(0, total, 1024):
        count = min(1024, total - start)
        t = np.arange(start, start + count, dtype=np.float32) / TONE_RATE
        samples = (0.3 * np.sin(2 * np.pi * 440.0 * t)).astype(np.float32)[None, :]
        frame = av.AudioFrame.from_ndarray(samples, format="fltp", layout="mono")
        frame.sample_rate = TONE_RATE
        frame.pts = start
        frame.time_base = Fraction(1, TONE_RATE)
        for packet in stream.encode(frame):
            out.mux(packet)
    for packet in stream.encode():
        out.mux(packet)


def with_display_matrix(data: bytes, a: int, b: int, c: int, d: int) -> bytes:
    """An MP4/MOV's bytes with its first track's tkhd display matrix set to (a b / c d), 16.16
    fixed point: (0, 1, -1, 0) << 16 is what a phone held upright records (rotate 90)."""
    position = data.index(b"tkhd")  # PyAV writes the video track first
    version = data[position + 4]
    matrix = position + 4 + (88 if version == 1 else 76) - 36
    fields = [a, b, 0, c, d, 0, 0, 0, 0x40000000]
    packed = b"".join((value & 0xFFFFFFFF).to_bytes(4, "big") for value in fields)
    return data[:matrix] + packed + data[matrix + 36 :]


def with_noise_media_data(path: str | Path, seed: int = 0) -> bytes:
    """The MP4 at `path` with its media data (every `mdat` payload) replaced by random bytes:
    valid boxes whose pictures do not decode (a hostile or broken provider result)."""
    data = bytearray(Path(path).read_bytes())
    noise = np.random.default_rng(seed)
    for box in top_level_boxes(path):
        if box.type == "mdat":
            start = box.offset + box.header_size
            data[start : box.end] = noise.bytes(box.end - start)
    return bytes(data)


def make_two_video_tracks(
    path: str | Path,
    *,
    preview: tuple[float, int, int] = (2.0, 320, 240),
    main: tuple[float, int, int] = (8.0, 720, 720),
    fps: int = 24,
) -> Path:
    """An MP4 whose first video track is a short preview and whose second is the real video
    (seconds, width, height each), both H.264, as some cameras and editors write them: the
    real one is the enabled track (tkhd), the one a player plays."""
    path = Path(path)
    with av.open(str(path), "w", format="mp4") as out:
        streams = []
        for _, width, height in (preview, main):  # every stream before the first packet
            stream = out.add_stream("libx264", rate=fps)
            stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
            stream.options = {"preset": "ultrafast"}
            streams.append(stream)
        # The main track is the default (FFmpeg then marks it enabled in tkhd, the preview not).
        streams[0].disposition = av.stream.Disposition(0)
        streams[1].disposition = av.stream.Disposition.default
        for stream, (seconds, width, height) in zip(streams, (preview, main), strict=True):
            bg = _background(width, height, "bars")
            for i in range(max(1, round(seconds * fps))):
                frame = av.VideoFrame.from_ndarray(bg, format="rgb24")
                frame.pts, frame.time_base = i, Fraction(1, fps)
                for packet in stream.encode(frame):
                    out.mux(packet)
            for packet in stream.encode():
                out.mux(packet)
    return path
