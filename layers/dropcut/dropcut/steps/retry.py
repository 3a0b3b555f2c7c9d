"""Retry (`dropcut retry`): run a failed or cancelled job again from the same input version,
without a new upload, as a new job linked to the old one.

What was paid is re-used, never paid again: each part whose edited video is kept, or whose
task completed (or may have) while its result link still lives, is taken over by the new job's
part (dropcut.services.parts.carry_paid_results, when Prepare has made the new job's parts); only the
parts with no paid result get a new task. A job that ended `result_copy_failed` is retried
with zero new tasks while its link lives.

The new job's id is the old one's with the next attempt (`...-r2`, dropcut.model.jobs.retry_job_id),
so a repeated request finds the job the first one made. The old record is claimed first
(`retried_by`, a conditional write: a job is retried once; retry the newest attempt to go
again), then Submit's own path (dropcut.steps.submit.resubmit) checks the input and starts the
new job's execution. Refused while the job runs, after it succeeded, and for a first run
refused for its options (a new manifest or video restarts that one by itself).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from enum import StrEnum

from pydantic import BaseModel

from dropcut.aws.executions import Executions
from dropcut.aws.job_store import JobStore
from dropcut.model.jobs import JobRecord, JobStatus, attempt_of, job_of, retry_job_id
from dropcut.observability import logger
from dropcut.services.parts import reusable_results
from dropcut.steps.submit import OPTIONS_REFUSALS, Outcome, SubmitDeps, resubmit


class RetryOutcome(StrEnum):
    #: The new job was checked and started (or a repeated request found it started).
    STARTED = "started"
    #: Submit's checks refused the input again; the new job has its own report.
    REFUSED = "refused"
    #: Not retried: the job runs, succeeded, was retried already, or its input version is gone.
    NOT_RETRIED = "not_retried"
    NOT_FOUND = "not_found"
    #: The id names a part of a job: retry the job (its id is in the detail).
    PART_ID = "part_id"


class RetryResult(BaseModel):
    """What a retry did, for the command line."""

    job_id: str
    outcome: RetryOutcome
    #: The new job (started or refused), or the newer attempt that already exists.
    new_job_id: str | None = None
    detail: str = ""
    #: Of the job's parts (1 for a job not split): how many re-use paid work, how many get a
    #: new (paid) task.
    reused_parts: int = 0
    new_tasks: int = 0


@dataclass(frozen=True)
class RetryDeps:
    #: Submit's own dependencies: a retry runs Submit's checks and start.
    submit: SubmitDeps


def retry_job(deps: RetryDeps, job_id: str, requested_by: str) -> RetryResult:
    """Retry the job (see the module docstring); `requested_by` is recorded on the new job.

    Returns what happened; raises only infrastructure errors (AwsUnavailable by the handler).
    """
    store = deps.submit.store
    if part_refusal := part_id_refusal(job_id):
        return RetryResult(job_id=job_id, outcome=RetryOutcome.PART_ID, detail=part_refusal)
    old = store.get(job_id)
    if old is None:
        return RetryResult(job_id=job_id, outcome=RetryOutcome.NOT_FOUND)
    refusal = why_not_retried(store, old)
    if not refusal and not _execution_over(deps.submit.executions, job_id):
        refusal = "its execution is still ending; try again in a minute"
    if refusal:
        return RetryResult(
            job_id=job_id,
            outcome=RetryOutcome.NOT_RETRIED,
            new_job_id=old.retried_by,
            detail=refusal,
        )
    try:
        new_job_id = retry_job_id(job_id)
    except ValueError as exc:
        return RetryResult(job_id=job_id, outcome=RetryOutcome.NOT_RETRIED, detail=str(exc))
    claimed = store.update(
        job_id,
        {"retried_by": new_job_id},
        condition="#status = :failed AND (attribute_not_exists(retried_by) OR retried_by = :new)",
        condition_names={"#status": "status"},
        condition_values={":failed": JobStatus.FAILED.value, ":new": new_job_id},
    )
    if not claimed:  # another retry of it (with another id?) or a change since the read
        again = store.require(job_id)
        return RetryResult(
            job_id=job_id,
            outcome=RetryOutcome.NOT_RETRIED,
            new_job_id=again.retried_by,
            detail=why_not_retried(store, again) or "the job changed meanwhile; try again",
        )
    submitted = resubmit(deps.submit, old, new_job_id, requested_by)
    logger.info(
        "job retried",
        extra={"retry_of": job_id, "new_job_id": new_job_id, "outcome": submitted.outcome},
    )
    outcome = {
        Outcome.STARTED: RetryOutcome.STARTED,
        Outcome.DUPLICATE: RetryOutcome.STARTED,
        Outcome.REFUSED: RetryOutcome.REFUSED,
    }.get(submitted.outcome, RetryOutcome.NOT_RETRIED)
    detail = submitted.detail
    if submitted.outcome is Outcome.IGNORED:
        detail = f"version {old.version} of {old.key} no longer exists: upload the video again"
    reused, parts = reuse_of(store, old)
    if outcome is RetryOutcome.STARTED:
        detail = (
            f"{reused} of {parts} part(s) re-use what was paid (no new task), "
            f"{parts - reused} get a new paid task"
            if reused
            else f"{parts} new paid task(s)"
        )
    return RetryResult(
        job_id=job_id,
        outcome=outcome,
        new_job_id=new_job_id,
        detail=detail,
        reused_parts=reused,
        new_tasks=parts - reused if outcome is RetryOutcome.STARTED else 0,
    )


def reuse_of(store: JobStore, record: JobRecord) -> tuple[int, int]:
    """(parts whose paid work a retry of `record` re-uses, parts in all): what a retry costs,
    before it runs (the command line shows it before it asks for --yes)."""
    reusable = reusable_results(store, record)
    return len(reusable), max(1, len(record.part_ids or []))


#: How long a retry waits for the old job's execution to be over (s): its report is written a
#: step before its execution fails, and a cancel's stop takes a moment to land.
EXECUTION_END_WAIT_SECONDS = 10.0


def _execution_over(executions: Executions, job_id: str) -> bool:
    """True once the job's execution is not RUNNING, waited for at most
    EXECUTION_END_WAIT_SECONDS (a retry never runs beside the run it repeats)."""
    deadline = time.monotonic() + EXECUTION_END_WAIT_SECONDS
    while executions.status(job_id) == "RUNNING":
        if time.monotonic() > deadline:
            return False
        time.sleep(0.5)
    return True


def part_id_refusal(job_id: str) -> str:
    """Why `job_id` is not retried when it names a part of a job ("" for a job id)."""
    job = job_of(job_id)
    if job == job_id:
        return ""
    return (
        f"{job_id} is a part of {job}; a part is retried with its job: dropcut retry {job} "
        "(its parts already paid for are re-used)"
    )


def why_not_retried(store: JobStore, record: JobRecord) -> str:
    """Why this job cannot be retried now ("" when it can); the command line asks it too,
    before it asks for --yes."""
    if part_refusal := part_id_refusal(record.job_id):
        return part_refusal
    if record.status is JobStatus.SUCCEEDED:
        return "the job succeeded; upload the video again (a new version) to edit it again"
    if record.status is not JobStatus.FAILED:
        return (
            f"the job is still {record.status.value}; cancel it first "
            f"(dropcut cancel {record.job_id})"
        )
    if record.error_reason in OPTIONS_REFUSALS and attempt_of(record.job_id) == 1:
        return (
            "it was refused before anything ran: fix what its report lists and upload the "
            "manifest (or the video) again, and it starts by itself"
        )
    if record.retried_by and (newer := store.get(record.retried_by)) is not None:
        return (
            f"the job was retried already as {newer.job_id} ({newer.status.value}); retry that one"
        )
    # Not retried, or a retry that stopped between its claim and the new job: finish it.
    return ""
