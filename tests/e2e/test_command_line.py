"""The `dropcut` command line against the real local stack (moto, the simulator, the real
handlers): it finds the stack through its CloudFormation record, submits, follows, lists,
shows, fetches, and checks inputs without uploading them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from devstack.local_app import LocalApp
from devstack.media import make_sample_video
from dropcut_cli.app import app as cli

runner = CliRunner()


pytestmark = pytest.mark.usefixtures("wide_console")


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("cli")
    make_sample_video(folder / "clip.mp4", seconds=4.0)
    (folder / "notes.mp4").write_text("meeting notes, not a video\n")
    return folder


def dropcut(app: LocalApp, *args: str) -> Result:
    return runner.invoke(cli, ["--endpoint-url", app.stack.endpoint_url, *map(str, args)])


def test_submit_wait_download_then_ls_show_fetch(
    app: LocalApp, files: Path, tmp_path: Path
) -> None:
    result = dropcut(
        app, "submit", files / "clip.mp4", "--prompt", "sepia", "--prefix", "cli",
        "--wait", "--download", tmp_path / "dl",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "outbox/cli/clip.edited.mp4" in result.output
    assert "outbox/cli/clip.edited.mp4" in app.keys("outbox/cli/")
    assert app.keys("inbox/cli/") == ["inbox/cli/clip.mp4", "inbox/cli/clip.mp4.json"]
    saved = tmp_path / "dl" / "clip.edited.mp4"
    assert saved.read_bytes()[4:8] == b"ftyp"
    job = app.job("inbox/cli/clip.mp4")
    assert job is not None and job["spec"]["prompt"] == "sepia"

    listed = dropcut(app, "ls", "cli/", "--json")
    assert listed.exit_code == 0
    [row] = json.loads(listed.stdout)["jobs"]
    assert (row["job_id"], row["status"]) == (job["job_id"], "succeeded")
    assert "callback_token" not in row
    table = dropcut(app, "ls", "--status", "succeeded", "--since", "1h")
    assert "inbox/cli/clip.mp4" in table.output and "done" in table.output

    shown = dropcut(app, "show", "cli/clip.mp4")
    assert shown.exit_code == 0
    assert job["job_id"] in shown.output and "sepia" in shown.output
    assert "outbox/cli/clip.edited.result.json" in shown.output
    # 4 s of 320x240: Submit's plan scales it up to the model's 720 px
    assert "normalize, billed 4 s: 320x240 is under the model's 720 px" in shown.output
    by_id = json.loads(dropcut(app, "show", job["job_id"][:14], "--json").stdout)
    assert by_id["result"]["output"]["key"] == "outbox/cli/clip.edited.mp4"

    fetched = dropcut(app, "fetch", "cli/", "-o", tmp_path / "fetched")
    assert fetched.exit_code == 0, fetched.output
    assert (tmp_path / "fetched" / "cli" / "clip.edited.mp4").is_file()


def test_submit_wait_shows_the_report_of_a_refused_input(app: LocalApp, files: Path) -> None:
    result = dropcut(
        app, "submit", files / "notes.mp4", "--prompt", "sepia", "--prefix", "cli-bad", "--wait"
    )
    assert result.exit_code == 1
    assert "input_invalid" in result.output
    assert "the file is text, not an MP4/MOV video" in result.output  # the report's problem
    assert "errors/cli-bad/notes.mp4.error.json" in result.output

    as_json = dropcut(app, "show", "cli-bad/notes.mp4", "--json")
    assert as_json.exit_code == 1
    report = json.loads(as_json.stdout)["error_report"]
    assert [p["field"] for p in report["problems"]] == ["video"]


def test_submit_json_without_wait(app: LocalApp, files: Path) -> None:
    result = dropcut(
        app, "submit", files / "clip.mp4", "--prefix", "cli-json", "--prompt", "invert", "--json"
    )
    assert result.exit_code == 0
    [job] = json.loads(result.stdout)["jobs"]
    assert job["key"] == "inbox/cli-json/clip.mp4" and job["job_id"].startswith("job-")
    ending = app.wait_for_ending("inbox/cli-json/clip.mp4")
    assert ending.succeeded and ending.result["job_id"] == job["job_id"]


def test_estimate_uploads_nothing(app: LocalApp, files: Path) -> None:
    # The inbox is where an upload would land (outbox/ and work/ may still change: a job of an
    # earlier test of this module may be finishing).
    before = app.keys("inbox/")
    good = dropcut(app, "estimate", files / "clip.mp4", "--prompt", "sepia")
    assert good.exit_code == 0, good.output
    assert "by evolink" in good.output  # the stack's provider, from its CloudFormation record
    assert "mp4, 4.00 s, 320x240" in good.output
    assert "billed   4 s" in good.output
    # the stack's MaxPartsPerJob and NormalizeInputs (auto): 320x240 would be scaled up
    assert "plan     normalize (prepared as H.264 960x720" in good.output
    bad = dropcut(app, "estimate", files / "notes.mp4", "--prompt", "sepia")
    assert bad.exit_code == 1
    assert "the file is text, not an MP4/MOV video" in bad.output
    assert app.keys("inbox/") == before


def _clips(folder: Path, clip: Path, *names: str) -> Path:
    folder.mkdir()
    for name in names:
        (folder / name).write_bytes(clip.read_bytes())
    (folder / "notes.txt").write_text("not a video: not uploaded\n")
    return folder


def test_a_folder_submitted_is_one_batch_followed_to_its_summary(
    app: LocalApp, files: Path, tmp_path: Path
) -> None:
    folder = _clips(tmp_path / "shoot", files / "clip.mp4", "a.mp4", "b.mp4")
    result = dropcut(app, "submit", folder, "--prompt", "sepia", "--prefix", "cli-batch", "--json")
    assert result.exit_code == 0, result.output
    uploaded = json.loads(result.stdout)
    batch_id = uploaded["batch_id"]
    assert [job["key"] for job in uploaded["jobs"]] == [
        "inbox/cli-batch/a.mp4",
        "inbox/cli-batch/b.mp4",
    ]
    # Within the test's own timeout: a batch that does not complete shows where it stands.
    watched = dropcut(app, "watch", "--batch", batch_id, "--timeout", "200")
    assert watched.exit_code == 0, (
        watched.output,
        dropcut(app, "batches", "--json").stdout,
        {
            key: [(job["status"], job["phase"], job.get("batch_id")) for job in app.jobs_of(key)]
            for key in ("inbox/cli-batch/a.mp4", "inbox/cli-batch/b.mp4")
        },
    )
    assert f"batch {batch_id}: 2 done, 0 failed, 0 cancelled" in watched.output
    listed = json.loads(dropcut(app, "batches", "--json").stdout)["batches"]
    [batch] = [b for b in listed if b["batch_id"] == batch_id]
    assert (batch["state"], batch["jobs"], batch["expected"]) == ("completed", 2, 2)
    assert batch["summary_key"] == f"outbox/cli-batch/_batches/{batch_id}.json"
    summary = app.read_json(batch["summary_key"])
    # Rows come in the order the jobs joined: Submit takes the two uploads side by side (one
    # event an invocation), so either may be first.
    assert sorted(row["output_key"] for row in summary["jobs"]) == [
        "outbox/cli-batch/a.edited.mp4",
        "outbox/cli-batch/b.edited.mp4",
    ]
    table = dropcut(app, "batches")
    assert batch_id in table.output and "2 of 2" in table.output


def test_cancel_batch_stops_what_has_not_started_after_a_confirmation(
    app: LocalApp, files: Path, tmp_path: Path
) -> None:
    folder = _clips(tmp_path / "later", files / "clip.mp4", "c.mp4", "d.mp4")
    # No prompt anywhere: both wait for their manifest (not started, nothing paid).
    result = dropcut(app, "submit", folder, "--prefix", "cli-cancel", "--json")
    assert result.exit_code == 0, result.output
    batch_id = json.loads(result.stdout)["batch_id"]
    for key in ("inbox/cli-cancel/c.mp4", "inbox/cli-cancel/d.mp4"):
        app.wait_for_job(key, lambda job: job["status"] == "waiting_for_manifest")
    tasks = app.simulator.stats()["tasks_created"]
    asked = dropcut(app, "cancel", "--batch", batch_id)
    assert asked.exit_code == 2 and "would cancel 2 job(s)" in asked.output
    assert app.job("inbox/cli-cancel/c.mp4")["status"] == "waiting_for_manifest"  # type: ignore[index]
    done = dropcut(app, "cancel", "--batch", batch_id, "--yes")
    assert done.exit_code == 0, done.output
    assert "cancelled  2 job(s)" in done.output
    for key in ("inbox/cli-cancel/c.mp4", "inbox/cli-cancel/d.mp4"):
        assert app.job(key)["phase"] == "cancelled"  # type: ignore[index]
    assert app.simulator.stats()["tasks_created"] == tasks
    [batch] = [
        b
        for b in json.loads(dropcut(app, "batches", "--json").stdout)["batches"]
        if b["batch_id"] == batch_id
    ]
    assert (batch["state"], batch["cancelled"]) == ("completed", 2)


def test_unknown_stack_exits_3(app: LocalApp) -> None:
    result = runner.invoke(
        cli, ["--endpoint-url", app.stack.endpoint_url, "--stack", "no-such-stack", "ls"]
    )
    assert result.exit_code == 3
    assert "no-such-stack" in result.output
