"""Finalize never stores an output for a job that has already ended with a report."""

from __future__ import annotations

import pytest

from dropcut.errors import ExecutionEnded
from dropcut.follow import TaskProgress
from dropcut.jobs import JobStatus
from dropcut.providers import TaskState
from dropcut.result_copy import ResultLimits
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
