"""Submit: from an S3 inbox event to a job record in the backlog (dropcut.aws.backlog), and
exactly one execution once the job is admitted."""

from __future__ import annotations

import time
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from dropcut.aws.executions import Executions
from dropcut.aws.job_events import JobEvents, JobEventType
from dropcut.aws.job_store import JobStore
from dropcut.aws.slots import SlotPool
from dropcut.aws.storage import decode_metadata_value, head_or_none, s3_range_reader, version_of
from dropcut.bounded_json import BoundedJsonError, parse_bounded_json
from dropcut.errors import (
    Failure,
    InputInvalid,
    JobNotReady,
    ManifestTimedOut,
    Problem,
)
from dropcut.formats.probe import MediaInfo
from dropcut.model.deadlines import start_deadline
from dropcut.model.jobs import JobRecord, JobSpec, JobStatus, job_id_for, parse_job_spec
from dropcut.model.layout import (
    MANIFEST_SUFFIX,
    MAX_KEY_BYTES,
    SNIFF_SMALL_OBJECT_BYTES,
    BucketLayout,
    is_image_key,
    not_a_job,
)
from dropcut.model.phases import JobPhase
from dropcut.model.plan import Plan, plan_video
from dropcut.observability import logger
from dropcut.providers import PROVIDERS, Provider
from dropcut.public_urls import Resolver
from dropcut.services.batches import Batches
from dropcut.services.error_reports import create_failed, put_error_report
from dropcut.services.estimates import record_eta
from dropcut.services.validation import check_input, video_name_problems
from dropcut.settings import PlanSettings, Settings

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

MAX_MANIFEST_BYTES = 64 * 1024
METADATA_PROMPT_KEY = "prompt"


class Outcome(StrEnum):
    STARTED = "started"
    DUPLICATE = "duplicate"
    REFUSED = "refused"
    IGNORED = "ignored"
    #: A folder marker, hidden or system file: not a job, never reported (layout.not_a_job).
    NOT_A_JOB = "not_a_job"
    WAITING_FOR_VIDEO = "waiting_for_video"
    WAITING_FOR_MANIFEST = "waiting_for_manifest"


@dataclass(frozen=True)
class SubmitResult:
    key: str
    outcome: Outcome
    job_id: str | None = None
    detail: str = ""


@dataclass(frozen=True)
class SubmitDeps:
    """Everything Submit needs, passed in (clients are created once per process by wiring)."""

    s3: S3Client
    store: JobStore
    executions: Executions
    #: The slot pool and its backlog: a checked job is queued, then admitted when a slot is free.
    slots: SlotPool
    settings: Settings
    #: The prompt of a video that has no manifest, metadata prompt or preset ("" = wait for one).
    default_prompt: str
    #: Resolves the hosts of https image URLs (the address guard checks every address).
    resolve: Resolver
    #: Job events (submitted, refused): best effort, never fails the step.
    events: JobEvents
    #: MaxPartsPerJob and NormalizeInputs (how videos are planned).
    plan: PlanSettings
    #: Where a new job's batch is found or made (None: jobs join no batch).
    batches: Batches | None


def submit_object(deps: SubmitDeps, bucket: str, key: str, version_id: str | None) -> SubmitResult:
    """Handle one ObjectCreated event (key already URL-decoded). Safe to call any number of times.

    Bad input is refused with an error report (Outcome.REFUSED), never raised; what raises is
    infrastructure (S3, DynamoDB, Step Functions), which the inbox queue retries.
    """
    located = _locate_video(deps, bucket, key, version_id)
    if isinstance(located, SubmitResult):
        return located
    video_key, head = located
    version = version_of(head)
    return _submit_version(
        deps, key, bucket, video_key, head, version, job_id_for(bucket, video_key, version)
    )


def resubmit(deps: SubmitDeps, old: JobRecord, job_id: str, requested_by: str) -> SubmitResult:
    """Run `old`'s input version again as the job `job_id` (a retry: dropcut.steps.retry),
    through the same checks and start as an upload's event: the options are read again (a
    fixed manifest counts), refused inputs get a report. Safe to repeat (the same `job_id`
    finds its record). Outcome IGNORED when that version of the input no longer exists."""
    head = head_or_none(deps.s3, old.bucket, old.key, old.version)
    if head is None:
        return SubmitResult(old.key, Outcome.IGNORED, job_id, detail="the input version is gone")
    links = {"retry_of": old.job_id, "retry_requested_by": requested_by}
    return _submit_version(deps, old.key, old.bucket, old.key, head, old.version, job_id, links)


def _submit_version(
    deps: SubmitDeps,
    key: str,
    bucket: str,
    video_key: str,
    head: dict[str, Any],
    version: str,
    job_id: str,
    links: dict[str, str] | None = None,
) -> SubmitResult:
    """Check one version of a video and start it as the job `job_id` (see submit_object)."""
    logger.append_keys(job_id=job_id)
    existing = deps.store.get(job_id)
    manifest_version = _manifest_version(deps, bucket, video_key)
    if existing is not None and not _options_may_change(existing, manifest_version):
        # A crash may have come between record and backlog, or between admission and start.
        if existing.status is JobStatus.QUEUED:
            deps.slots.queue(existing)
        elif existing.status is JobStatus.RECEIVED:
            _start_execution(deps, job_id)
        return SubmitResult(key, Outcome.DUPLICATE, job_id, detail=existing.status.value)

    record = (
        existing
        or JobRecord(
            job_id=job_id,
            status=JobStatus.QUEUED,
            bucket=bucket,
            key=video_key,
            version=version,
            execution_name=job_id,
            batch_id=_join_batch(deps, job_id, video_key, head),
            **(links or {}),
        )
    ).model_copy(update={"manifest_version": manifest_version})
    spec: JobSpec | None = None
    source = ""
    problems: list[Problem] = []
    try:
        spec, source = resolve_spec(deps, video_key, head)
    except NoOptionsYet:
        # The manifest may still be on its way: its own event will start the job.
        if existing is None:
            waiting = record.model_copy(
                update={
                    "status": JobStatus.WAITING_FOR_MANIFEST,
                    "phase": JobPhase.WAITING_FOR_MANIFEST,
                }
            )
            deps.store.create(waiting)
        return SubmitResult(key, Outcome.WAITING_FOR_MANIFEST, job_id)
    except InputInvalid as invalid:
        problems.extend(invalid.problems)
    problems.extend(
        Problem(
            "key",
            problem,
            f"keys of at most {MAX_KEY_BYTES} bytes, usable in a URL and as a file name",
            "Upload the video again under a plainer key: folders and a name of letters, "
            "digits, spaces, '-', '_' and '.' (no '\\' or ':', not a device name such as CON "
            "or NUL), short enough for S3's 1,024 bytes.",
        )
        for problem in deps.settings.layout.key_problems(
            video_key, spec.output_name if spec else None
        )
    )
    provider = PROVIDERS[(spec.provider if spec else None) or deps.settings.provider]
    checked = check_input(deps.s3, provider, bucket, video_key, head, spec, deps.resolve)
    problems.extend(checked.problems)
    plan = _plan(deps, provider, checked.media)
    if plan is not None:
        record = record.model_copy(update={"plan": plan.model_dump(mode="json")})
        problems.extend(plan.problems)
    deadline = _start_deadline(spec, record, problems)
    if problems:
        return _refuse(deps, key, record, InputInvalid(problems), existing)
    if spec is None:
        raise JobNotReady("resolve_spec returned no spec and no problems")
    output_key = deps.settings.layout.output_key(video_key, spec.output_name)
    owner = deps.store.claim_output(output_key, video_key)
    if owner != video_key:
        taken = Problem(
            "output_name" if spec.output_name else "key",
            f"its output {output_key} is already the output of {owner}",
            "one input per output: no input's edit ever replaces another's",
            "Rename the video, or give it another output_name in its manifest.",
        )
        return _refuse(deps, key, record, InputInvalid([taken]), existing)
    ready = record.model_copy(
        update={
            "status": JobStatus.QUEUED,
            "phase": JobPhase.QUEUED,
            "spec": spec,
            "spec_source": source,
            "provider": spec.provider or deps.settings.provider,
            "media": checked.media.model_dump(mode="json") if checked.media else None,
            "notices": checked.notices,
            "start_deadline": deadline,
        }
    )
    return _start(deps, key, ready, existing)


def _start_deadline(
    spec: JobSpec | None, record: JobRecord, problems: list[Problem]
) -> float | None:
    """The epoch second the job must start by (its not_after, from its arrival), or None; one
    already past is a problem (nothing would be paid for a job bound to end unstarted)."""
    if spec is None or spec.not_after is None:
        return None
    deadline = start_deadline(spec.not_after, record.created_at)
    if deadline <= time.time():
        moment = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(deadline))
        problems.append(
            Problem(
                "not_after",
                f"it is already past ({moment}): the job could not start by then",
                "a wait from the upload (90s, 45m, 6h, 2d) or a moment still to come",
                "Give a later not_after, or none (the job then waits as long as it needs).",
            )
        )
    return deadline


def _join_batch(deps: SubmitDeps, job_id: str, video_key: str, head: dict[str, Any]) -> str | None:
    """The batch a new job joins: its upload's tag's, else its folder's (dropcut.services.batches)."""
    if deps.batches is None:
        return None
    return deps.batches.join(job_id, video_key, dict(head.get("Metadata") or {}), time.time())


def _plan(deps: SubmitDeps, provider: type[Provider], media: MediaInfo | None) -> Plan | None:
    """The plan for a video that could be read (None: it could not; its problem says why)."""
    if media is None:
        return None
    plan = plan_video(media, provider, max_parts=deps.plan.max_parts, normalize=deps.plan.normalize)
    logger.info(
        "planned",
        extra={"plan": plan.kind.value, "parts": len(plan.parts), "reasons": plan.reasons},
    )
    return plan


def _locate_video(
    deps: SubmitDeps, bucket: str, key: str, version_id: str | None
) -> tuple[str, dict[str, Any]] | SubmitResult:
    """The video an event is about (the object itself, or the video of a manifest) and its
    HEAD; a SubmitResult when there is nothing to do (yet)."""
    layout = deps.settings.layout
    if not layout.in_inbox(bucket, key):
        return SubmitResult(key, Outcome.IGNORED, detail="outside the inbox")
    if (why := not_a_job(key, size=-1)) is not None:  # by its name alone
        logger.debug("not a job", extra={"key": key, "why": why})
        return SubmitResult(key, Outcome.NOT_A_JOB, detail=why)
    if is_image_key(key):
        return SubmitResult(key, Outcome.IGNORED, detail="reference image (used by manifests)")
    if not key.endswith(MANIFEST_SUFFIX):
        head = head_or_none(deps.s3, bucket, key, version_id)
        if head is None:
            return SubmitResult(key, Outcome.IGNORED, detail="object no longer exists")
        size = int(head["ContentLength"])
        first = b""
        if 0 < size <= SNIFF_SMALL_OBJECT_BYTES:
            first = s3_range_reader(deps.s3, bucket, key, head.get("VersionId"))(0, 4)
        why = not_a_job(key, size, first)
        if why is not None:
            logger.debug("not a job", extra={"key": key, "why": why})
            return SubmitResult(key, Outcome.NOT_A_JOB, detail=why)
        return key, head
    video_key = layout.video_key_of(key)
    if video_key is None:
        return SubmitResult(key, Outcome.IGNORED, detail="JSON that is not a video manifest")
    head = head_or_none(deps.s3, bucket, video_key, None)
    if head is None:
        return SubmitResult(key, Outcome.WAITING_FOR_VIDEO, detail=video_key)
    return video_key, head


#: Endings that a new manifest version may undo: the options were refused (or never came), so
#: nothing ran and nothing was paid.
OPTIONS_REFUSALS = frozenset({InputInvalid.reason, ManifestTimedOut.reason})


def _manifest_version(deps: SubmitDeps, bucket: str, video_key: str) -> str:
    """The current version of the video's manifest ("absent" when there is none)."""
    head = head_or_none(deps.s3, bucket, BucketLayout.manifest_key(video_key))
    if head is None:
        return "absent"
    return version_of(head)


def _options_may_change(existing: JobRecord, manifest_version: str) -> bool:
    """Whether this event may (re)read the job's options: it waits for them, or they were
    refused and the manifest has a new version since (a finished or running job never, nor one
    that was retried: two jobs of one version must not both run)."""
    if existing.status is JobStatus.WAITING_FOR_MANIFEST:
        return True
    return (
        existing.status is JobStatus.FAILED
        and existing.error_reason in OPTIONS_REFUSALS
        and existing.task_id is None
        and existing.creating_since is None
        and existing.retried_by is None  # its retry (dropcut retry) runs it again, not this
        and existing.manifest_version != manifest_version
    )


def _update_if_unchanged(deps: SubmitDeps, existing: JobRecord, fields: dict[str, Any]) -> bool:
    """Write `fields` unless another event changed the record since it was read."""
    return deps.store.update(
        existing.job_id,
        fields,
        condition="updated_at = :seen",
        condition_values={":seen": existing.updated_at},
    )


def _refuse(
    deps: SubmitDeps,
    key: str,
    record: JobRecord,
    refusal: InputInvalid,
    existing: JobRecord | None,
) -> SubmitResult:
    """End the job with a report before anything is paid.

    The report first, then the record, born failed: a Submit that dies in between leaves no
    record, and the redelivered event refuses again. (A record left 'received' would look like
    a job whose execution never started, and be started.)"""
    failed = put_error_report(deps.s3, deps.settings.layout, record, Failure.of(refusal))
    failed["manifest_version"] = record.manifest_version
    failed["plan"] = record.plan
    if existing is not None:
        if not _update_if_unchanged(deps, existing, failed):
            return SubmitResult(key, Outcome.DUPLICATE, record.job_id, detail="concurrent event")
    else:
        if not create_failed(deps.store, record, failed):
            return SubmitResult(key, Outcome.DUPLICATE, record.job_id, detail="concurrent event")
    logger.warning("input refused", extra={"key": record.key, "problems": len(refusal.problems)})
    report_key = str(failed["error_report_key"])
    deps.events.publish(
        JobEventType.REFUSED, record, failure=Failure.of(refusal), report_key=report_key
    )
    return SubmitResult(key, Outcome.REFUSED, record.job_id, detail=str(refusal))


def _start(
    deps: SubmitDeps, key: str, ready: JobRecord, existing: JobRecord | None
) -> SubmitResult:
    """Record the job as queued (once: a conditional write) and put it in the backlog, which
    admits it at once when a slot is free. A job refused before (its options, now fixed) loses
    its report: one job, one ending."""
    if existing is None:
        started = deps.store.create(ready)
    else:
        fields = ready.model_dump(
            mode="json",
            include={
                "status",
                "phase",
                "spec",
                "spec_source",
                "manifest_version",
                "provider",
                "media",
                "notices",
                "plan",
                "start_deadline",
            },
        )
        cleared = dict.fromkeys(
            ("error_reason", "error_message", "error_report_key", "problems"), None
        )
        started = _update_if_unchanged(deps, existing, {**fields, **cleared})
        if started and existing.error_report_key:
            deps.s3.delete_object(Bucket=deps.settings.bucket, Key=existing.error_report_key)
    if not started:
        return SubmitResult(key, Outcome.DUPLICATE, ready.job_id, detail="concurrent event")
    admitted = ready.job_id in deps.slots.queue(ready)
    now = (
        {"status": JobStatus.RECEIVED, "phase": JobPhase.RECEIVED}
        if admitted
        else {"eta": record_eta(deps.store, deps.slots, ready, time.time())}
    )
    deps.events.publish(JobEventType.SUBMITTED, ready.model_copy(update=now))
    logger.info(
        "job queued",
        extra={"key": ready.key, "spec_source": ready.spec_source, "admitted": admitted},
    )
    return SubmitResult(key, Outcome.STARTED, ready.job_id)


class NoOptionsYet(InputInvalid):
    """No manifest, no metadata prompt and no stack default (yet): wait for a manifest."""


def resolve_spec(deps: SubmitDeps, video_key: str, head: dict[str, Any]) -> tuple[JobSpec, str]:
    """The job's options. Prompt: manifest > 'prompt' metadata > folder preset > stack default;
    other options: manifest > folder preset (a preset gives a folder's defaults)."""
    problems = video_name_problems(video_key)
    manifest = _read_manifest(deps, BucketLayout.manifest_key(video_key), problems)
    preset_key, preset = _find_preset(deps, video_key, problems)
    # A manifest overrides the metadata: its prompt is read only when there is none.
    metadata_prompt = _metadata_prompt(head, problems) if manifest is None else ""
    if problems:
        raise InputInvalid(problems)
    if preset is not None:
        _check_preset(preset_key, preset)
    defaults = dict(preset or {})
    document: Any
    if manifest is not None:
        document = {**defaults, **manifest} if isinstance(manifest, dict) else manifest
        source = "manifest"
    elif metadata_prompt:
        document, source = {**defaults, "prompt": metadata_prompt}, "metadata"
    elif "prompt" in defaults:
        document, source = defaults, "preset"
    elif deps.default_prompt.strip():
        document, source = {**defaults, "prompt": deps.default_prompt}, "stack_default"
    else:
        raise NoOptionsYet(
            [
                Problem(
                    "prompt",
                    "no prompt: no manifest, no 'prompt' metadata, no folder preset, "
                    "no stack default",
                    "a prompt is required",
                    f"Upload {BucketLayout.manifest_name(video_key)} with a prompt, "
                    "or set the object's 'prompt' metadata.",
                )
            ]
        )
    spec = parse_job_spec(document)
    _check_options(deps.settings, spec)
    if preset is not None and source != "preset":
        source += "+preset"
    return spec, source


def _metadata_prompt(head: dict[str, Any], problems: list[Problem]) -> str:
    """The video's 'prompt' metadata, decoded (S3 returns non-ASCII values RFC 2047 encoded)."""
    raw = str((head.get("Metadata") or {}).get(METADATA_PROMPT_KEY, ""))
    try:
        return decode_metadata_value(raw).strip()
    except ValueError as exc:
        problems.append(
            Problem(
                f"metadata.{METADATA_PROMPT_KEY}",
                f"the '{METADATA_PROMPT_KEY}' metadata cannot be read: {exc}",
                "plain text, or RFC 2047 encoded words that decode",
                "Put the prompt in a manifest (<video>.json), which takes any text.",
            )
        )
        return ""


def _find_preset(
    deps: SubmitDeps, video_key: str, problems: list[Problem]
) -> tuple[str, dict[str, Any] | None]:
    """The nearest `_preset.json` from the video's folder up to the inbox root."""
    for key in deps.settings.layout.preset_keys(video_key):
        found = _read_manifest(deps, key, problems, what="preset")
        if found is not None:
            if not isinstance(found, dict):
                problems.append(Problem("preset", f"{key} is not a JSON object", "a JSON object"))
                return key, None
            return key, found
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
                    hint="Fix the folder preset (it applies to every video in the folder), then "
                    "upload the video or its manifest again.",
                )
                for error in exc.errors()
            ]
        ) from None


def _read_manifest(
    deps: SubmitDeps, key: str, problems: list[Problem], what: str = "manifest"
) -> Any:
    try:
        obj = deps.s3.get_object(Bucket=deps.settings.bucket, Key=key)
    except deps.s3.exceptions.NoSuchKey:
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
    raw = obj["Body"].read(MAX_MANIFEST_BYTES + 1)
    try:
        return parse_bounded_json(raw, max_bytes=MAX_MANIFEST_BYTES)
    except BoundedJsonError as exc:
        problems.append(
            Problem(
                what,
                f"the {what} cannot be read: {exc}",
                f"a JSON object of at most {MAX_MANIFEST_BYTES} bytes",
                "Check the manifest with a JSON validator.",
            )
        )
        return None


def _check_options(settings: Settings, spec: JobSpec) -> None:
    """Rules that depend on the stack: where images may live, which providers it can call."""
    problems = [
        Problem(
            where,
            f"{image!r} is not under {settings.inbox_prefix}",
            f"S3 keys under {settings.inbox_prefix} or https URLs",
            "Upload reference images beside your videos in the inbox.",
        )
        for where, image in spec.image_fields()
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


def _start_execution(deps: SubmitDeps, job_id: str) -> None:
    # The execution name is the job id: Step Functions refuses a second execution of a name.
    deps.executions.start(job_id)
