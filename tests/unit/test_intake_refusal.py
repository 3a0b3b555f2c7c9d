"""A refusal never leaves a record that looks like a job to start: the report is written first,
then the record, born failed. A Submit that dies in between leaves no record, and the
redelivered event refuses again; no execution is ever started for an invalid input."""

from __future__ import annotations

import pytest

from dropcut.aws.executions import Executions
from dropcut.aws.job_events import NO_JOB_EVENTS
from dropcut.aws.job_store import JobStore
from dropcut.model.jobs import JobStatus, job_id_for
from dropcut.public_urls import system_resolver
from dropcut.settings import PlanSettings
from dropcut.steps.submit import Outcome, SubmitDeps, submit_object


class RecordingStepFunctions:
    """Counts executions started; shaped like the boto3 client where intake touches it."""

    class exceptions:
        class ExecutionAlreadyExists(Exception): ...

    def __init__(self) -> None:
        self.started: list[str] = []

    def start_execution(self, stateMachineArn: str, name: str, input: str) -> None:
        self.started.append(name)


class SubmitDied(Exception):
    """The worker was killed at this point."""


@pytest.fixture
def intake(jobs_table, media_bucket, settings):
    return SubmitDeps(
        s3=media_bucket,
        store=JobStore(jobs_table),
        executions=Executions(
            RecordingStepFunctions(), "arn:aws:states:us-east-1:123456789012:stateMachine:jobs"
        ),
        settings=settings,
        default_prompt="",
        resolve=system_resolver,
        events=NO_JOB_EVENTS,
        plan=PlanSettings(),
    )


def _dies_writing_the_report(intake, patched):
    real_put = intake.s3.put_object

    def put_object(**kwargs):
        if kwargs["Key"].startswith("errors/"):
            raise SubmitDied()
        return real_put(**kwargs)

    patched.setattr(intake.s3, "put_object", put_object)


def _dies_after_creating_the_record(intake, patched):
    real_create = intake.store.create

    def create(record):
        real_create(record)
        raise SubmitDied()

    patched.setattr(intake.store, "create", create)


@pytest.mark.parametrize("death", [_dies_writing_the_report, _dies_after_creating_the_record])
def test_a_submit_that_dies_while_refusing_leaves_nothing_to_start(intake, monkeypatch, death):
    key = "inbox/notes.mp4"
    put = intake.s3.put_object(
        Bucket="media", Key=key, Body=b"not a video at all", Metadata={"prompt": "sepia"}
    )
    job_id = job_id_for("media", key, put["VersionId"])

    with monkeypatch.context() as patched:
        death(intake, patched)
        with pytest.raises(SubmitDied):
            submit_object(intake, "media", key, put["VersionId"])
    left = intake.store.get(job_id)
    # Nothing that a duplicate event or the reconciler would take for a job to start.
    assert left is None or left.status is JobStatus.FAILED

    redelivered = submit_object(intake, "media", key, put["VersionId"])
    duplicate = submit_object(intake, "media", key, put["VersionId"])

    assert redelivered.outcome is (Outcome.REFUSED if left is None else Outcome.DUPLICATE)
    assert duplicate.outcome is Outcome.DUPLICATE
    record = intake.store.require(job_id)
    assert record.status is JobStatus.FAILED and record.error_reason == "input_invalid"
    assert record.error_report_key == "errors/notes.mp4.error.json"
    assert intake.s3.get_object(Bucket="media", Key=record.error_report_key)["ContentLength"] > 0
    assert intake.executions.sfn.started == []
