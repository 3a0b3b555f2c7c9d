"""Cancel and retry in-process: the cases the local stack cannot time (a cancel racing a
create, a result being stored, a retry that stopped halfway), and the retry ids."""

from __future__ import annotations

import time

import pytest

from dropcut.aws.executions import Executions
from dropcut.aws.job_events import NO_JOB_EVENTS
from dropcut.aws.job_store import JobStore
from dropcut.model.inputs import JobStep
from dropcut.model.jobs import JobStatus, attempt_of, is_job_id, job_id_for, retry_job_id
from dropcut.model.phases import JobPhase
from dropcut.steps.cancel import CancelDeps, CancelOutcome, cancel_job
from dropcut.steps.record_failure import RecordFailureDeps, record_failure
from dropcut.steps.retry import RetryDeps, RetryOutcome, retry_job
from tests.unit.conftest import StepFunctionsTokens

FIRST = job_id_for("media", "inbox/a.mp4", "v1")
MACHINE = "arn:aws:states:us-east-1:123456789012:stateMachine:jobs"


class StepFunctions(StepFunctionsTokens):
    """Executions started and stopped, shaped like the boto3 client where these steps use it."""

    class exceptions(StepFunctionsTokens.exceptions):
        class ExecutionDoesNotExist(Exception): ...

    def __init__(self) -> None:
        super().__init__()
        self.stopped: list[tuple[str, str]] = []
        #: Executions still running (the rest, when started, are over).
        self.running: set[str] = set()

    def describe_execution(self, executionArn: str) -> dict[str, str]:
        name = executionArn.rsplit(":", 1)[-1]
        if name in self.running:
            return {"status": "RUNNING"}
        if name in self.started:
            return {"status": "FAILED"}
        raise self.exceptions.ExecutionDoesNotExist(name)

    def stop_execution(self, executionArn: str, error: str, cause: str) -> None:
        self.stopped.append((executionArn.rsplit(":", 1)[-1], error))


def test_retry_ids_carry_the_attempt_and_pass_every_job_id_check():
    second = retry_job_id(FIRST)
    assert second == FIRST + "-r2" and retry_job_id(second) == FIRST + "-r3"
    assert (attempt_of(FIRST), attempt_of(second)) == (1, 2)
    assert is_job_id(second) and len(second) <= 80  # an execution name
    assert JobStep(job_id=second).job_id == second
    for bad in (FIRST + "-r0", FIRST + "-r1000", FIRST + "-x2", FIRST[:-1] + "-r2"):
        assert not is_job_id(bad), bad
    with pytest.raises(ValueError, match="at most 999"):
        retry_job_id(FIRST + "-r999")


@pytest.fixture
def sfn() -> StepFunctions:
    return StepFunctions()


@pytest.fixture
def tokens(sfn: StepFunctions) -> StepFunctions:
    """The slot pool's Step Functions (hand-overs, admissions) is this module's `sfn`."""
    return sfn


@pytest.fixture
def cancel_deps(jobs_table, media_bucket, settings, pool, sfn):
    return CancelDeps(
        s3=media_bucket,
        store=JobStore(jobs_table),
        layout=settings.layout,
        executions=Executions(sfn, MACHINE),  # type: ignore[arg-type]
        slots=pool,
        lost_task_hold_seconds=600,
        events=NO_JOB_EVENTS,
    )


def test_a_cancel_during_the_create_keeps_the_slot_and_says_a_task_may_exist(
    stored_job, cancel_deps, pool, sfn
):
    store, job_id = stored_job(creating_since=time.time())
    pool.acquire(job_id, 1.0, "token", 3600)

    result = cancel_job(cancel_deps, job_id, "arn:aws:iam::1:user/alice")

    assert result.outcome is CancelOutcome.CANCELLED
    assert result.billed is None and result.slot_held
    assert "a task may exist" in result.advice
    assert pool.holders()[job_id].until is not None
    assert sfn.stopped == [(job_id, "JobCancelled")]
    record = store.require(job_id)
    assert (record.status, record.error_reason) == (JobStatus.FAILED, "cancelled")
    assert record.cancel_requested_by == "arn:aws:iam::1:user/alice"


def test_a_cancel_in_line_leaves_the_line_and_pays_nothing(stored_job, cancel_deps, pool):
    store, job_id = stored_job()
    for other in ("busy-1", "busy-2"):
        pool.acquire(other, 0.0, f"token-{other}", 3600)
    pool.acquire(job_id, store.require(job_id).created_at, "token", 3600)
    assert [w.job_id for w in pool.waiters()] == [job_id]

    result = cancel_job(cancel_deps, job_id, "alice")

    assert (result.outcome, result.billed, result.slot_held) == (
        CancelOutcome.CANCELLED,
        False,
        False,
    )
    assert pool.waiters() == [] and job_id not in pool.holders()


def test_too_late_once_the_result_is_being_stored(stored_job, cancel_deps, sfn):
    store, job_id = stored_job(
        status=JobStatus.RUNNING,
        task_id="task-unified-1",
        task_state="succeeded",
        task_finished_seen_at=time.time(),
    )
    assert cancel_job(cancel_deps, job_id, "alice").outcome is CancelOutcome.STORING
    assert cancel_job(cancel_deps, "job-" + "0" * 40, "alice").outcome is CancelOutcome.NOT_FOUND
    assert store.require(job_id).status is JobStatus.RUNNING and sfn.stopped == []


def test_a_step_failing_after_the_cancel_leaves_the_cancelled_report(
    stored_job, cancel_deps, media_bucket, settings, pool
):
    store, job_id = stored_job()
    cancelled = cancel_job(cancel_deps, job_id, "alice")
    # Its execution's next step saw the job ended and raised before the stop took effect.
    deps = RecordFailureDeps(
        s3=media_bucket,
        store=store,
        layout=settings.layout,
        slots=pool,
        lost_task_hold_seconds=1,
        events=NO_JOB_EVENTS,
    )
    key = record_failure(deps, job_id, {"Error": "ExecutionEnded", "Cause": "ended"})
    assert key == cancelled.error_report_key
    assert store.require(job_id).error_reason == "cancelled"
    body = media_bucket.get_object(Bucket="media", Key=key)["Body"].read()
    assert b'"status":"cancelled"' in body.replace(b" ", b"")


@pytest.fixture
def retry_deps(submit_deps_of):
    return RetryDeps(submit=submit_deps_of())


def _failed_upload(retry_deps, body: bytes) -> str:
    """A failed job of a real upload of inbox/a.mp4 (metadata prompt); its id."""
    s3 = retry_deps.submit.s3
    put = s3.put_object(Bucket="media", Key="inbox/a.mp4", Body=body, Metadata={"prompt": "sepia"})
    store: JobStore = retry_deps.submit.store
    job_id = job_id_for("media", "inbox/a.mp4", put["VersionId"])
    from dropcut.model.jobs import JobRecord

    store.create(
        JobRecord(
            job_id=job_id,
            status=JobStatus.FAILED,
            bucket="media",
            key="inbox/a.mp4",
            version=put["VersionId"],
            error_reason="provider_unavailable",
        )
    )
    return job_id


def test_a_retry_that_stopped_after_its_claim_is_finished_by_the_next_request(retry_deps, sfn):
    job_id = _failed_upload(retry_deps, b"not a video")
    store = retry_deps.submit.store
    store.update(job_id, {"retried_by": retry_job_id(job_id)})  # claimed, then the worker died

    result = retry_job(retry_deps, job_id, "alice")

    # Submit's own checks ran again: the text file is refused, with the new job's own report.
    assert result.outcome is RetryOutcome.REFUSED and result.new_job_id == job_id + "-r2"
    new = store.require(job_id + "-r2")
    assert (new.status, new.error_reason, new.retry_of) == (
        JobStatus.FAILED,
        "input_invalid",
        job_id,
    )
    assert sfn.started == []
    again = retry_job(retry_deps, job_id, "alice")
    assert again.outcome is RetryOutcome.NOT_RETRIED and "retried already" in again.detail


def test_a_refusal_is_not_retried_a_new_manifest_restarts_it(retry_deps):
    job_id = _failed_upload(retry_deps, b"anything")
    retry_deps.submit.store.update(job_id, {"error_reason": "input_invalid"})
    result = retry_job(retry_deps, job_id, "alice")
    assert result.outcome is RetryOutcome.NOT_RETRIED and "upload the manifest" in result.detail
    assert retry_deps.submit.store.require(job_id).retried_by is None


def test_a_retry_needs_the_input_version_to_still_exist(retry_deps):
    job_id = _failed_upload(retry_deps, b"anything")
    record = retry_deps.submit.store.require(job_id)
    retry_deps.submit.s3.delete_object(Bucket="media", Key="inbox/a.mp4", VersionId=record.version)

    result = retry_job(retry_deps, job_id, "alice")

    assert result.outcome is RetryOutcome.NOT_RETRIED
    assert "no longer exists" in result.detail
    assert retry_deps.submit.store.get(job_id + "-r2") is None


def test_the_command_line_names_a_retry_apart_from_its_first_run():
    from dropcut_cli.display import short_id
    from dropcut_cli.jobs import _names

    second = retry_job_id(FIRST)
    assert short_id(second) == FIRST[:16] + "-r2"
    assert _names(short_id(second), second) and not _names(short_id(second), FIRST)
    assert _names(FIRST[:10], FIRST) and not _names(FIRST[:10], second)


def test_cancel_and_retry_refuse_a_part_id_and_name_its_job(stored_job, cancel_deps, retry_deps):
    store, job_id = stored_job(status=JobStatus.RUNNING, units=[f"{FIRST}-p01", f"{FIRST}-p02"])
    part = f"{job_id}-p01"
    cancelled = cancel_job(cancel_deps, part, "alice")
    assert cancelled.outcome is CancelOutcome.PART_ID
    assert f"dropcut cancel {job_id}" in cancelled.advice
    retried = retry_job(retry_deps, part, "alice")
    assert retried.outcome is RetryOutcome.PART_ID
    assert f"dropcut retry {job_id}" in retried.detail
    assert store.require(job_id).status is JobStatus.RUNNING  # nothing changed
    assert store.get(part + "-r2") is None and store.get(job_id + "-r2") is None


def test_a_retry_waits_for_the_job_execution_to_be_over(retry_deps, sfn, monkeypatch):
    monkeypatch.setattr("dropcut.steps.retry.EXECUTION_END_WAIT_SECONDS", 1.0)
    job_id = _failed_upload(retry_deps, b"anything")
    sfn.running.add(job_id)  # RecordFailure wrote the report; JobFailed not reached yet
    result = retry_job(retry_deps, job_id, "alice")
    assert result.outcome is RetryOutcome.NOT_RETRIED and "still ending" in result.detail
    assert retry_deps.submit.store.require(job_id).retried_by is None


class RacingStore(JobStore):
    """A jobs table in which `on_read` happens right after the first read of the job: another
    step's write landing between a cancel's read and its claim."""

    def __init__(self, table, on_read) -> None:
        super().__init__(table)
        self.on_read = on_read

    def get(self, job_id):
        record = super().get(job_id)
        if self.on_read is not None:
            race, self.on_read = self.on_read, None
            race(self)
        return record


@pytest.mark.parametrize(
    "success",
    [
        {"callback_outcome": "succeeded", "callback_received_at": 1.0},
        {"task_state": "succeeded", "task_finished_seen_at": 1.0},
    ],
    ids=["callback", "status-check"],
)
def test_a_success_stored_between_the_cancels_read_and_claim_keeps_the_paid_result(
    stored_job, cancel_deps, jobs_table, sfn, success
):
    _, job_id = stored_job(status=JobStatus.RUNNING, task_id="task-unified-1")
    store = RacingStore(jobs_table, lambda racing: JobStore.update(racing, job_id, success))
    deps = CancelDeps(**{**cancel_deps.__dict__, "store": store})
    result = cancel_job(deps, job_id, "alice")
    assert result.outcome is CancelOutcome.STORING
    record = store.require(job_id)
    assert record.status is JobStatus.RUNNING and record.error_report_key is None
    assert sfn.stopped == []


def test_a_queued_job_is_cancelled_before_anything_starts(stored_job, cancel_deps, pool, sfn):
    pool.limit = 0  # every slot busy: the job waits in the backlog
    store, job_id = stored_job(status=JobStatus.QUEUED, phase=JobPhase.QUEUED)
    pool.queue(store.require(job_id))

    result = cancel_job(cancel_deps, job_id, "arn:aws:iam::1:user/alice")

    assert result.outcome is CancelOutcome.CANCELLED and result.billed is False
    assert store.require(job_id).phase is JobPhase.CANCELLED
    pool.limit = 2
    assert pool.dispatch() == [] and sfn.started == []  # it left the backlog
    assert pool.admission is not None and pool.admission.backlog.turns() == {}
