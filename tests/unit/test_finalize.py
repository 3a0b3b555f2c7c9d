"""Finalize never stores an output for a job that has already ended with a report."""

from __future__ import annotations

import boto3
import pytest

from dropcut.config import Settings
from dropcut.errors import ExecutionEnded
from dropcut.jobs import JobStatus
from dropcut.providers import TaskState
from dropcut.results import finalize
from dropcut.tasks import TaskProgress

SETTINGS = Settings(
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


class ProviderNeverAsked:
    def get_task(self, task_id: str):
        raise AssertionError("an ended job must not be finalized")


def test_a_job_the_reconciler_ended_gets_no_output(stored_job, pool):
    store, job_id = stored_job(
        status=JobStatus.FAILED, task_id="task-1", error_reason="execution_ended"
    )
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="media")
    progress = TaskProgress(
        task_id="task-1",
        provider="evolink",
        state=TaskState.SUCCEEDED,
        wait_seconds=1,
        interval_seconds=1,
        deadline=0,
    )
    with pytest.raises(ExecutionEnded, match="execution_ended"):
        finalize(s3, None, store, SETTINGS, lambda _: ProviderNeverAsked(), pool, job_id, progress)
    assert s3.list_objects_v2(Bucket="media", Prefix="outbox/")["KeyCount"] == 0
    assert store.require(job_id).status is JobStatus.FAILED
