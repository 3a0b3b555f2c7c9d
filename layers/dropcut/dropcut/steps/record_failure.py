"""RecordFailure: turn a Step Functions Catch result into the job's error report; the job is
marked failed and its slot given back (kept while its task may still run)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from dropcut.aws.job_events import JobEvents, JobEventType
from dropcut.aws.job_store import JobStore
from dropcut.aws.slots import SlotPool, settle_slot
from dropcut.errors import JobCancelled
from dropcut.model.jobs import JobStatus
from dropcut.model.layout import BucketLayout
from dropcut.observability import logger
from dropcut.services.error_reports import count_failure, describe_step_error, write_error_report
from dropcut.services.parts import end_parts, parts_of

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


@dataclass(frozen=True)
class RecordFailureDeps:
    s3: S3Client
    store: JobStore
    layout: BucketLayout
    slots: SlotPool
    #: How long a slot stays held for a task that may still be running (s).
    lost_task_hold_seconds: float
    #: Job events (failed): best effort, never fails the step.
    events: JobEvents


def record_failure(deps: RecordFailureDeps, job_id: str, error: dict[str, Any]) -> str:
    """Write the report for `error` (`{"Error", "Cause"}` as Catch gives it); returns its key.

    Raises LookupError when the job has no record (a bug: every execution has one).
    """
    record = deps.store.require(job_id)
    if record.error_reason == JobCancelled.reason and record.error_report_key:
        # Cancelled (dropcut cancel): a step that saw it ended raised before its execution was
        # stopped. The cancel's report, event and slot stand.
        logger.info("job was cancelled; its report stands")
        return record.error_report_key
    failure = describe_step_error(error)
    parts = parts_of(deps.store, record)
    key = write_error_report(deps.s3, deps.store, deps.layout, record, failure, parts)
    settle_slot(deps.slots, record, deps.lost_task_hold_seconds)
    end_parts(deps.store, deps.slots, record, deps.lost_task_hold_seconds)
    count_failure(failure.reason)
    if record.status is not JobStatus.FAILED:  # else its ending (the reconciler's) was published
        deps.events.publish(JobEventType.FAILED, record, failure=failure, report_key=key)
    logger.warning("job failed", extra={"reason": failure.reason, "error_type": failure.error_type})
    return key
