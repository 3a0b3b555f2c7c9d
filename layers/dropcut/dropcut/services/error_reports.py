"""Error reports: one JSON document per failed job, under the errors prefix, saying what to do."""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.metrics import MetricUnit, single_metric
from pydantic import BaseModel

from dropcut.aws.job_events import JobEvents, JobEventType
from dropcut.aws.job_store import JobStore
from dropcut.aws.storage import put_json
from dropcut.errors import (
    INTERNAL_ERROR_REASON,
    DropcutError,
    Failure,
    JobCancelled,
    StepTimedOut,
    error_class,
)
from dropcut.model.jobs import JobRecord, JobStatus
from dropcut.model.layout import BucketLayout
from dropcut.model.phases import JobPhase
from dropcut.observability import metrics
from dropcut.services.parts import paid_of, parts_of

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


class ErrorReport(BaseModel):
    """What failed, why, and what to do next: the document a user finds next to their input."""

    job_id: str
    #: "failed", or "cancelled" for a job someone cancelled (reason `cancelled`).
    status: str = "failed"
    input_bucket: str
    input_key: str
    input_version: str
    reason: str
    error_type: str
    message: str
    advice: str
    problems: list[dict[str, str]] = []
    provider: str | None = None
    provider_task_id: str | None = None
    #: A split job's parts: each one's span, state, task, credits and kept edited video.
    parts: list[dict[str, Any]] = []
    #: The job's plan and estimate (dropcut.model.plan.Plan as JSON), when Submit made one.
    plan: dict[str, Any] | None = None
    #: What was paid: every provider task of the job and its credits (dropcut.services.parts.paid_of);
    #: None for an input refused before any task.
    paid: dict[str, Any] | None = None
    failed_at: float


def describe_step_error(error: dict[str, Any]) -> Failure:
    """The failure a Step Functions Catch result (`{"Error": name, "Cause": text or the
    Lambda error JSON}`) describes; a name no named error explains is an internal error."""
    error_type = str(error.get("Error") or "UnknownError")
    cause = error.get("Cause") or ""
    message = str(cause)
    try:
        parsed = json.loads(cause) if isinstance(cause, str) and cause.startswith("{") else None
    except ValueError:
        parsed = None
    if isinstance(parsed, dict):
        message = str(parsed.get("errorMessage") or message)
        error_type = str(parsed.get("errorType") or error_type)
    known = error_class(error_type)
    if known is not None:
        return Failure(known.reason, error_type, message, known.advice)
    if error_type in StepTimedOut.error_names:
        return Failure(StepTimedOut.reason, error_type, message or error_type, StepTimedOut.advice)
    return Failure(INTERNAL_ERROR_REASON, error_type, message or error_type, DropcutError.advice)


def put_error_report(
    s3: S3Client,
    layout: BucketLayout,
    record: JobRecord,
    failure: Failure,
    parts: list[dict[str, Any]] | None = None,
    paid: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Write the report beside the input's place; returns the job fields that record the failure.
    The input is untouched."""
    report = ErrorReport(
        job_id=record.job_id,
        status="cancelled" if failure.reason == JobCancelled.reason else "failed",
        input_bucket=record.bucket,
        input_key=record.key,
        input_version=record.version,
        reason=failure.reason,
        error_type=failure.error_type,
        message=failure.message,
        advice=failure.advice,
        problems=[p.as_dict() for p in failure.problems],
        provider=record.provider,
        provider_task_id=record.task_id,
        parts=parts or [],
        plan=record.plan,
        paid=paid,
        failed_at=time.time(),
    )
    key = layout.error_report_key(record.key)
    put_json(s3, layout.bucket, key, report.model_dump(mode="json"))
    return {
        "status": JobStatus.FAILED.value,
        "phase": _ending_phase(failure).value,
        "error_reason": failure.reason,
        "error_message": failure.message,
        "error_report_key": key,
        "problems": report.problems or None,
    }


def create_failed(store: JobStore, record: JobRecord, failed: dict[str, Any]) -> bool:
    """Create the record of a job that ends before it starts (refused, not accepted) with the
    fields put_error_report returned; False when the job has a record already (nothing
    written). The report comes first: a crash in between leaves no record, and the repeated
    event ends the job again."""
    fields = {name: value for name, value in failed.items() if value is not None}
    return store.create(JobRecord.model_validate({**record.model_dump(), **fields}))


def write_error_report(
    s3: S3Client,
    store: JobStore,
    layout: BucketLayout,
    record: JobRecord,
    failure: Failure,
    parts: list[dict[str, Any]] | None = None,
) -> str:
    """Write the report (with what was paid) and mark the job failed; returns the report's key."""
    failed = put_error_report(s3, layout, record, failure, parts, paid_of(store, record))
    store.update(record.job_id, failed)
    return str(failed["error_report_key"])


def end_job_once(
    s3: S3Client,
    store: JobStore,
    layout: BucketLayout,
    events: JobEvents,
    record: JobRecord,
    failure: Failure,
    kind: JobEventType = JobEventType.FAILED,
    fields: dict[str, Any] | None = None,
    *,
    unless_result_ready: bool = False,
) -> str | None:
    """End a job that has not ended, with an error report and its `kind` event, unless it moved
    on since `record` was read (or, with `unless_result_ready`, a task success is stored on it:
    a paid result being kept); the report's key, or None (then nothing was written).

    The conditional status flip (with `fields`) is the claim: one ending, whoever races."""
    condition, values = "#status = :seen", {":seen": record.status.value}
    if unless_result_ready:
        # The same write that ends the job checks it: a callback or status check that stores a
        # success between the caller's read and this write wins, and the paid result is kept.
        condition += (
            " AND attribute_not_exists(callback_outcome)"
            " AND (attribute_not_exists(task_state) OR task_state <> :succeeded)"
        )
        values[":succeeded"] = "succeeded"
    claimed = store.update(
        record.job_id,
        {
            **(fields or {}),
            "status": JobStatus.FAILED.value,
            "phase": _ending_phase(failure).value,
            "error_reason": failure.reason,
        },
        condition=condition,
        condition_names={"#status": "status"},
        condition_values=values,
    )
    if not claimed:
        return None
    report_key = write_error_report(s3, store, layout, record, failure, parts_of(store, record))
    events.publish(kind, record, failure=failure, report_key=report_key)
    return report_key


def _ending_phase(failure: Failure) -> JobPhase:
    """A failed job's phase: `cancelled` when someone cancelled it, else `failed`."""
    return JobPhase.CANCELLED if failure.reason == JobCancelled.reason else JobPhase.FAILED


def count_failure(reason: str) -> None:
    """JobsFailed in total (the alarm's metric) and by reason (the dashboard's)."""
    metrics.add_metric(name="JobsFailed", unit="Count", value=1)
    with single_metric(name="JobsFailedByReason", unit=MetricUnit.Count, value=1) as by_reason:
        by_reason.add_dimension(name="reason", value=reason)
