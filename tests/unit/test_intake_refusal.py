"""A refusal never leaves a record that looks like a job to start: the report is written first,
then the record, born failed. A Submit that dies in between leaves no record, and the
redelivered event refuses again; no execution is ever started for an invalid input."""

from __future__ import annotations

import pytest

from dropcut.model.jobs import JobStatus, job_id_for
from dropcut.steps.submit import Outcome, submit_object


class SubmitDied(Exception):
    """The worker was killed at this point."""


@pytest.fixture
def intake(submit_deps_of):
    return submit_deps_of()


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
