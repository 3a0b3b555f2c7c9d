"""Stitch: make the job's output from its parts' edited videos, beside a before/after picture,
and close the job (result manifest, record, event).

- One part, nothing to trim: the edited video is the output (an S3 copy, no re-encode).
- A split job: the parts joined in order (dropcut_media: remuxed where their parameters match),
  with the input's own audio under the whole video when the job keeps audio.
- A padded job: the edit trimmed back to the input's length.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError
from pydantic import BaseModel

from dropcut.aws.job_events import JobEvents, JobEventType
from dropcut.aws.job_store import JobStore
from dropcut.aws.storage import head_or_none, put_json, version_of
from dropcut.bounded_json import BoundedJsonError, parse_bounded_json
from dropcut.errors import ExecutionEnded, JobNotReady, MediaUnreadable, ResultUndecodable
from dropcut.model.jobs import JobRecord, JobSpec, JobStatus, PartRecord, is_job_id
from dropcut.model.layout import BucketLayout
from dropcut.model.media_tools import MediaTools, StitchedVideo, working_directory
from dropcut.model.phases import JobPhase
from dropcut.model.plan import Plan, PlanKind
from dropcut.observability import logger, metrics
from dropcut.providers import TaskState
from dropcut.services.parts import is_split, part_records, parts_of
from dropcut.steps.prepare import job_plan

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

#: Matching times on the before/after picture besides the seams (evenly spread).
SHEET_TIMES = 4
#: How far either side of a seam the picture looks (s): the last frame of one part and the
#: first of the next at the model's 24 fps.
SEAM_OFFSET_SECONDS = 1 / 24


class StitchResult(BaseModel):
    output_key: str
    result_manifest_key: str
    contact_sheet_key: str | None
    bytes_stored: int


@dataclass(frozen=True)
class StitchDeps:
    s3: S3Client
    store: JobStore
    layout: BucketLayout
    media: MediaTools
    #: Where videos are written while they are joined (Lambda: /tmp).
    work_dir: Path
    #: Job events (succeeded): best effort, never fails the step.
    events: JobEvents


def stitch(deps: StitchDeps, job_id: str) -> StitchResult:
    """Store the job's output and close it; a retry after success returns the stored result.

    Raises ExecutionEnded (the job already ended with a report), JobNotReady (a part has no
    edited video: a bug), ResultUndecodable (an edited part's first pictures do not decode: the
    provider's result was not a video), MediaUnreadable (the parts cannot be joined) and AWS
    errors.
    """
    store, layout = deps.store, deps.layout
    record = store.require(job_id)
    if record.spec is None:
        raise JobNotReady("the job has no resolved options; Submit starts only jobs that do")
    if record.status is JobStatus.SUCCEEDED and record.output_key:
        return StitchResult(
            output_key=record.output_key,
            result_manifest_key=layout.result_manifest_key(record.output_key),
            contact_sheet_key=record.contact_sheet_key,
            bytes_stored=0,
        )
    if record.status is JobStatus.FAILED:
        raise ExecutionEnded(f"the job had already ended ({record.error_reason}); nothing stored")
    parts = part_records(store, record)
    edited = [part.edited_key for part in parts]
    if not parts or None in edited or (record.part_ids and len(parts) != len(record.part_ids)):
        raise JobNotReady("a part of the job has no edited video; Finalize stores each first")
    plan = job_plan(record)
    store.move_phase(job_id, JobPhase.STITCHING)
    output_key, newer_version = _place(deps, record.key, record.version, record.spec.output_name)
    started = time.time()
    with working_directory(deps.work_dir) as tmp:
        work = Path(tmp)
        before = _download_input(deps, record, work)
        notices = [*record.notices, *_input_gone_notice(record, before)]
        joined, made = _make_output(deps, record, plan, parts, work, before)
        size = joined.stat().st_size
        if made is not None:
            deps.s3.upload_file(
                str(joined), layout.bucket, output_key, ExtraArgs={"ContentType": "video/mp4"}
            )
        else:
            deps.s3.copy(
                {"Bucket": layout.bucket, "Key": str(edited[0])},
                layout.bucket,
                output_key,
                ExtraArgs={"ContentType": "video/mp4", "MetadataDirective": "REPLACE"},
            )
        sheet_key = _contact_sheet(deps, record, plan, before, joined, output_key, work)
    stored_at = time.time()
    credits = _credits(parts)
    manifest_key = layout.result_manifest_key(output_key)
    manifest = _result_manifest(record, record.spec, parts, plan, output_key, size, newer_version)
    manifest.update(
        notices=notices,
        contact_sheet={"bucket": layout.bucket, "key": sheet_key} if sheet_key else None,
        stitch=None if made is None else {"remuxed": made.remuxed, "audio": made.audio},
        parts=parts_of(store, record),
        credits=credits,
        timings={
            "received_at": record.created_at,
            "task_created_at": min((u.task_created_at or stored_at) for u in parts),
            "provider_finished_seen_at": max((u.task_finished_seen_at or 0) for u in parts) or None,
            "stored_at": stored_at,
            "stitch_seconds": round(stored_at - started, 3),
            "total_seconds": round(stored_at - record.created_at, 3),
        },
    )
    put_json(deps.s3, layout.bucket, manifest_key, manifest)
    done = {
        "output_key": output_key,
        "result_manifest_key": manifest_key,
        "contact_sheet_key": sheet_key,
        "credits": credits,
        "notices": notices,
    }
    store.update(
        job_id,
        {
            "status": JobStatus.SUCCEEDED.value,
            "phase": JobPhase.DONE.value,
            "stored_at": stored_at,
            **done,
        },
    )
    deps.events.publish(JobEventType.SUCCEEDED, record.model_copy(update=done))
    metrics.add_metric(name="JobsSucceeded", unit="Count", value=1)
    if credits is not None:
        metrics.add_metric(name="CreditsUsed", unit="Count", value=credits)
    logger.info("job succeeded", extra={"output_key": output_key, "bytes": size})
    return StitchResult(
        output_key=output_key,
        result_manifest_key=manifest_key,
        contact_sheet_key=sheet_key,
        bytes_stored=size,
    )


def _make_output(
    deps: StitchDeps,
    record: JobRecord,
    plan: Plan | None,
    parts: Sequence[PartRecord],
    work: Path,
    before: Path | None,
) -> tuple[Path, StitchedVideo | None]:
    """The output video on local disk, and how it was made (None: the one edited video as is).
    A split job that keeps audio gets the input's (`before`), when the input is still there.
    Each edited video's first pictures must decode (raises ResultUndecodable)."""
    local = []
    for index, part in enumerate(parts):
        path = work / f"edited-{index:02d}.mp4"
        deps.s3.download_file(deps.layout.bucket, str(part.edited_key), str(path))
        _check_decodes(deps, part, path)
        local.append(path)
    trim = plan.duration_seconds if plan is not None and plan.kind is PlanKind.PAD else None
    if len(local) == 1 and trim is None:
        return local[0], None
    audio_source = None
    if is_split(record) and record.spec is not None and record.spec.keep_audio:
        audio_source = before
    output = work / "output.mp4"
    made = deps.media.stitch(local, output, trim_to_seconds=trim, audio_source=audio_source)
    return output, made


def _check_decodes(deps: StitchDeps, part: PartRecord, path: Path) -> None:
    """Raise ResultUndecodable when the part's edited video does not decode (valid MP4 boxes around
    media data that is not a picture). The edit is set aside first: a retry pays for a new task
    for this part instead of re-using it (dropcut.services.parts.reusable_result)."""
    try:
        deps.media.check_decodes(path)
    except MediaUnreadable as error:
        why = f"the provider's result for {part.job_id} (task {part.task_id}) does not decode: {error}"
        deps.store.update(
            part.job_id,
            {"edited_key": None, "task_state": TaskState.FAILED.value, "result_copy_error": why},
        )
        raise ResultUndecodable(why) from None


def _download_input(deps: StitchDeps, record: JobRecord, work: Path) -> Path | None:
    """The input version on local disk (its audio, its frames for the picture); None when that
    version was deleted after the parts were paid: they are joined without it."""
    if head_or_none(deps.s3, record.bucket, record.key, record.version) is None:
        logger.warning("the input version is gone: the output is made without it")
        return None
    path = work / ("input" + Path(record.key).suffix.lower())
    try:
        deps.s3.download_file(
            record.bucket, record.key, str(path), ExtraArgs={"VersionId": record.version}
        )
    except ClientError as error:  # deleted between the HEAD and the GET
        if error.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NoSuchVersion"):
            return None
        raise
    return path


def _input_gone_notice(record: JobRecord, before: Path | None) -> list[str]:
    """What the user should know when the input was deleted after its parts were paid: the
    paid edits are kept, without what only the input had."""
    if before is not None:
        return []
    lost = "the before/after picture"
    if is_split(record) and record.spec is not None and record.spec.keep_audio:
        lost = (
            "the input's continuous sound track (each part keeps the audio the provider "
            "returned, if any) and the before/after picture"
        )
    return [
        f"the input was deleted before its edit was stored: the paid edit is kept without {lost}"
    ]


def _contact_sheet(
    deps: StitchDeps,
    record: JobRecord,
    plan: Plan | None,
    before: Path | None,
    output: Path,
    output_key: str,
    work: Path,
) -> str | None:
    """The before/after picture beside the output; None (logged) when it cannot be made (or
    the input is gone): a picture never fails a job whose output is stored."""
    duration = (record.media or {}).get("duration_seconds")
    if before is None or not isinstance(duration, int | float) or duration <= 0:
        return None
    times = sheet_times(float(duration), [p.get("start_seconds") for p in record.prepared or []])
    png = work / "sheet.png"
    try:
        deps.media.contact_sheet(before, output, png, times=times)
    except Exception:
        logger.exception("before/after picture not made")
        return None
    key = deps.layout.contact_sheet_key(output_key)
    deps.s3.upload_file(str(png), deps.layout.bucket, key, ExtraArgs={"ContentType": "image/png"})
    return key


def sheet_times(duration: float, starts: Sequence[Any]) -> list[float]:
    """The times (s) the before/after picture shows: SHEET_TIMES evenly spread over `duration`,
    and the frames either side of each seam (every part start but the first)."""
    evenly = [round(duration * (i + 0.5) / SHEET_TIMES, 3) for i in range(SHEET_TIMES)]
    seams = [float(s) for s in starts if isinstance(s, int | float) and s > 0]
    around = [
        round(t, 3)
        for seam in seams
        for t in (seam - SEAM_OFFSET_SECONDS, seam + SEAM_OFFSET_SECONDS)
        if 0 <= t < duration
    ]
    return sorted({*evenly, *around})


def _credits(parts: Sequence[PartRecord]) -> float | None:
    known = [part.credits for part in parts if part.credits is not None]
    return round(sum(known), 6) if known else None


def _result_manifest(
    record: JobRecord,
    spec: JobSpec,
    parts: Sequence[PartRecord],
    plan: Plan | None,
    output_key: str,
    size: int,
    newer_version: str | None,
) -> dict[str, Any]:
    first = parts[0]
    return {
        "job_id": record.job_id,
        "status": "succeeded",
        "input": {"bucket": record.bucket, "key": record.key, "version": record.version},
        # A newer version of the input was uploaded: its edit has the plain name, this one
        # a name with its version (layout.version_output_key).
        "superseded": newer_version is not None,
        "superseded_by_version": newer_version,
        "output": {"bucket": record.bucket, "key": output_key, "bytes": size},
        "prompt": spec.prompt,
        "options": spec.model_dump(mode="json", exclude={"prompt"}),
        "options_source": record.spec_source,
        "media": record.media,
        "plan": plan.model_dump(mode="json") if plan is not None else None,
        "notices": record.notices,
        "provider": first.provider,
        "provider_task_id": first.task_id if len(parts) == 1 else None,
        "polls": sum(part.polls for part in parts),
    }


def _place(
    deps: StitchDeps, input_key: str, version: str, output_name: str | None
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
        current_version = version_of(current)
    if current_version != version:
        return layout.version_output_key(plain, version), current_version or "deleted"
    _move_older_edit_aside(deps, plain, version)
    return plain, None


def _move_older_edit_aside(deps: StitchDeps, plain: str, version: str) -> None:
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
