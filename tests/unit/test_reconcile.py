"""The reconciler's pass in-process: a job it restarts keeps what its new execution gets during
the very same pass (a place in line, or a slot)."""

from __future__ import annotations

import time

import pytest

from dropcut.aws.job_events import NO_JOB_EVENTS
from dropcut.aws.slots import SlotPool
from dropcut.model.jobs import JobStatus
from dropcut.steps.reconcile import SETTLE_SECONDS, ReconcileDeps, reconcile


class ExecutionsThatJoinAtOnce:
    """Executions whose AcquireSlot state runs the instant they start, as on a quiet stack: the
    new execution joins the line (and takes a free slot) before the reconciler's pass ends."""

    def __init__(self, pool: SlotPool, store, running: tuple[str, ...] = ()) -> None:
        self.pool = pool
        self.store = store
        self.statuses = dict.fromkeys(running, "RUNNING")
        self.started: list[str] = []

    def status(self, job_id: str) -> str | None:
        return self.statuses.get(job_id)

    def start(self, job_id: str) -> None:
        self.started.append(job_id)
        self.statuses[job_id] = "RUNNING"
        record = self.store.get(job_id)
        self.pool.acquire(job_id, record.created_at, f"token-{job_id}", 3600)


def _pass(s3, settings, store, executions, pool):
    deps = ReconcileDeps(
        s3=s3,
        store=store,
        layout=settings.layout,
        executions=executions,
        slots=pool,
        manifest_wait_seconds=600,
        lost_task_hold_seconds=60,
        events=NO_JOB_EVENTS,
        batches=None,
        inbox=None,
    )
    return reconcile(deps)


def _busy(store, pool, like: str, count: int) -> tuple[str, ...]:
    """`count` running jobs (copies of job `like`) holding slots; their ids."""
    busy = tuple(f"busy-{i}" for i in range(count))
    for i, other in enumerate(busy):
        running = store.require(like).model_copy(
            update={"job_id": other, "status": JobStatus.RUNNING}
        )
        store.create(running)
        pool.acquire(other, float(i), f"token-{other}", 3600)
    return busy


def _orphan(stored_job):
    """A received job, older than the settle time, whose execution never started."""
    return stored_job(created_at=time.time() - SETTLE_SECONDS - 60)


@pytest.mark.parametrize("busy_slots", [0, 2], ids=["slot-free", "pool-full"])
def test_a_restarted_job_keeps_what_its_execution_got_during_the_pass(
    media_bucket, settings, stored_job, pool, tokens, busy_slots
):
    store, job_id = _orphan(stored_job)
    busy = _busy(store, pool, job_id, busy_slots)
    executions = ExecutionsThatJoinAtOnce(pool, store, running=busy)

    report = _pass(media_bucket, settings, store, executions, pool)

    assert executions.started == report.restarted == [job_id]
    assert report.slots_reclaimed == [] and report.waiters_dropped == []
    if busy_slots:
        assert [waiter.job_id for waiter in pool.waiters()] == [job_id]
        assert f"token-{job_id}" not in tokens.resumed
    else:
        assert set(pool.holders()) == {job_id}
        assert tokens.resumed == [f"token-{job_id}"]


@pytest.mark.parametrize(
    ("execution", "dropped"),
    [(None, False), ("RUNNING", False), ("ABORTED", True), ("SUCCEEDED", True)],
    ids=["not-visible-yet", "running", "cancelled", "over"],
)
def test_only_waiters_whose_execution_is_over_leave_the_line(
    media_bucket, settings, stored_job, pool, execution, dropped
):
    store, job_id = stored_job()  # young: the pass leaves the job itself alone
    busy = _busy(store, pool, job_id, 2)
    pool.acquire("job-w", 2.0, "token-w", 3600)
    # DescribeExecution is eventually consistent: a brand-new execution may not be known yet,
    # but its entry in line proves it started.
    executions = ExecutionsThatJoinAtOnce(pool, store, running=busy)
    if execution:
        executions.statuses["job-w"] = execution

    report = _pass(media_bucket, settings, store, executions, pool)

    assert report.waiters_dropped == (["job-w"] if dropped else [])
    assert [w.job_id for w in pool.waiters()] == ([] if dropped else ["job-w"])


def test_parts_made_after_their_job_ended_are_ended(media_bucket, settings, stored_job, pool):
    """Issue 26, item 16: a job cancelled while Prepare ran (Cancel saw no parts yet) leaves
    parts in `received`; the reconciler ends them, and leaves a running job's parts alone."""
    old = time.time() - SETTLE_SECONDS - 60
    store, job_id = stored_job(created_at=old, status=JobStatus.FAILED, error_reason="cancelled")
    running_job = "job-" + "b" * 32
    store.create(
        store.require(job_id).model_copy(
            update={"job_id": running_job, "status": JobStatus.RUNNING}
        )
    )
    parts = {}
    for job in (job_id, running_job):
        parts[job] = f"{job}-p00"
        store.create(
            store.require(job).model_copy(
                update={"job_id": parts[job], "part_of": job, "status": JobStatus.RECEIVED}
            )
        )
    executions = ExecutionsThatJoinAtOnce(pool, store, running=(running_job,))

    report = _pass(media_bucket, settings, store, executions, pool)

    assert report.parts_ended == [parts[job_id]]
    assert store.require(parts[job_id]).status is JobStatus.FAILED
    assert store.require(parts[running_job]).status is JobStatus.RECEIVED
    assert executions.started == []
