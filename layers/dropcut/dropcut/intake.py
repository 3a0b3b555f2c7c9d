"""Submit: from an S3 inbox event to a job record and exactly one execution."""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from pydantic import ValidationError

from dropcut.config import Settings
from dropcut.errors import InputInvalid, Problem
from dropcut.executions import Executions
from dropcut.jobs import (
    MANIFEST_SUFFIX,
    VIDEO_SUFFIXES,
    JobRecord,
    JobSpec,
    JobStatus,
    JobStore,
    is_manifest_key,
    job_id_for,
    manifest_key_for,
)
from dropcut.observability import logger
from dropcut.providers import PROVIDERS
from dropcut.reports import put_error_report
from dropcut.storage import head_or_none
from dropcut.validation import check_input

MAX_MANIFEST_BYTES = 64 * 1024
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")
METADATA_PROMPT_KEY = "prompt"
#: A folder's default options: `<inbox folder>/_preset.json`, nearest folder first.
PRESET_NAME = "_preset.json"


class Outcome(StrEnum):
    STARTED = "started"
    DUPLICATE = "duplicate"
    REFUSED = "refused"
    IGNORED = "ignored"
    WAITING_FOR_VIDEO = "waiting_for_video"
    WAITING_FOR_MANIFEST = "waiting_for_manifest"


@dataclass(frozen=True)
class SubmitResult:
    key: str
    outcome: Outcome
    job_id: str | None = None
    detail: str = ""


@dataclass(frozen=True)
class Intake:
    """Everything submit needs, passed in (clients are created once per process by the handler)."""

    s3: Any
    sfn: Any
    store: JobStore
    settings: Settings
    state_machine_arn: str
    default_prompt: str


def submit_object(intake: Intake, bucket: str, key: str, version_id: str | None) -> SubmitResult:
    """Handle one ObjectCreated event (key already URL-decoded). Safe to call any number of times."""
    settings = intake.settings
    if bucket != settings.bucket or not key.startswith(settings.inbox_prefix):
        return SubmitResult(key, Outcome.IGNORED, detail="outside the inbox")
    if key.lower().endswith(IMAGE_SUFFIXES):
        return SubmitResult(key, Outcome.IGNORED, detail="reference image (used by manifests)")
    if is_manifest_key(key):
        video_key = key[: -len(MANIFEST_SUFFIX)]
        if not video_key.lower().endswith(VIDEO_SUFFIXES):
            return SubmitResult(key, Outcome.IGNORED, detail="JSON that is not a video manifest")
        head = head_or_none(intake.s3, bucket, video_key, None)
        if head is None:
            return SubmitResult(key, Outcome.WAITING_FOR_VIDEO, detail=video_key)
    else:
        video_key = key
        head = head_or_none(intake.s3, bucket, key, version_id)
        if head is None:
            return SubmitResult(key, Outcome.IGNORED, detail="object no longer exists")
    version = head.get("VersionId") or head["ETag"].strip('"')
    job_id = job_id_for(bucket, video_key, version)
    logger.append_keys(job_id=job_id)

    existing = intake.store.get(job_id)
    if existing is not None and existing.status is not JobStatus.WAITING_FOR_MANIFEST:
        if existing.status is JobStatus.RECEIVED:
            _start_execution(intake, job_id)  # a crash may have come between record and start
        return SubmitResult(key, Outcome.DUPLICATE, job_id, detail=existing.status.value)

    record = existing or JobRecord(
        job_id=job_id,
        status=JobStatus.RECEIVED,
        bucket=bucket,
        key=video_key,
        version=version,
        execution_name=job_id,
    )
    spec: JobSpec | None = None
    problems: list[Problem] = []
    try:
        spec, source = resolve_spec(intake, video_key, head)
    except NoOptionsYet:
        # The manifest may still be on its way: its own event will start the job.
        waiting = record.model_copy(update={"status": JobStatus.WAITING_FOR_MANIFEST})
        intake.store.create(waiting)
        return SubmitResult(key, Outcome.WAITING_FOR_MANIFEST, job_id)
    except InputInvalid as invalid:
        problems.extend(invalid.problems)
    provider = PROVIDERS[(spec.provider if spec else None) or settings.provider]
    checked = check_input(intake.s3, provider, bucket, video_key, head, spec)
    problems.extend(checked.problems)
    if problems:
        refusal = InputInvalid(problems)
        failed = put_error_report(
            intake.s3,
            settings,
            record,
            error_type=type(refusal).__name__,
            reason=refusal.reason,
            message=str(refusal),
            advice=refusal.advice,
            problems=refusal.problems,
        )
        # The report first, then the record, born failed: a Submit that dies in between leaves
        # no record, and the redelivered event refuses again. (A record left 'received' would
        # look like a job whose execution never started, and be started.)
        if existing is not None:
            intake.store.update(job_id, failed)
        else:
            fields = {name: value for name, value in failed.items() if value is not None}
            if not intake.store.create(JobRecord.model_validate({**record.model_dump(), **fields})):
                return SubmitResult(key, Outcome.DUPLICATE, job_id, detail="concurrent event")
        logger.warning("input refused", extra={"key": video_key, "problems": len(problems)})
        return SubmitResult(key, Outcome.REFUSED, job_id, detail=str(refusal))
    assert spec is not None, "resolve_spec returns a spec or raises with problems"

    ready = record.model_copy(
        update={
            "status": JobStatus.RECEIVED,
            "spec": spec,
            "spec_source": source,
            "provider": spec.provider or settings.provider,
            "media": checked.media.model_dump(mode="json") if checked.media else None,
            "notices": checked.notices,
        }
    )
    if existing is None:
        started = intake.store.create(ready)
    else:
        started = intake.store.update(
            job_id,
            ready.model_dump(
                mode="json",
                include={"status", "spec", "spec_source", "provider", "media", "notices"},
            ),
            condition="#status = :waiting",
            condition_names={"#status": "status"},
            condition_values={":waiting": JobStatus.WAITING_FOR_MANIFEST.value},
        )
    if not started:
        return SubmitResult(key, Outcome.DUPLICATE, job_id, detail="concurrent event")
    _start_execution(intake, job_id)
    logger.info("job started", extra={"key": video_key, "spec_source": source})
    return SubmitResult(key, Outcome.STARTED, job_id)


class NoOptionsYet(InputInvalid):
    """No manifest, no metadata prompt and no stack default (yet): wait for a manifest."""


def resolve_spec(intake: Intake, video_key: str, head: dict[str, Any]) -> tuple[JobSpec, str]:
    """The job's options. Prompt: manifest > 'prompt' metadata > folder preset > stack default;
    other options: manifest > folder preset (a preset gives a folder's defaults)."""
    problems: list[Problem] = []
    if not video_key.lower().endswith(VIDEO_SUFFIXES):
        problems.append(
            Problem(
                "key",
                "the file is not a .mp4 or .mov video",
                "mp4 or mov",
                "Upload an MP4 or MOV video under the inbox prefix.",
            )
        )
    manifest = _read_manifest(intake, manifest_key_for(video_key), problems)
    preset_key, preset = _find_preset(intake, video_key, problems)
    if problems:
        raise InputInvalid(problems)
    if preset is not None:
        _check_preset(preset_key, preset)
    defaults = dict(preset or {})
    metadata_prompt = (head.get("Metadata") or {}).get(METADATA_PROMPT_KEY, "").strip()
    document: Any
    if manifest is not None:
        document = {**defaults, **manifest} if isinstance(manifest, dict) else manifest
        source = "manifest"
    elif metadata_prompt:
        document, source = {**defaults, "prompt": metadata_prompt}, "metadata"
    elif "prompt" in defaults:
        document, source = defaults, "preset"
    elif intake.default_prompt.strip():
        document, source = {**defaults, "prompt": intake.default_prompt}, "stack_default"
    else:
        raise NoOptionsYet(
            [
                Problem(
                    "prompt",
                    "no prompt: no manifest, no 'prompt' metadata, no folder preset, "
                    "no stack default",
                    "a prompt is required",
                    f"Upload {manifest_key_for(video_key).rsplit('/', 1)[-1]} with a prompt, "
                    "or set the object's 'prompt' metadata.",
                )
            ]
        )
    spec = _parse_spec(document)
    _check_options(intake.settings, spec)
    if preset is not None and source != "preset":
        source += "+preset"
    return spec, source


def _find_preset(
    intake: Intake, video_key: str, problems: list[Problem]
) -> tuple[str, dict[str, Any] | None]:
    """The nearest `_preset.json` from the video's folder up to the inbox root."""
    inbox = intake.settings.inbox_prefix
    folder = video_key.rsplit("/", 1)[0] + "/" if "/" in video_key else ""
    while folder.startswith(inbox):
        key = folder + PRESET_NAME
        found = _read_manifest(intake, key, problems, what="preset")
        if found is not None:
            if not isinstance(found, dict):
                problems.append(Problem("preset", f"{key} is not a JSON object", "a JSON object"))
                return key, None
            return key, found
        if folder == inbox:
            break
        folder = folder[:-1].rsplit("/", 1)[0] + "/"
    return "", None


def _check_preset(key: str, preset: dict[str, Any]) -> None:
    """A preset's own mistakes are reported as the preset's, not the video's manifest's."""
    try:
        JobSpec.model_validate({"prompt": "-", **preset})
    except ValidationError as exc:
        raise InputInvalid(
            [
                Problem(
                    "preset." + ".".join(str(p) for p in error["loc"]),
                    f"{error['msg']} (in {key})",
                    hint="Fix the folder preset; it applies to every video in the folder.",
                )
                for error in exc.errors()
            ]
        ) from None


def _read_manifest(
    intake: Intake, key: str, problems: list[Problem], what: str = "manifest"
) -> Any:
    try:
        obj = intake.s3.get_object(Bucket=intake.settings.bucket, Key=key)
    except intake.s3.exceptions.NoSuchKey:
        return None
    if obj["ContentLength"] > MAX_MANIFEST_BYTES:
        problems.append(
            Problem(
                what,
                f"the {what} is {obj['ContentLength']} bytes",
                f"at most {MAX_MANIFEST_BYTES} bytes",
            )
        )
        return None
    raw = obj["Body"].read()
    try:
        return json.loads(raw)
    except ValueError as exc:
        problems.append(
            Problem(
                what,
                f"the {what} is not valid JSON ({exc})",
                "a JSON object",
                "Check the manifest with a JSON validator.",
            )
        )
        return None


def _parse_spec(document: Any) -> JobSpec:
    try:
        return JobSpec.model_validate(document)
    except ValidationError as exc:
        raise InputInvalid(
            [
                Problem(
                    ".".join(str(p) for p in error["loc"]) or "manifest",
                    error["msg"],
                    hint="See the manifest schema in the README (schemas/job-manifest.schema.json).",
                )
                for error in exc.errors()
            ]
        ) from None


def _check_options(settings: Settings, spec: JobSpec) -> None:
    """Rules that depend on the stack: where images may live, which providers it can call."""
    problems = [
        Problem(
            f"images[{i}]",
            f"{image!r} is not under {settings.inbox_prefix}",
            f"S3 keys under {settings.inbox_prefix} or https URLs",
            "Upload reference images beside your videos in the inbox.",
        )
        for i, image in enumerate(spec.images)
        if not image.startswith("https://") and not image.startswith(settings.inbox_prefix)
    ]
    if spec.provider and spec.provider != settings.provider:
        problems.append(
            Problem(
                "provider",
                f"this stack is configured for {settings.provider} only",
                settings.provider,
                "Remove 'provider' from the manifest.",
            )
        )
    if problems:
        raise InputInvalid(problems)


def _start_execution(intake: Intake, job_id: str) -> None:
    # The execution name is the job id: Step Functions refuses a second execution of a name.
    Executions(intake.sfn, intake.state_machine_arn).start(job_id)
