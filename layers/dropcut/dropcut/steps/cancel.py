"""Cancel (`dropcut cancel`): stop a job wherever it is, and end it with a `cancelled` report.

In order: the job record flips to failed with reason `cancelled` (a conditional write, the same
claim every ending makes: one ending, and StartTask creates no task for a job that is no longer
`received`); its execution is stopped; it leaves the slot line; its slot is given back, or,
while a provider task it created may still be running, kept until that task can have ended
(the provider counts the task against the account's limit until it ends: dropcut.aws.slots); the
`cancelled` job event is published. Neither provider documents a way to cancel a task
(docs/providers.md), so a task already created runs to its end and is billed: the report's
advice says so.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

from pydantic import BaseModel

from dropcut.aws.executions import Executions
from dropcut.aws.job_events import JobEvents, JobEventType
from dropcut.aws.job_store import JobStore
from dropcut.aws.slots import SlotPool, settle_slot
from dropcut.errors import Failure, JobCancelled
from dropcut.model.jobs import JobRecord, JobStatus, job_of
from dropcut.model.layout import BucketLayout
from dropcut.observability import logger
from dropcut.providers import PROVIDERS
from dropcut.providers.base import TaskState
from dropcut.services.actors import shown
from dropcut.services.error_reports import end_job_once
from dropcut.services.parts import end_parts, is_split, part_records

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

#: The `error` a cancelled job's execution is stopped with (its history shows who and why).
STOP_ERROR = "JobCancelled"
#: How often a cancel re-reads a job that moved on while it was being cancelled.
MAX_CLAIMS = 3


class CancelOutcome(StrEnum):
    CANCELLED = "cancelled"
    #: The job had ended already (succeeded, failed, or cancelled before): nothing changed.
    ALREADY_ENDED = "already_ended"
    #: The provider finished the task and its result is being stored: too late to cancel.
    STORING = "storing"
    NOT_FOUND = "not_found"
    #: The id names a part of a job: a part is cancelled with its job (its id is in the advice).
    PART_ID = "part_id"


class CancelResult(BaseModel):
    """What a cancel did, for the command line (no token, no URL)."""

    job_id: str
    outcome: CancelOutcome
    #: The job's status and reason after the call (None: no such job).
    status: str | None = None
    reason: str | None = None
    error_report_key: str | None = None
    #: True: the provider bills (or may bill) a task of this job; False: nothing was sent.
    billed: bool | None = None
    #: True when the job's slot stays held while its task may still run at the provider.
    slot_held: bool = False
    advice: str = ""


@dataclass(frozen=True)
class CancelDeps:
    s3: S3Client
    store: JobStore
    layout: BucketLayout
    executions: Executions
    slots: SlotPool
    #: How long a slot stays held for a task that may still be running (s).
    lost_task_hold_seconds: int
    #: Job events (cancelled): best effort, never fails the step.
    events: JobEvents


def cancel_job(deps: CancelDeps, job_id: str, requested_by: str) -> CancelResult:
    """Cancel the job (see the module docstring); safe to repeat and to race with its steps
    and the reconciler. `requested_by` is who asked, the caller's ARN as AWS authenticated it
    (dropcut.services.actors): recorded as it is, shown in the report and event only through `shown`.

    Returns what happened; raises only infrastructure errors (AwsUnavailable by the handler).
    """
    if job_of(job_id) != job_id:
        return CancelResult(
            job_id=job_id,
            outcome=CancelOutcome.PART_ID,
            advice=f"{job_id} is a part of {job_of(job_id)}; a part is cancelled with its job: "
            f"dropcut cancel {job_of(job_id)}",
        )
    for _ in range(MAX_CLAIMS):
        record = deps.store.get(job_id)
        if record is None:
            return CancelResult(job_id=job_id, outcome=CancelOutcome.NOT_FOUND)
        if record.status in (JobStatus.SUCCEEDED, JobStatus.FAILED):
            return _ended(record, CancelOutcome.ALREADY_ENDED)
        if _result_ready(record):
            return _ended(record, CancelOutcome.STORING)
        failure, billed = _failure(deps, record, requested_by)
        report_key = end_job_once(
            deps.s3,
            deps.store,
            deps.layout,
            deps.events,
            record,
            failure,
            JobEventType.CANCELLED,
            fields={"cancel_requested_by": requested_by, "cancel_requested_at": time.time()},
            unless_result_ready=True,
        )
        if report_key is not None:
            return _stop(deps, record, failure, report_key, billed)
    # It kept moving (status changes between each read and claim): say where it is now.
    return _ended(deps.store.require(job_id), CancelOutcome.ALREADY_ENDED)


def _stop(
    deps: CancelDeps, record: JobRecord, failure: Failure, report_key: str, billed: bool | None
) -> CancelResult:
    """After the claim: stop the execution, leave the line, settle the slot."""
    deps.executions.stop(record.job_id, STOP_ERROR, failure.message)
    deps.slots.leave_line_of(record.job_id, record.created_at)
    deps.slots.leave_backlog(record)
    # Read again: a create whose answer arrived meanwhile recorded its task (keep the slot).
    latest = deps.store.require(record.job_id)
    given_back = settle_slot(deps.slots, latest, deps.lost_task_hold_seconds)
    end_parts(deps.store, deps.slots, latest, deps.lost_task_hold_seconds)
    logger.warning(
        "job cancelled",
        extra={"job_id": record.job_id, "task_id": latest.task_id, "slot_given_back": given_back},
    )
    return CancelResult(
        job_id=record.job_id,
        outcome=CancelOutcome.CANCELLED,
        status=JobStatus.FAILED.value,
        reason=failure.reason,
        error_report_key=report_key,
        billed=billed,
        slot_held=latest.task_may_be_running,
        advice=failure.advice,
    )


def _ended(record: JobRecord, outcome: CancelOutcome) -> CancelResult:
    return CancelResult(
        job_id=record.job_id,
        outcome=outcome,
        status=record.status.value,
        reason=record.error_reason,
        error_report_key=record.error_report_key,
    )


def _result_ready(record: JobRecord) -> bool:
    """The provider reported the task succeeded: the paid result is being stored."""
    seen_success = record.task_state == TaskState.SUCCEEDED.value and (
        record.task_finished_seen_at is not None
    )
    return seen_success or record.callback_outcome == TaskState.SUCCEEDED.value


def _failure(deps: CancelDeps, record: JobRecord, requested_by: str) -> tuple[Failure, bool | None]:
    """The report of this cancel: where the job was, and whether the provider bills it."""
    provider = record.provider or "the provider"
    documents_cancel = PROVIDERS[record.provider].supports_cancel if record.provider else False
    no_cancel = (
        f"{provider} documents no way to cancel a task"
        if not documents_cancel
        else f"dropcut does not call {provider}'s cancel yet"
    )
    hold = deps.lost_task_hold_seconds
    running = [part for part in part_records(deps.store, record) if part.task_may_be_running]
    if is_split(record) and running:
        where = (
            f"while {len(running)} of its {len(record.part_ids or [])} parts were at the provider"
        )
        billing = (
            f"their tasks keep running and are billed as usual ({no_cancel}); their results will "
            f"not be stored, and their provider slots stay held for {hold} s (JobDeadlineSeconds)"
        )
        billed: bool | None = True
    elif record.status is JobStatus.WAITING_FOR_MANIFEST:
        where, billing, billed = "while it waited for its manifest", "nothing is billed", False
    elif record.task_id is None and record.creating_since is None:
        where, billing, billed = "before its provider task was created", "nothing is billed", False
    elif record.task_id is None:
        where = "while its provider task was being created"
        billing = (
            f"a task may exist; if it does, it runs to its end and is billed ({no_cancel}), "
            f"and its provider slot stays held for {hold} s in case it runs"
        )
        billed = None
    elif record.task_may_be_running:
        where = f"while its provider task {record.task_id} was running"
        billing = (
            f"the task keeps running and is billed as usual ({no_cancel}); its result will not "
            f"be stored, and its provider slot stays held for {hold} s (JobDeadlineSeconds), "
            "until the task can have ended"
        )
        billed = True
    else:
        where = f"after its provider task {record.task_id} ended"
        billing = "the task has ended and is billed as the provider bills ended tasks"
        billed = True
    message = f"cancelled by {shown(requested_by)} {where}"
    advice = (
        f"The job was cancelled: {billing}. To run it again from the same upload: "
        f"dropcut retry {record.job_id} --yes (a new paid task for what was not paid yet; what was paid is re-used)."
    )
    return Failure(JobCancelled.reason, JobCancelled.__name__, message, advice), billed
