"""Job events on the local stack: each way a job ends publishes exactly one event, delivered by
the template's endings rule (source dropcut, this stack's service) to its target, and its
detail is valid under the published schema (schemas/job-event.schema.json)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from devstack.local_app import JobEnding, LocalApp
from devstack.media import make_sample_video
from devstack.schema import JOB_EVENT_SCHEMA_PATH

SCHEMA = json.loads(JOB_EVENT_SCHEMA_PATH.read_text())


def _only_event(app: LocalApp, ending: JobEnding) -> dict[str, Any]:
    job = app.job(ending.key)
    assert job is not None
    [event] = app.wait_for_job_events(job["job_id"], count=1)
    assert event["source"] == "dropcut"
    detail = event["detail"]
    jsonschema.validate(detail, SCHEMA)
    assert detail["service"] == app.stack.stack_name
    assert detail["input"] == {"bucket": app.bucket, "key": ending.key, "version": job["version"]}
    # The plan Submit recorded (none: never planned, e.g. no manifest ever came).
    recorded = job.get("plan")
    assert (detail["plan"] or {}).get("kind") == (recorded or {}).get("kind")
    assert detail["durations"]["total_seconds"] > 0
    return event


def test_a_success_publishes_one_succeeded_event(app: LocalApp, clip: bytes) -> None:
    key = "inbox/events/ok.mp4"
    app.put(key, clip, metadata={"prompt": "sepia"})
    ending = app.wait_for_ending(key)
    assert ending.succeeded
    # Per-job emails (this suite's NotificationEmailFor=job) go rule -> email queue ->
    # NotifyFunction (paced) -> the topic, never from the rule to the topic at once.
    assert "email" not in app.stack.deployment.event_rule_queues.get("JobEndingsRule", {})
    event = _only_event(app, ending)
    detail = event["detail"]
    assert event["detail-type"] == "Job Succeeded"
    assert detail["status"] == "succeeded"
    assert detail["output_key"] == ending.output_key
    assert detail["credits"] == ending.result["credits"]
    assert detail["durations"]["at_provider_seconds"] > 0
    assert (detail["reason"], detail["error_report_key"]) == (None, None)
    assert app.stack.pool("NotifyFunction").invocations >= 1


def test_keep_audio_of_a_silent_video_comes_back_with_a_notice_in_manifest_and_event(
    app: LocalApp, tmp_path: Path
) -> None:
    silent = make_sample_video(tmp_path / "mute.mp4", width=720, height=720, audio=False)
    key = "inbox/events/mute.mp4"
    app.put_manifest(key, {"prompt": "sepia", "keep_audio": True})
    app.put(key, Path(silent).read_bytes())
    ending = app.wait_for_ending(key)
    assert ending.succeeded, ending.error
    notice = "keep_audio was asked, but the video has no audio track: the edited video is silent"
    assert notice in ending.result["notices"]
    assert notice in _only_event(app, ending)["detail"]["notices"]


def test_a_failed_task_publishes_one_failed_event(app: LocalApp, clip: bytes) -> None:
    key = "inbox/events/fail.mp4"
    app.put(key, clip, metadata={"prompt": "sepia [sim:fail]"})
    ending = app.wait_for_ending(key)
    assert not ending.succeeded
    event = _only_event(app, ending)
    detail = event["detail"]
    assert event["detail-type"] == "Job Failed"
    assert detail["reason"] == ending.error["reason"] == "provider_task_failed"
    assert detail["advice"] == ending.error["advice"]
    assert detail["error_report_key"] == ending.error_key
    assert detail["output_key"] is None


def test_a_refused_input_publishes_one_refused_event(app: LocalApp, clip: bytes) -> None:
    key = "inbox/events/refused.mp4"
    app.put_manifest(key, {"prompt": "sepia", "colour": "red"})
    app.put(key, clip)
    ending = app.wait_for_ending(key)
    assert not ending.succeeded
    event = _only_event(app, ending)
    detail = event["detail"]
    assert event["detail-type"] == "Job Refused"
    assert detail["reason"] == "input_invalid"
    assert [p["field"] for p in detail["problems"]] == ["colour"]
    assert detail["problems"] == ending.error["problems"]
    assert detail["durations"]["at_provider_seconds"] is None


def test_a_manifest_timeout_publishes_one_failed_event(app: LocalApp, clip: bytes) -> None:
    key = "inbox/events/no-manifest.mp4"
    app.put(key, clip)  # no prompt anywhere: it waits for its manifest (ManifestWaitSeconds 3)
    app.wait_for_job(key, lambda job: job["status"] == "waiting_for_manifest")
    time.sleep(3.5)
    app.stack.fire_schedule("ReconcileFunction")
    ending = app.wait_for_ending(key, timeout=10)
    event = _only_event(app, ending)
    assert event["detail-type"] == "Job Failed"
    assert event["detail"]["reason"] == "manifest_timeout"
    assert event["detail"]["problems"][0]["field"] == "manifest"


@pytest.mark.parametrize(
    ("detail_type", "service"),
    [("Job Submitted", None), ("Job Succeeded", "another-stack")],
    ids=["not-an-ending", "another-stack"],
)
def test_the_rule_delivers_only_this_stacks_endings(
    app: LocalApp, detail_type: str, service: str | None
) -> None:
    sample = json.loads(
        (JOB_EVENT_SCHEMA_PATH.parents[1] / "events" / "job_event.json").read_text()
    )
    detail = {**sample["detail"], "job_id": f"job-{'f' * 40}", "service": service}
    detail["service"] = service or app.stack.stack_name
    answer = app.stack.client("events").put_events(
        Entries=[{"Source": "dropcut", "DetailType": detail_type, "Detail": json.dumps(detail)}]
    )
    assert answer["FailedEntryCount"] == 0
    time.sleep(0.5)
    assert [e for e in app.job_events() if e["detail"]["job_id"] == detail["job_id"]] == []
