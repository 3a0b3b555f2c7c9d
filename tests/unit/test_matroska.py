"""Issue 26, item 1: a Matroska (OBS) or WebM (a browser) file is read from its index like an MP4:
the facts Submit plans with, from the file's first bytes (and its end, for a live recording's
file that gives no duration)."""

from __future__ import annotations

from pathlib import Path

import pytest

from devstack.media import make_sample_video
from dropcut.formats.matroska import HEAD_BYTES, TAIL_BYTES, probe_matroska
from dropcut.formats.probe import NotAVideo
from dropcut.model.plan import PlanKind, plan_video
from dropcut.providers.evolink import EvolinkProvider
from dropcut.services.validation import check_video


def reader(data: bytes):
    return lambda offset, length: data[offset : offset + length]


@pytest.mark.parametrize(
    ("sample", "container", "codec"),
    [
        ({"container": "matroska", "audio_codec": "libopus"}, "mkv", "avc1"),  # OBS: H.264 + Opus
        ({"container": "webm", "codec": "libvpx-vp9", "audio_codec": "libopus"}, "webm", "vp09"),
    ],
)
def test_the_facts_come_from_the_head(tmp_path: Path, sample, container: str, codec: str) -> None:
    data = make_sample_video(
        tmp_path / "clip", seconds=4.0, width=640, height=360, **sample
    ).read_bytes()
    info = probe_matroska(reader(data), len(data))
    assert (info.container, info.video_codec, info.audio_codec) == (container, codec, "opus")
    assert (info.width, info.height, info.frame_rate) == (640, 360, 24.0)
    assert info.duration_seconds == pytest.approx(4.0, abs=0.05)
    assert info.reads == 1 and info.bytes_read <= HEAD_BYTES


def test_a_live_recording_without_a_duration_is_timed_by_its_last_cluster(tmp_path: Path) -> None:
    data = make_sample_video(tmp_path / "clip.mkv", seconds=20.0, width=640, height=480, container="matroska").read_bytes()  # fmt: skip
    info_at = data.index(b"\x15\x49\xa9\x66")  # Info; its Duration's ID made one nobody reads
    duration_at = data.index(b"\x44\x89", info_at)
    live = data[:duration_at] + b"\x44\x8f" + data[duration_at + 2 :]
    info = probe_matroska(reader(live), len(live))
    assert info.duration_seconds == pytest.approx(20.0, abs=0.1)
    assert info.reads == 2 and info.bytes_read <= HEAD_BYTES + TAIL_BYTES  # the head, the tail


def test_a_matroska_file_is_planned_for_conversion_and_checked_like_an_mp4(tmp_path: Path) -> None:
    data = make_sample_video(tmp_path / "obs.mkv", seconds=5.0, width=1280, height=720, container="matroska").read_bytes()  # fmt: skip
    checked = check_video(reader(data), len(data), EvolinkProvider)
    assert checked.problems == [] and checked.media is not None
    plan = plan_video(checked.media, EvolinkProvider, max_parts=36, normalize=True)
    assert plan.kind is PlanKind.NORMALIZE
    assert "a Matroska (MKV) file: converted to MP4" in plan.reasons


def test_an_audio_only_or_cut_short_file_is_not_a_video(tmp_path: Path) -> None:
    data = make_sample_video(tmp_path / "clip.mkv", seconds=2.0, container="matroska").read_bytes()
    with pytest.raises(NotAVideo):
        probe_matroska(reader(data[:40]), 40)
    checked = check_video(reader(b"\x1a\x45\xdf\xa3" + bytes(60)), 64, EvolinkProvider)
    assert checked.media is None and checked.problems[0].field == "video"
