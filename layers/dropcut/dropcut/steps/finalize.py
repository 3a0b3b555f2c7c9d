"""Finalize: copy one part's result from the provider into the work prefix, for Stitch."""

from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import httpx
from pydantic import BaseModel

from dropcut.aws.job_store import JobStore
from dropcut.aws.pace import PaceBook
from dropcut.aws.result_copy import ResultLimits, copy_result_to_s3
from dropcut.aws.slots import SlotPool
from dropcut.errors import (
    ExecutionEnded,
    JobNotReady,
    ProviderBadResponse,
    ProviderUnavailable,
    ResultCopyFailed,
    ResultUnavailable,
)
from dropcut.model.follow import TaskProgress
from dropcut.model.jobs import JobStatus, PartRecord
from dropcut.model.layout import BucketLayout
from dropcut.model.phases import JobPhase
from dropcut.observability import logger
from dropcut.providers import ProviderFor, TaskState

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


class FinalizeResult(BaseModel):
    #: Where the part's edited video is kept for Stitch (layout.edited_key); None: not yet.
    edited_key: str | None
    bytes_stored: int
    #: > 0: the copy failed for a reason that may pass; the state machine waits this long (s)
    #: in WaitToCopyAgain, then runs Finalize again. 0: stored.
    copy_retry_seconds: int = 0


@dataclass(frozen=True)
class FinalizeDeps:
    s3: S3Client
    #: Downloads the result (dropcut.providers.http.make_client: bounded timeouts).
    client: httpx.Client
    store: JobStore
    layout: BucketLayout
    provider_for: ProviderFor
    slots: SlotPool
    #: Bounds on the copy of a result (MaxResultBytes, time, redirects).
    limits: ResultLimits
    #: ResultCopyWindowSeconds: how long after the task was seen to succeed a failed copy is
    #: still retried (the state machine retries; this step says when to stop).
    copy_window_seconds: int
    #: Local stacks only: result links over http://127.0.0.1.
    allow_insecure_urls: bool
    #: Where the durations of tasks whose end a callback told are recorded (dropcut.aws.pace).
    pace: PaceBook | None


def finalize(deps: FinalizeDeps, part_id: str, progress: TaskProgress) -> FinalizeResult:
    """Keep one part's edited video (the job's own in the one-part case) for Stitch; a retry
    after success returns the stored copy.

    The task has ended at the provider, so its slot goes to the next part in line before the
    copy.
    A copy that fails for a reason that may pass (the link answers 401/403/404/410 or 5xx, the
    transfer breaks) returns `copy_retry_seconds` > 0 (backed off: copy_retry_wait) for the
    state machine to wait and try again, until `copy_window_seconds` after the task was seen to
    succeed; then it raises ResultCopyFailed, with the task id and the link's expiry on the
    record, for `dropcut retry` to copy it again without a new task. Raises ExecutionEnded (the
    job already ended with a report), ProviderBadResponse (the provider no longer reports
    success), ResultCopyFailed, and the copy's other named errors (result_copy).
    """
    store, slots, layout = deps.store, deps.slots, deps.layout
    record = store.require_part(part_id)
    if record.spec is None:
        raise JobNotReady("the job has no resolved options; Submit starts only jobs that do")
    if record.edited_key:
        if record.part_of:  # a part a retry re-uses: its edited video is kept already
            store.move_phase(part_id, JobPhase.EDITED)
        slots.release(part_id)
        logger.info("part already finalized")
        return FinalizeResult(edited_key=record.edited_key, bytes_stored=0)
    if record.status is JobStatus.FAILED:
        # Its execution was stopped and the reconciler ended the job with a report: an output
        # now would contradict the report the user already has.
        raise ExecutionEnded(f"the job had already ended ({record.error_reason}); nothing stored")
    # Ask again rather than carry the result URL through the execution history: it may be signed.
    task_id = progress.task_id or record.task_id or ""  # "": a task a callback adopted
    provider = deps.provider_for(progress.provider)
    task = provider.get_task(task_id)
    if task.state is not TaskState.SUCCEEDED or not task.result_url:
        raise ProviderBadResponse(
            f"the provider reported {task.provider_status} for a task it had reported completed"
        )
    # The provider's own figure replaces the part's estimate on the day's spend (dropcut.model.budget)
    # before the slot goes on, so the next part in line sees the corrected budget.
    credits = task.credits if task.credits is not None else record.credits
    slots.charge(part_id, credits, task=record.task_number)
    slots.release(part_id)
    released_at = time.time()
    _record_pace(deps, record, progress)
    edited_key = layout.edited_key(record.part_of or part_id, part_id)
    try:
        size = copy_result_to_s3(
            deps.client,
            deps.s3,
            task.result_url,
            layout.bucket,
            edited_key,
            deps.limits,
            allow_insecure=deps.allow_insecure_urls,
        )
    except (ResultUnavailable, ProviderUnavailable) as trouble:
        succeeded_at = record.task_finished_seen_at or released_at
        expires_at = succeeded_at + provider.result_link_seconds
        attempts = record.result_copy_attempts + 1
        deps.store.update(
            part_id,
            {
                "result_copy_error": str(trouble),
                "result_copy_attempts": attempts,
                "result_link_expires_at": expires_at,
            },
        )
        window_left = succeeded_at + deps.copy_window_seconds - time.time()
        if window_left > 0:  # may pass: wait, backed off, and try again
            logger.warning("result copy failed; trying again", extra={"error": str(trouble)})
            return FinalizeResult(
                edited_key=None,
                bytes_stored=0,
                copy_retry_seconds=copy_retry_wait(attempts, window_left),
            )
        raise ResultCopyFailed(
            f"the result of task {task_id} could not be copied for "
            f"{deps.copy_window_seconds} s after the provider reported it ready ({trouble}); "
            f"its link lives until {_utc(expires_at)}"
        ) from None
    fields: dict[str, object] = {
        "edited_key": edited_key,
        "stored_at": time.time(),
        "slot_released_at": released_at,
        "credits": task.credits if task.credits is not None else record.credits,
    }
    if record.part_of:
        # A part's work is done; the job itself succeeds only when Stitch has made its output.
        fields["status"] = JobStatus.SUCCEEDED.value
        fields["phase"] = JobPhase.EDITED.value
    store.update(part_id, fields)
    logger.info("edited video kept", extra={"edited_key": edited_key, "bytes": size})
    return FinalizeResult(edited_key=edited_key, bytes_stored=size)


#: The first wait before a failed copy is tried again, and the longest (s).
COPY_RETRY_FIRST_SECONDS = 5
COPY_RETRY_MAX_SECONDS = 300


def copy_retry_wait(attempts: int, window_left: float) -> int:
    """The wait (s, >= 1) after the `attempts`-th failed copy: exponential from
    COPY_RETRY_FIRST_SECONDS, capped at COPY_RETRY_MAX_SECONDS, full jitter on its upper half (so
    parts failing together spread out), never past the copy window's end (`window_left` s)."""
    ceiling = min(COPY_RETRY_MAX_SECONDS, COPY_RETRY_FIRST_SECONDS * 2 ** (attempts - 1))
    wait = random.uniform(ceiling / 2, ceiling)
    return max(1, math.ceil(min(wait, window_left)))


def _utc(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M UTC")


def _record_pace(deps: FinalizeDeps, record: PartRecord, progress: TaskProgress) -> None:
    """A task whose end a confirmed callback told: its duration goes into the pace ring. (A
    status check that saw the end recorded it already, and handed over a succeeded task.)"""
    if deps.pace is None or not progress.pace_key or progress.state is TaskState.SUCCEEDED:
        return
    if record.callback_received_at and record.task_created_at:
        deps.pace.record(progress.pace_key, record.callback_received_at - record.task_created_at)
