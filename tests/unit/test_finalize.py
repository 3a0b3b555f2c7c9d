"""Finalize never stores an output for a job that has already ended with a report, and charges
the unit's current task on the daily budget."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from devstack.media import make_sample_video
from dropcut.budget import DailyBudget
from dropcut.errors import ExecutionEnded
from dropcut.follow import TaskProgress
from dropcut.jobs import JobStatus
from dropcut.providers import ProviderTask, TaskState
from dropcut.result_copy import ResultLimits
from dropcut.slots import SlotPool
from dropcut.steps.finalize import FinalizeDeps, finalize


class ProviderNeverAsked:
    def get_task(self, task_id: str):
        raise AssertionError("an ended job must not be finalized")


def test_a_job_the_reconciler_ended_gets_no_output(stored_job, pool, settings, media_bucket):
    store, job_id = stored_job(
        status=JobStatus.FAILED, task_id="task-1", error_reason="execution_ended"
    )
    s3 = media_bucket
    progress = TaskProgress(
        task_id="task-1",
        provider="evolink",
        state=TaskState.SUCCEEDED,
        wait_seconds=1,
        interval_seconds=1,
        deadline=0,
    )
    with pytest.raises(ExecutionEnded, match="execution_ended"):
        deps = FinalizeDeps(
            s3=s3,
            client=None,
            store=store,
            layout=settings.layout,
            provider_for=lambda _: ProviderNeverAsked(),
            slots=pool,
            limits=ResultLimits(max_bytes=1 << 30),
        )
        finalize(deps, job_id, progress)
    assert s3.list_objects_v2(Bucket="media", Prefix="outbox/")["KeyCount"] == 0
    assert store.require(job_id).status is JobStatus.FAILED


class SucceededBilled:
    """The provider: every task succeeded, billed 4 credits, its result on a local link."""

    def get_task(self, task_id: str) -> ProviderTask:
        return ProviderTask(
            task_id=task_id,
            state=TaskState.SUCCEEDED,
            provider_status="completed",
            result_url="http://127.0.0.1/out.mp4",
            credits=4.0,
        )


def test_a_retried_parts_result_is_charged_to_its_new_tasks_reservation(
    stored_job, slots_table, tokens, settings, media_bucket, tmp_path
):
    pool = SlotPool(
        slots_table, tokens, "evolink", limit=2, budget=DailyBudget(100, credits_per_second=1.0)
    )
    failed = [{"task_id": "task-1", "credits": 1.0}]
    store, job_id = stored_job(status=JobStatus.RUNNING, task_id="task-2", failed_tasks=failed)
    # Its first task was charged when it failed (CheckStatus); its new task reserved 5.
    pool.acquire(job_id, 1.0, "tok", 3600, estimate=5)
    pool.charge(job_id, 1.0, task=0)
    pool.reserve(job_id, 1, 5)
    edited = Path(make_sample_video(tmp_path / "edited.mp4", seconds=1.0, width=160, height=120))
    video = httpx.Response(200, headers={"content-type": "video/mp4"}, content=edited.read_bytes())
    deps = FinalizeDeps(
        s3=media_bucket,
        client=httpx.Client(transport=httpx.MockTransport(lambda _: video)),
        store=store,
        layout=settings.layout,
        provider_for=lambda _: SucceededBilled(),
        slots=pool,
        limits=ResultLimits(max_bytes=1 << 20),
        allow_insecure_urls=True,
    )
    progress = TaskProgress(
        task_id="task-2",
        provider="evolink",
        state=TaskState.SUCCEEDED,
        wait_seconds=1,
        interval_seconds=1,
        deadline=0,
    )
    assert finalize(deps, job_id, progress).bytes_stored == edited.stat().st_size
    first, second = pool.reservation(job_id, 0), pool.reservation(job_id, 1)
    assert first is not None and float(first["charged"]) == 1.0
    assert second is not None and float(second["charged"]) == 4.0
    assert pool.spent() == 5.0
