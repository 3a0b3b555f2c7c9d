"""Finalize never stores an output for a job that has already ended with a report, charges
the unit's current task on the daily budget, and keeps trying a paid result's copy until its
window ends."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from devstack.media import make_sample_video
from dropcut.aws.result_copy import ResultLimits
from dropcut.aws.slots import SlotPool
from dropcut.errors import ExecutionEnded
from dropcut.model.budget import DailyBudget
from dropcut.model.follow import TaskProgress
from dropcut.model.jobs import JobStatus
from dropcut.providers import ProviderTask, TaskState
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
            copy_window_seconds=3600,
            allow_insecure_urls=False,
            pace=None,
        )
        finalize(deps, job_id, progress)
    assert s3.list_objects_v2(Bucket="media", Prefix="outbox/")["KeyCount"] == 0
    assert store.require(job_id).status is JobStatus.FAILED


class ReadyProvider:
    """A provider whose task has succeeded, with its result at a CDN link."""

    result_link_seconds = 24 * 3600

    def get_task(self, task_id: str):
        from dropcut.providers import ProviderTask

        return ProviderTask(
            task_id=task_id,
            state=TaskState.SUCCEEDED,
            provider_status="completed",
            result_url="http://cdn.example/out.mp4",
            credits=4.0,
        )


class Cdn:
    """Answers 404 (the object is not at the edge yet, or gone) until told to serve the video."""

    def __init__(self, video: bytes) -> None:
        self.video = video
        self.serving = False
        self.requests = 0

    def __call__(self, request):
        import httpx

        self.requests += 1
        if not self.serving:
            return httpx.Response(404, content=b"<Error><Code>NoSuchKey</Code></Error>")
        return httpx.Response(200, content=self.video, headers={"content-type": "video/mp4"})


@pytest.fixture
def ready_unit(stored_job, pool, settings, media_bucket, tmp_path):
    """finalize(seen_seconds_ago) for a running job whose task succeeded that long ago."""
    import time
    from pathlib import Path

    import httpx

    from devstack.media import make_sample_video

    video = Path(make_sample_video(tmp_path / "out.mp4", seconds=1.0, width=160, height=120))
    cdn = Cdn(video.read_bytes())
    store, job_id = stored_job(status=JobStatus.RUNNING, task_id="task-unified-1")
    deps = FinalizeDeps(
        s3=media_bucket,
        client=httpx.Client(transport=httpx.MockTransport(cdn)),
        store=store,
        layout=settings.layout,
        provider_for=lambda _: ReadyProvider(),
        slots=pool,
        limits=ResultLimits(max_bytes=1 << 30),
        copy_window_seconds=3600,
        allow_insecure_urls=True,
        pace=None,
    )
    progress = TaskProgress(
        task_id="task-unified-1",
        provider="evolink",
        state=TaskState.SUCCEEDED,
        wait_seconds=1,
        interval_seconds=1,
        deadline=time.time() + 600,
    )

    def run(seen_seconds_ago: float):
        store.update(job_id, {"task_finished_seen_at": time.time() - seen_seconds_ago})
        return finalize(deps, job_id, progress)

    return run, cdn, store, job_id


def test_a_result_link_that_answers_404_for_90_s_is_retried_then_stored(ready_unit):
    run, cdn, store, job_id = ready_unit
    waits = [run(seen_ago).copy_retry_seconds for seen_ago in (0, 10, 30, 60, 90)]
    assert all(wait >= 1 for wait in waits), waits  # each: wait, then Finalize again
    assert cdn.requests == 5
    record = store.require(job_id)
    assert record.edited_key is None and record.result_copy_attempts == 5
    assert "404" in (record.result_copy_error or "")
    assert record.result_link_expires_at == pytest.approx(record.task_finished_seen_at + 24 * 3600)
    cdn.serving = True
    stored = run(95)
    assert stored.bytes_stored == len(cdn.video) and stored.copy_retry_seconds == 0
    assert store.require(job_id).edited_key == stored.edited_key


def test_a_link_dead_past_the_window_ends_result_copy_failed_with_the_task_and_expiry(ready_unit):
    from dropcut.errors import ResultCopyFailed

    run, _, store, job_id = ready_unit
    with pytest.raises(ResultCopyFailed, match="task-unified-1") as failed:
        run(3601)
    assert "could not be copied for 3600 s" in str(failed.value)
    assert "its link lives until" in str(failed.value)
    assert store.require(job_id).edited_key is None


def test_copy_retries_back_off_to_five_minutes_and_never_pass_the_window():
    from dropcut.steps.finalize import copy_retry_wait

    assert 3 <= copy_retry_wait(1, 3600) <= 5
    assert 40 <= copy_retry_wait(5, 3600) <= 80
    assert all(150 <= copy_retry_wait(n, 3600) <= 300 for n in range(7, 40))
    assert copy_retry_wait(9, 12.5) <= 13
    assert copy_retry_wait(9, 0.2) == 1


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
        copy_window_seconds=3600,
        allow_insecure_urls=True,
        pace=None,
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
