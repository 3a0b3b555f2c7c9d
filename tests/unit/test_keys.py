"""Keys that cross a boundary: an input key Submit takes must be usable as a URL path and as a file
name under a download folder (dropcut.model.layout.key_shape_problem), its report key carries none
of its `..` or `\\`, and `dropcut fetch` never writes outside the folder it was given, whatever
key the bucket or the jobs table names."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import typer

from dropcut.model.layout import BucketLayout, key_shape_problem, not_a_job
from dropcut_cli.outcomes import save_output

LAYOUT = BucketLayout("media")


@pytest.mark.parametrize(
    "key",
    [
        "inbox/team/clip.mp4",
        "inbox/team/Summer 2026 (final)/take-1_b.MOV",
        "inbox/équipe/clip.mp4",
        "inbox/team/console.mp4",  # a name that only starts like a device
        "inbox/team/con-cert.mp4",
    ],
)
def test_plain_keys_have_no_problem(key: str) -> None:
    assert key_shape_problem(key) is None
    assert LAYOUT.key_problems(key) == []


@pytest.mark.parametrize(
    ("key", "said"),
    [
        ("inbox/rw/../outbox/x.mp4", "'..' folder"),
        ("inbox/./x.mp4", "'..' folder"),
        ("inbox//x.mp4", "empty folder"),
        ("inbox/a\x00b.mp4", "control character"),
        ("inbox/team/..\\..\\x.mp4", "folder separator on Windows"),
        ("inbox/C:\\Users\\x.mp4", "folder separator on Windows"),
        ("inbox/team/C:x.mp4", "drive or a stream"),
        ("inbox/team/clip.mp4:hidden", "drive or a stream"),
        ("inbox/team/CON.mp4", "'CON.mp4' is a device name"),
        ("inbox/nul/clip.mp4", "'nul' is a device name"),
        ("inbox/team/com1.tar.mp4", "device name"),
        ("inbox/team/LPT9 .mp4", "device name"),
    ],
)
def test_keys_that_escape_a_url_or_a_folder_are_refused_before_anything_is_paid(
    key: str, said: str
) -> None:
    problem = key_shape_problem(key)
    assert problem is not None and said in problem
    assert LAYOUT.key_problems(key) == [
        f"the key cannot be used as a URL or a file name: {problem}"
    ]


def test_a_windows_path_in_a_key_is_a_video_to_refuse_not_a_hidden_file_to_ignore() -> None:
    # The name is what follows the last '/' or '\\': Submit refuses the key with a report.
    assert not_a_job("inbox/team/..\\..\\x.mp4", 90_000) is None
    assert key_shape_problem("inbox/team/..\\..\\x.mp4") is not None
    # A system file under a Windows path is still one (ignored, as under '/').
    assert not_a_job("inbox/team/sub\\.DS_Store", 6_148) == "a hidden file"
    assert not_a_job("inbox/team/.DS_Store", 6_148) == "a hidden file"


@pytest.mark.parametrize("output_name", ["CON.mp4", "nul", "com1.final.mp4"])
def test_an_output_name_that_fetch_could_not_save_is_refused_before_anything_is_paid(
    output_name: str,
) -> None:
    [problem] = LAYOUT.key_problems("inbox/team/clip.mp4", output_name)
    assert problem.startswith("its output key 'outbox/team/") and "device name" in problem
    assert LAYOUT.key_problems("inbox/team/clip.mp4", "console.mp4") == []


@pytest.mark.parametrize("key", ["inbox/rw/../outbox/x.mp4", "inbox/team/..\\..\\x.mp4"])
def test_the_report_of_a_refused_key_carries_none_of_its_path(key: str) -> None:
    report = LAYOUT.error_report_key(key)
    assert report.startswith("errors/_keys-refused/") and report.endswith(".error.json")
    assert ".." not in report and "\\" not in report
    assert LAYOUT.error_report_key("inbox/rw/x.mp4") == "errors/rw/x.mp4.error.json"


class _Bucket:
    """A stack whose bucket writes a few bytes for each download asked (and counts them)."""

    bucket = "media"

    def __init__(self) -> None:
        self.asked: list[tuple[str, str]] = []
        self.s3 = self

    def download_file(self, bucket: str, key: str, filename: str) -> None:
        self.asked.append((key, filename))
        Path(filename).write_bytes(b"edited")


def test_fetch_saves_an_output_under_the_folder_it_was_given(tmp_path: Path) -> None:
    stack: Any = _Bucket()
    saved = save_output(stack, "outbox/team/a.edited.mp4", tmp_path, "team/a.edited.mp4")
    assert saved == tmp_path / "team" / "a.edited.mp4" and saved.read_bytes() == b"edited"


@pytest.mark.parametrize(
    "name",
    [
        "../escaped.mp4",
        "team/../../escaped.mp4",
        "/tmp/escaped.mp4",
        "team/..\\..\\escaped.mp4",
        "C:\\Users\\escaped.mp4",
        "team/CON.mp4",
        "link/escaped.mp4",  # a symbolic link in the folder that points out of it
    ],
)
def test_fetch_refuses_an_output_key_that_would_land_outside_its_folder(
    tmp_path: Path, name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    folder, outside = tmp_path / "downloads", tmp_path / "outside"
    folder.mkdir()
    outside.mkdir()
    (folder / "link").symlink_to(outside)
    stack: Any = _Bucket()
    with pytest.raises(typer.Exit) as ended:
        save_output(stack, f"outbox/{name}", folder, name)
    assert ended.value.exit_code == 1
    assert stack.asked == [], "nothing downloaded"
    assert list(outside.iterdir()) == [] and not (tmp_path / "escaped.mp4").exists()
    assert "not saving" in capsys.readouterr().err
