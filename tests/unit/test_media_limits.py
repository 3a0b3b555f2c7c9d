"""Issue 26, items 6 and 7: a video past what dropcut decodes (pixels, frame rate, codec) is
refused by its index at Submit, before Prepare would spend gigabytes on it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from cfnlint.decode import decode

from dropcut.formats.probe import MediaInfo
from dropcut.model.media_limits import MAX_INPUT_BYTES, WORK_HEADROOM_BYTES, decode_problems


def media(**changes: Any) -> MediaInfo:
    facts: dict[str, Any] = {
        "container": "mov",
        "brand": "qt",
        "size_bytes": 19_000_000,
        "duration_seconds": 10.0,
        "width": 1920,
        "height": 1080,
        "coded_width": 1920,
        "coded_height": 1080,
        "video_codec": "avc1",
        "audio_codec": "mp4a",
        "frame_rate": 30.0,
        "bytes_read": 4096,
        "reads": 2,
    }
    return MediaInfo(**{**facts, **changes})


@pytest.mark.parametrize(
    "facts",
    [
        {},
        {"width": 7680, "height": 4320, "coded_width": 7680, "coded_height": 4320},  # 8K UHD
        {"width": 4320, "height": 8192, "coded_width": 8192, "coded_height": 4320},  # DCI, turned
        {"frame_rate": 240.0, "video_codec": "hvc1"},  # a phone's slow motion
        {"video_codec": "apch"},  # ProRes from an editor
        {"width": None, "height": None, "coded_width": None, "coded_height": None},  # unknown
    ],
)
def test_what_cameras_and_editors_make_is_taken(facts: dict[str, Any]) -> None:
    assert decode_problems(media(**facts)) == []


@pytest.mark.parametrize(
    ("facts", "words"),
    [
        ({"coded_width": 16000, "coded_height": 16000}, "16000x16000 px (256.0 MP)"),
        ({"width": 8200, "height": 200, "coded_width": 8200, "coded_height": 200}, "8200x200"),
        ({"width": 7000, "height": 6000, "coded_width": 7000, "coded_height": 6000}, "42.0 MP"),
        ({"frame_rate": 1200.0}, "1200 frames a second"),
        ({"video_codec": "png "}, "codec 'png '"),
    ],
)
def test_a_hostile_index_is_refused_with_its_limit(facts: dict[str, Any], words: str) -> None:
    (problem,) = decode_problems(media(**facts))
    assert words in problem.message
    assert (
        problem.field == "video" and problem.limit and problem.hint.startswith(("Scale", "Convert"))
    )


def test_a_file_larger_than_the_steps_disks_is_refused() -> None:
    (problem,) = decode_problems(media(size_bytes=6 * 1024**3))
    assert (
        "6.0 GiB, larger than dropcut takes" in problem.message and problem.limit == "at most 4 GiB"
    )


@pytest.mark.parametrize("function", ["PrepareFunction", "StitchFunction"])
def test_the_steps_that_download_the_input_have_the_disk_for_the_largest(function: str) -> None:
    template, _ = decode(str(Path(__file__).parents[2] / "template.yaml"))
    size_mb = template["Resources"][function]["Properties"]["EphemeralStorage"]["Size"]
    assert size_mb * 1024**2 >= MAX_INPUT_BYTES + WORK_HEADROOM_BYTES


def test_a_killed_invocations_working_directory_is_removed_by_the_next(tmp_path: Path) -> None:
    """Issue 26, item 8: Lambda keeps /tmp between the invocations of one environment."""
    from dropcut.model.media_tools import WORK_PREFIX, working_directory

    stale = tmp_path / f"{WORK_PREFIX}killed"
    stale.mkdir()
    (stale / "input.mp4").write_bytes(b"\0" * 1024)
    other = tmp_path / "someone-elses"
    other.mkdir()
    with working_directory(tmp_path) as work:
        assert not stale.exists() and other.exists()
        assert Path(work).parent == tmp_path and Path(work).name.startswith(WORK_PREFIX)
    assert not Path(work).exists()
