"""The reconciler's pass in-process: a job it restarts keeps what its new execution gets during
the very same pass (a place in line, or a slot)."""

from __future__ import annotations

import time

import boto3
import pytest

from dropcut.config import Settings
from dropcut.jobs import JobStatus
from dropcut.reconcile import SETTLE_SECONDS, reconcile
from dropcut.slots import SlotPool


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


@pytest.fixture
def settings(aws):
    boto3.client("s3", region_name="us-east-1").create_bucket(Bucket="media")
    return Settings(
        bucket="media",
        jobs_table="jobs",
        inbox_prefix="inbox/",
        outbox_prefix="outbox/",
        errors_prefix="errors/",
        provider="evolink",
        provider_base_url="https://provider.invalid",
        provider_model=None,
        provider_key_secret_arn="arn:aws:secretsmanager:us-east-1:123456789012:secret:key",
        allow_insecure_urls=False,
    )


def _pass(settings, store, executions, pool):
    return reconcile(
        boto3.client("s3", region_name="us-east-1"),
        store,
        settings,
        executions,
        pool,
        manifest_wait_seconds=600,
        lost_task_hold_seconds=60,
    )


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
    settings, stored_job, pool, tokens, busy_slots
):
    store, job_id = _orphan(stored_job)
    busy = _busy(store, pool, job_id, busy_slots)
    executions = ExecutionsThatJoinAtOnce(pool, store, running=busy)

    report = _pass(settings, store, executions, pool)

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
    settings, stored_job, pool, execution, dropped
):
    store, job_id = stored_job()  # young: the pass leaves the job itself alone
    busy = _busy(store, pool, job_id, 2)
    pool.acquire("job-w", 2.0, "token-w", 3600)
    # DescribeExecution is eventually consistent: a brand-new execution may not be known yet,
    # but its entry in line proves it started.
    executions = ExecutionsThatJoinAtOnce(pool, store, running=busy)
    if execution:
        executions.statuses["job-w"] = execution

    report = _pass(settings, store, executions, pool)

    assert report.waiters_dropped == (["job-w"] if dropped else [])
    assert [w.job_id for w in pool.waiters()] == ([] if dropped else ["job-w"])
