"""Submit plans every video it can read before anything is spent: the plan goes on the job
record; a refused plan ends the job with a report that carries its problems and estimate, and
no execution starts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from devstack.media import make_sample_video
from dropcut.model.jobs import JobStatus, job_id_for
from dropcut.model.phases import JobPhase
from dropcut.model.plan import PlanKind, recorded_plan
from dropcut.settings import PlanSettings
from dropcut.steps.submit import Outcome, SubmitDeps, submit_object


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    folder = tmp_path_factory.mktemp("submit-plan")
    made = {
        "small": make_sample_video(folder / "small.mp4", seconds=2.0, audio=False),
        "long": make_sample_video(folder / "long.mp4", seconds=31.0, width=64, height=48),
    }
    return {name: Path(path).read_bytes() for name, path in made.items()}


def deps(submit_deps_of, **plan: object) -> SubmitDeps:
    return submit_deps_of(default_prompt="sepia", plan=PlanSettings(**plan))  # type: ignore[arg-type]


def upload(intake: SubmitDeps, key: str, body: bytes) -> tuple[str, object]:
    put = intake.s3.put_object(Bucket="media", Key=key, Body=body)
    job_id = job_id_for("media", key, put["VersionId"])
    return job_id, submit_object(intake, "media", key, put["VersionId"])


def test_a_started_job_records_its_plan(submit_deps_of, clips):
    intake = deps(submit_deps_of)
    job_id, result = upload(intake, "inbox/small.mp4", clips["small"])
    assert result.outcome is Outcome.STARTED
    plan = recorded_plan(intake.store.require(job_id).plan)
    assert plan is not None and plan.kind is PlanKind.PAD  # 2 s of 320x240
    assert plan.reasons[1] == "320x240 is under the model's 720 px minimum side"
    assert plan.billed_seconds == 3.0
    assert intake.executions.sfn.started == [job_id]


def test_a_plan_over_max_parts_is_refused_with_its_estimate(submit_deps_of, clips):
    intake = deps(submit_deps_of, max_parts=3)
    job_id, result = upload(intake, "inbox/long.mp4", clips["long"])
    assert result.outcome is Outcome.REFUSED
    record = intake.store.require(job_id)
    assert record.status is JobStatus.FAILED and record.error_reason == "input_invalid"
    plan = recorded_plan(record.plan)
    assert plan is not None and plan.kind is PlanKind.REFUSE
    assert plan.reasons[0] == "the plan needs 4 parts; MaxPartsPerJob is 3"
    assert [problem["field"] for problem in record.problems] == ["video"]
    assert "4 parts" in record.problems[0]["message"]
    body = intake.s3.get_object(Bucket="media", Key=record.error_report_key or "")["Body"]
    report = json.loads(body.read())
    assert report["plan"]["kind"] == "refuse"
    assert len(report["plan"]["parts"]) == 4 and report["plan"]["billed_seconds"] == 31.0
    assert report["problems"] == record.problems
    assert intake.executions.sfn.started == []


def test_normalize_inputs_off_refuses_an_out_of_spec_video(submit_deps_of, clips):
    intake = deps(submit_deps_of, normalize=False)
    job_id, result = upload(intake, "inbox/small.mp4", clips["small"])
    assert result.outcome is Outcome.REFUSED
    record = intake.store.require(job_id)
    assert "NormalizeInputs" in record.problems[0]["limit"]
    plan = recorded_plan(record.plan)
    assert plan is not None
    assert plan.reasons[0] == "NormalizeInputs is off; the video would have been padded"
    assert intake.executions.sfn.started == []


def test_a_job_that_finds_every_slot_taken_is_queued_with_its_place(submit_deps_of, clips, pool):
    pool.limit = 1
    intake = deps(submit_deps_of)
    first, _ = upload(intake, "inbox/small.mp4", clips["small"])
    second, result = upload(intake, "inbox/news/small.mp4", clips["small"])

    assert result.outcome is Outcome.STARTED
    record = intake.store.require(second)
    assert record.status is JobStatus.QUEUED and record.phase is JobPhase.QUEUED
    assert record.eta is not None and (record.eta.before, record.eta.backlog) == (0, 1)
    assert record.eta.starts_at is None  # nothing finished yet: no pace to go by
    assert intake.executions.sfn.started == [first]  # no execution for the queued job


@pytest.mark.parametrize("keep_audio", [True, False])
def test_keep_audio_of_a_video_without_sound_runs_with_a_notice(submit_deps_of, clips, keep_audio):
    intake = deps(submit_deps_of)
    manifest = {"prompt": "sepia", "keep_audio": keep_audio}
    intake.s3.put_object(Bucket="media", Key="inbox/mute.mp4.json", Body=json.dumps(manifest))
    job_id, result = upload(intake, "inbox/mute.mp4", clips["small"])  # no audio track
    assert result.outcome is Outcome.STARTED  # a notice, not a refusal
    silent = [notice for notice in intake.store.require(job_id).notices if "no audio" in notice]
    assert silent == (
        ["keep_audio was asked, but the video has no audio track: the edited video is silent"]
        if keep_audio
        else []
    )
