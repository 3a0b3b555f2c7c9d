"""Finalize: copy one unit's result from the provider into the work prefix, for Stitch."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import httpx
from pydantic import BaseModel

from dropcut.errors import ExecutionEnded, JobNotReady, ProviderBadResponse
from dropcut.follow import TaskProgress
from dropcut.jobs import JobRecord, JobStatus, JobStore
from dropcut.layout import BucketLayout
from dropcut.observability import logger
from dropcut.pace import PaceBook
from dropcut.providers import ProviderFor, TaskState
from dropcut.result_copy import ResultLimits, copy_result_to_s3
from dropcut.slots import SlotPool

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


class FinalizeResult(BaseModel):
    #: Where the unit's edited video is kept for Stitch (layout.edited_key).
    edited_key: str
    bytes_stored: int


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
    #: Local stacks only: result links over http://127.0.0.1.
    allow_insecure_urls: bool = False
    #: Where the durations of tasks whose end a callback told are recorded (dropcut.pace).
    pace: PaceBook | None = None


def finalize(deps: FinalizeDeps, unit_id: str, progress: TaskProgress) -> FinalizeResult:
    """Keep one unit's edited video (the job's, or one part's) for Stitch; a retry after success
    returns the stored copy.

    The task has ended at the provider, so its slot goes to the next unit before the copy.
    Raises ExecutionEnded (the job already ended with a report), ProviderBadResponse (the
    provider no longer reports success), and the copy's named errors (result_copy).
    """
    store, slots, layout = deps.store, deps.slots, deps.layout
    record = store.require(unit_id)
    if record.spec is None:
        raise JobNotReady("the job has no resolved options; Submit starts only jobs that do")
    if record.edited_key:
        slots.release(unit_id)
        logger.info("unit already finalized")
        return FinalizeResult(edited_key=record.edited_key, bytes_stored=0)
    if record.status is JobStatus.FAILED:
        # Its execution was stopped and the reconciler ended the job with a report: an output
        # now would contradict the report the user already has.
        raise ExecutionEnded(f"the job had already ended ({record.error_reason}); nothing stored")
    # Ask again rather than carry the result URL through the execution history: it may be signed.
    task = deps.provider_for(progress.provider).get_task(progress.task_id)
    if task.state is not TaskState.SUCCEEDED or not task.result_url:
        raise ProviderBadResponse(
            f"the provider reported {task.provider_status} for a task it had reported completed"
        )
    # The provider's own figure replaces the unit's estimate on the day's spend (dropcut.budget)
    # before the slot goes on, so the next unit in line sees the corrected budget.
    credits = task.credits if task.credits is not None else record.credits
    slots.charge(unit_id, credits, task=record.task_number)
    slots.release(unit_id)
    released_at = time.time()
    _record_pace(deps, record, progress)
    edited_key = layout.edited_key(record.part_of or unit_id, unit_id)
    size = copy_result_to_s3(
        deps.client,
        deps.s3,
        task.result_url,
        layout.bucket,
        edited_key,
        deps.limits,
        allow_insecure=deps.allow_insecure_urls,
    )
    fields: dict[str, object] = {
        "edited_key": edited_key,
        "stored_at": time.time(),
        "slot_released_at": released_at,
        "credits": task.credits if task.credits is not None else record.credits,
    }
    if record.part_of:
        # A part's work is done; the job itself succeeds only when Stitch has made its output.
        fields["status"] = JobStatus.SUCCEEDED.value
    store.update(unit_id, fields)
    logger.info("edited video kept", extra={"edited_key": edited_key, "bytes": size})
    return FinalizeResult(edited_key=edited_key, bytes_stored=size)


def _record_pace(deps: FinalizeDeps, record: JobRecord, progress: TaskProgress) -> None:
    """A task whose end a confirmed callback told: its duration goes into the pace ring. (A
    status check that saw the end recorded it already, and handed over a succeeded task.)"""
    if deps.pace is None or not progress.pace_key or progress.state is TaskState.SUCCEEDED:
        return
    if record.callback_received_at and record.task_created_at:
        deps.pace.record(progress.pace_key, record.callback_received_at - record.task_created_at)
