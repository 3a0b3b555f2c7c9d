"""Error reports: one JSON document per failed job, under the errors prefix, saying what to do."""

from __future__ import annotations

import json
import time
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit, single_metric
from pydantic import BaseModel

from dropcut.config import Settings
from dropcut.errors import DropcutError, Problem, error_class
from dropcut.jobs import JobRecord, JobStatus, JobStore, error_report_key_for
from dropcut.observability import logger, metrics
from dropcut.slots import SlotPool, settle_slot
from dropcut.storage import put_json

# Step Functions' and Lambda's own names for a step that ran out of time (moto reports a
# heartbeat expiry as States.Timeout, AWS as States.HeartbeatTimeout).
STEP_TIMEOUT_ERRORS = {"States.Timeout", "States.HeartbeatTimeout", "Sandbox.Timedout"}
STEP_TIMEOUT_ADVICE = "A step of the job ran past its time limit; upload the video again."


class ErrorReport(BaseModel):
    """What failed, why, and what to do next: the document a user finds next to their input."""

    job_id: str
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
    failed_at: float


def describe_step_error(error: dict[str, Any]) -> tuple[str, str, str, str]:
    """(error_type, reason, message, advice) from a Step Functions Catch result {Error, Cause}."""
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
        return error_type, known.reason, message, known.advice
    if error_type in STEP_TIMEOUT_ERRORS:
        return error_type, "step_timed_out", message or error_type, STEP_TIMEOUT_ADVICE
    return error_type, "internal_error", message or error_type, DropcutError.advice


def put_error_report(
    s3: Any,
    settings: Settings,
    record: JobRecord,
    *,
    error_type: str,
    reason: str,
    message: str,
    advice: str,
    problems: list[Problem] | None = None,
) -> dict[str, Any]:
    """Write the report beside the input's place; returns the job fields that record the failure.
    The input is untouched."""
    report = ErrorReport(
        job_id=record.job_id,
        input_bucket=record.bucket,
        input_key=record.key,
        input_version=record.version,
        reason=reason,
        error_type=error_type,
        message=message,
        advice=advice,
        problems=[p.as_dict() for p in problems or []],
        provider=record.provider,
        provider_task_id=record.task_id,
        failed_at=time.time(),
    )
    key = error_report_key_for(record.key, settings.inbox_prefix, settings.errors_prefix)
    put_json(s3, settings.bucket, key, report.model_dump(mode="json"))
    return {
        "status": JobStatus.FAILED.value,
        "error_reason": reason,
        "error_message": message,
        "error_report_key": key,
        "problems": report.problems or None,
    }


def write_error_report(
    s3: Any, store: JobStore, settings: Settings, record: JobRecord, **report: Any
) -> str:
    """Write the report (`report`: put_error_report's keywords) and mark the job failed;
    returns the report's key."""
    failed = put_error_report(s3, settings, record, **report)
    store.update(record.job_id, failed)
    return str(failed["error_report_key"])


def record_step_failure(
    s3: Any,
    store: JobStore,
    settings: Settings,
    slots: SlotPool,
    lost_task_hold_seconds: float,
    job_id: str,
    error: dict[str, Any],
) -> str:
    """Turn a Step Functions Catch result into the job's error report; returns the report key.

    The job's slot is given back, unless its task may still be running at the provider.
    """
    record = store.require(job_id)
    error_type, reason, message, advice = describe_step_error(error)
    key = write_error_report(
        s3,
        store,
        settings,
        record,
        error_type=error_type,
        reason=reason,
        message=message,
        advice=advice,
    )
    settle_slot(slots, record, lost_task_hold_seconds)
    count_failure(reason)
    logger.warning("job failed", extra={"reason": reason, "error_type": error_type})
    return key


def count_failure(reason: str) -> None:
    """JobsFailed in total (the alarm's metric) and by reason (the dashboard's)."""
    metrics.add_metric(name="JobsFailed", unit="Count", value=1)
    with single_metric(name="JobsFailedByReason", unit=MetricUnit.Count, value=1) as by_reason:
        by_reason.add_dimension(name="reason", value=reason)
