"""Prepare: make what the provider is sent, as the job's plan says (dropcut.model.plan).

- as is: nothing to make; the job is its own one part (the one-part case).
- normalize, pad: one mezzanine under the work prefix; the job stays its own one part and
  StartTask sends the mezzanine (JobRecord.source_key).
- split: one video per part, each with a part record of its own (with its own slot, task
  and follow, id `<job id>-pNN`), all sharing the job's execution.

Returns the part ids; the state machine's Map (EditParts) runs each through AcquireSlot ..
Finalize, and Stitch makes the output from their edited videos.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from dropcut.aws.job_store import JobStore
from dropcut.aws.storage import input_absence
from dropcut.errors import ExecutionEnded, InputGone, JobNotReady
from dropcut.model.jobs import JobRecord, JobStatus, PartRecord
from dropcut.model.layout import BucketLayout
from dropcut.model.media_tools import MediaTools, PreparedPart, working_directory
from dropcut.model.phases import JobPhase
from dropcut.model.plan import Plan
from dropcut.observability import logger
from dropcut.services.parts import carry_paid_results

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


class PrepareResult(BaseModel):
    #: The job's parts, in order: [job id] (one part) or its part ids.
    part_ids: list[str]


@dataclass(frozen=True)
class PrepareDeps:
    s3: S3Client
    store: JobStore
    layout: BucketLayout
    media: MediaTools
    #: Where the input and the parts are written while they are made (Lambda: /tmp).
    work_dir: Path


def job_plan(record: JobRecord) -> Plan | None:
    """The plan Submit recorded for the job (None: a job recorded before plans existed)."""
    return Plan.model_validate(record.plan) if record.plan else None


def prepare(deps: PrepareDeps, job_id: str) -> PrepareResult:
    """Make the job's parts as its plan says; a retry after success returns the same parts.

    Raises JobNotReady (no resolved spec), ExecutionEnded (the job already ended), InputGone (the
    input was deleted while the job waited), MediaUnreadable (the input cannot be decoded) and
    AWS errors.
    """
    record = deps.store.require(job_id)
    if record.spec is None:
        raise JobNotReady("the job has no resolved options; Submit starts only jobs that do")
    if record.status is JobStatus.FAILED:
        raise ExecutionEnded(f"the job had already ended ({record.error_reason}); nothing prepared")
    if record.part_ids:
        return _reuse_paid_work(deps, job_id, record.part_ids)
    plan = job_plan(record)
    if plan is None or not plan.needs_prepare:
        deps.store.update(job_id, {"part_ids": [job_id]})
        return _reuse_paid_work(deps, job_id, [job_id])
    deps.store.move_phase(job_id, JobPhase.PREPARING)
    with working_directory(deps.work_dir) as tmp:
        work = Path(tmp)
        source = work / ("input" + Path(record.key).suffix.lower())
        if (why := input_absence(deps.s3, record.bucket, record.key, record.version)) is not None:
            raise InputGone(f"{record.key}: {why} before it was prepared; nothing was sent")
        deps.s3.download_file(
            record.bucket, record.key, str(source), ExtraArgs={"VersionId": record.version}
        )
        parts = deps.media.prepare(source, plan, work / "parts", keep_audio=record.spec.keep_audio)
        stored = [_store_part(deps, record, part) for part in parts]
    if deps.store.require(job_id).status is JobStatus.FAILED:  # cancelled while it was prepared
        raise ExecutionEnded("the job ended while its input was prepared; no part was started")
    part_ids = plan.part_ids(job_id)
    if len(part_ids) != len(stored):
        raise JobNotReady(
            f"the plan has {len(part_ids)} parts but Prepare made {len(stored)} videos"
        )
    prepared = [entry for entry, _ in stored]
    if len(part_ids) == 1:
        key, version = stored[0][1]
        deps.store.update(
            job_id,
            {
                "source_key": key,
                "source_version": version,
                "prepared": prepared,
                "part_ids": part_ids,
            },
        )
    else:
        for part_id, (entry, (key, version)) in zip(part_ids, stored, strict=True):
            deps.store.create(_part_record(record, part_id, entry, key, version))
        deps.store.update(job_id, {"prepared": prepared, "part_ids": part_ids})
        deps.store.move_phase(job_id, JobPhase.EDITING)  # its parts move on their own
    logger.info("input prepared", extra={"plan": plan.kind.value, "parts": len(part_ids)})
    return _reuse_paid_work(deps, job_id, part_ids)


def _reuse_paid_work(deps: PrepareDeps, job_id: str, part_ids: list[str]) -> PrepareResult:
    """A retry's parts take over the paid work of the retried job's (dropcut.services.parts)."""
    record = deps.store.require(job_id)
    if record.retry_of:
        carried = carry_paid_results(deps.store, record)
        if carried:
            logger.info("paid work re-used", extra={"retry_of": record.retry_of, "parts": carried})
    return PrepareResult(part_ids=part_ids)


def _store_part(
    deps: PrepareDeps, record: JobRecord, part: PreparedPart
) -> tuple[dict[str, Any], tuple[str, str | None]]:
    """Upload one prepared video; returns its summary and its (key, version)."""
    key = deps.layout.prepared_key(record.job_id, part.index)
    with part.path.open("rb") as body:
        answer = deps.s3.put_object(
            Bucket=deps.layout.bucket, Key=key, Body=body, ContentType="video/mp4"
        )
    entry = {
        "index": part.index,
        "key": key,
        "start_seconds": round(part.start_seconds, 3),
        "duration_seconds": round(part.duration_seconds, 3),
        "moved_to_scene_cut": part.moved_to_scene_cut,
        "bytes": part.path.stat().st_size,
    }
    return entry, (key, answer.get("VersionId"))


def _part_record(
    job: JobRecord, part_id: str, entry: dict[str, Any], key: str, version: str | None
) -> PartRecord:
    """A part's own record: the job's input and options, its own video and, later, task."""
    return PartRecord(
        job_id=part_id,
        status=JobStatus.RECEIVED,
        bucket=job.bucket,
        key=job.key,
        version=job.version,
        spec=job.spec,
        spec_source=job.spec_source,
        provider=job.provider,
        execution_name=job.execution_name,
        part_of=job.job_id,
        part_index=int(entry["index"]),
        source_key=key,
        source_version=version,
        media={"duration_seconds": entry["duration_seconds"]},
    )
