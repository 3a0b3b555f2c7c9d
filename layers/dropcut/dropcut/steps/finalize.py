"""Finalize: copy the provider's result into the outbox and write the result manifest."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import httpx
from pydantic import BaseModel

from dropcut.bounded_json import BoundedJsonError, parse_bounded_json
from dropcut.errors import ExecutionEnded, JobNotReady, ProviderBadResponse
from dropcut.follow import TaskProgress
from dropcut.job_events import NO_JOB_EVENTS, JobEvents, JobEventType
from dropcut.jobs import JobRecord, JobStatus, JobStore, is_job_id
from dropcut.layout import BucketLayout
from dropcut.observability import logger, metrics
from dropcut.pace import PaceBook
from dropcut.providers import ProviderFor, TaskState
from dropcut.result_copy import ResultLimits, copy_result_to_s3
from dropcut.slots import SlotPool
from dropcut.storage import head_or_none, put_json

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


class FinalizeResult(BaseModel):
    output_key: str
    result_manifest_key: str
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
    #: Job events (succeeded): best effort, never fails the step.
    events: JobEvents = NO_JOB_EVENTS
    #: Where the durations of tasks whose end a callback told are recorded (dropcut.pace).
    pace: PaceBook | None = None


def finalize(deps: FinalizeDeps, job_id: str, progress: TaskProgress) -> FinalizeResult:
    """Store the result and close the job. A retry after success returns the stored result.

    The task has ended at the provider, so its slot goes to the next job before the copy.
    Raises ExecutionEnded (the job already ended with a report), ProviderBadResponse (the
    provider no longer reports success), and the copy's named errors (result_copy).
    """
    store, slots, layout = deps.store, deps.slots, deps.layout
    record = store.require(job_id)
    if record.spec is None:
        raise JobNotReady("the job has no resolved options; Submit starts only jobs that do")
    if record.status is JobStatus.SUCCEEDED and record.output_key:
        slots.release(job_id)
        logger.info("job already finalized")
        return FinalizeResult(
            output_key=record.output_key,
            result_manifest_key=layout.result_manifest_key(record.output_key),
            bytes_stored=0,
        )
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
    # The provider's own figure replaces the job's estimate on the day's spend (dropcut.budget)
    # before the slot goes on, so the next job in line sees the corrected budget.
    slots.charge(job_id, task.credits if task.credits is not None else record.credits)
    slots.release(job_id)
    released_at = time.time()
    _record_pace(deps, record, progress)
    output_key, newer_version = _place(deps, record.key, record.version, record.spec.output_name)
    manifest_key = layout.result_manifest_key(output_key)
    started = time.time()
    size = copy_result_to_s3(
        deps.client,
        deps.s3,
        task.result_url,
        layout.bucket,
        output_key,
        deps.limits,
        allow_insecure=deps.allow_insecure_urls,
    )
    stored_at = time.time()
    manifest = {
        "job_id": job_id,
        "status": "succeeded",
        "input": {"bucket": record.bucket, "key": record.key, "version": record.version},
        # A newer version of the input was uploaded: its edit has the plain name, this one
        # a name with its version (layout.version_output_key).
        "superseded": newer_version is not None,
        "superseded_by_version": newer_version,
        "output": {"bucket": layout.bucket, "key": output_key, "bytes": size},
        "prompt": record.spec.prompt,
        "options": record.spec.model_dump(mode="json", exclude={"prompt"}),
        "options_source": record.spec_source,
        "media": record.media,
        "notices": record.notices,
        "provider": progress.provider,
        "provider_task_id": progress.task_id,
        "credits": task.credits if task.credits is not None else record.credits,
        "polls": progress.polls,
        "timings": {
            "received_at": record.created_at,
            "task_created_at": record.task_created_at,
            "provider_finished_seen_at": record.task_finished_seen_at,
            "stored_at": stored_at,
            "copy_seconds": round(stored_at - started, 3),
            "total_seconds": round(stored_at - record.created_at, 3),
        },
    }
    put_json(deps.s3, layout.bucket, manifest_key, manifest)
    store.update(
        job_id,
        {
            "status": JobStatus.SUCCEEDED.value,
            "output_key": output_key,
            "result_manifest_key": manifest_key,
            "stored_at": stored_at,
            "slot_released_at": released_at,
            "credits": manifest["credits"],
        },
    )
    deps.events.publish(
        JobEventType.SUCCEEDED,
        record.model_copy(
            update={
                "output_key": output_key,
                "result_manifest_key": manifest_key,
                "credits": manifest["credits"],
            }
        ),
    )
    metrics.add_metric(name="JobsSucceeded", unit="Count", value=1)
    if isinstance(manifest["credits"], int | float):
        metrics.add_metric(name="CreditsUsed", unit="Count", value=float(manifest["credits"]))
    logger.info("job succeeded", extra={"output_key": output_key, "bytes": size})
    return FinalizeResult(
        output_key=output_key, result_manifest_key=manifest_key, bytes_stored=size
    )


def _place(
    deps: FinalizeDeps, input_key: str, version: str, output_name: str | None
) -> tuple[str, str | None]:
    """Where this version's edit goes, and the newer input version if there is one.

    The plain output name holds the edit of the input's newest version (S3's current version);
    an older version's edit goes under a name with its version, whichever finishes first. An
    older version's edit already under the plain name is moved aside to its own name first.
    """
    layout = deps.layout
    plain = layout.output_key(input_key, output_name)
    current = head_or_none(deps.s3, layout.bucket, input_key)
    current_version = None
    if current is not None:
        current_version = str(current.get("VersionId") or current["ETag"].strip('"'))
    if current_version != version:
        return layout.version_output_key(plain, version), current_version or "deleted"
    _move_older_edit_aside(deps, plain, version)
    return plain, None


def _move_older_edit_aside(deps: FinalizeDeps, plain: str, version: str) -> None:
    """Copy an older input version's edit (and its result manifest, marked superseded) from the
    plain name to its versioned name, so the newer edit replaces nothing that is not kept."""
    layout = deps.layout
    manifest_key = layout.result_manifest_key(plain)
    try:
        body = deps.s3.get_object(Bucket=layout.bucket, Key=manifest_key)["Body"].read()
        stored = parse_bounded_json(body, max_bytes=1024 * 1024)
    except deps.s3.exceptions.NoSuchKey:
        return
    except BoundedJsonError:
        logger.warning("result manifest unreadable; the edit under it is not moved")
        return
    older = str((stored.get("input") or {}).get("version", "")) if isinstance(stored, dict) else ""
    if not older or older == version:
        return
    aside = layout.version_output_key(plain, older)
    deps.s3.copy({"Bucket": layout.bucket, "Key": plain}, layout.bucket, aside)
    stored.update(
        superseded=True,
        superseded_by_version=version,
        output={**stored.get("output", {}), "key": aside},
    )
    put_json(deps.s3, layout.bucket, layout.result_manifest_key(aside), stored)
    if is_job_id(older_job := str(stored.get("job_id", ""))):
        deps.store.update(
            older_job,
            {"output_key": aside, "result_manifest_key": layout.result_manifest_key(aside)},
        )
    logger.info("older version's edit kept aside", extra={"older_version": older})


def _record_pace(deps: FinalizeDeps, record: JobRecord, progress: TaskProgress) -> None:
    """A task whose end a confirmed callback told: its duration goes into the pace ring. (A
    status check that saw the end recorded it already, and handed over a succeeded task.)"""
    if deps.pace is None or not progress.pace_key or progress.state is TaskState.SUCCEEDED:
        return
    if record.callback_received_at and record.task_created_at:
        deps.pace.record(progress.pace_key, record.callback_received_at - record.task_created_at)
