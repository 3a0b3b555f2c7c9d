"""The job: its identity, its options (spec), and the records of jobs and parts (stored by
dropcut.aws.job_store)."""

from __future__ import annotations

import hashlib
import re
import time
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, ValidationError, field_validator

from dropcut.errors import InputInvalid, Problem
from dropcut.model.deadlines import check_not_after
from dropcut.model.eta import QueueEta
from dropcut.model.phases import JobPhase
from dropcut.providers.base import AspectRatio

if TYPE_CHECKING:
    pass

#: The longest prompt any provider takes (evolink: 5,000; aimlapi and Kling: 2,500, checked per
#: provider in validation). docs/providers.md, "The model's own limits".
MAX_PROMPT_CHARS = 5000
#: A job id: "job-" + 40 hex digits (see job_id_for), and for a retry "-r<attempt>" (2-999,
#: see retry_job_id); also the execution name (<= 80 characters of [0-9a-z-]). A part of a
#: split job (one provider task) adds "-p" and its two-digit index (dropcut.model.plan.Plan.part_ids).
JOB_ID_PATTERN = r"^job-[0-9a-f]{40}(-r[1-9][0-9]{0,2})?(-p[0-9]{2})?$"
#: The length of a first run's id ("job-" + 40 hex digits).
BASE_JOB_ID_CHARS = 44
#: The most attempts of one input version (the first run and its retries).
MAX_ATTEMPTS = 999


#: A job's turn in its folder's backlog (JobSpec.priority; dropcut.aws.backlog).
Priority = Literal["high", "normal", "low"]


class JobStatus(StrEnum):
    WAITING_FOR_MANIFEST = "waiting_for_manifest"
    #: In the backlog: checked and planned, no execution yet (dropcut.aws.backlog).
    QUEUED = "queued"
    #: Admitted: its execution runs (or is about to start).
    RECEIVED = "received"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


def _key_or_https(image: str) -> str:
    if "://" in image and not image.startswith("https://"):
        raise ValueError(f"image {image[:80]!r} must be an S3 key or an https URL")
    return image


class ElementSpec(BaseModel):
    """A character or object to keep consistent: a frontal image and 1-4 more views of it
    (aimlapi's `elements`; docs/providers.md)."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True, strict=True)

    frontal_image: str = Field(description="The element seen from the front: key or https URL.")
    reference_images: list[str] = Field(
        min_length=1, max_length=4, description="1-4 more views of it: keys or https URLs."
    )

    @field_validator("frontal_image")
    @classmethod
    def _frontal_is_key_or_https(cls, image: str) -> str:
        return _key_or_https(image)

    @field_validator("reference_images")
    @classmethod
    def _references_are_keys_or_https(cls, images: list[str]) -> list[str]:
        return [_key_or_https(image) for image in images]


class JobSpec(BaseModel):
    """A job's options, as written in the JSON manifest `<video>.json` beside the video."""

    # strict: "yes" is not a boolean and 3 is not a prompt; a typo must not change the edit.
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True, strict=True)

    prompt: str = Field(
        min_length=1,
        max_length=MAX_PROMPT_CHARS,
        description="What to change in the video (the active provider may allow fewer characters).",
    )
    images: list[str] = Field(
        default_factory=list,
        max_length=7,
        description="Reference images: keys in the media bucket (under inbox/) or https URLs.",
    )
    elements: list[ElementSpec] = Field(
        default_factory=list,
        max_length=4,
        description="Characters or objects to keep consistent (aimlapi only); images plus "
        "elements are at most 4 with a video (the model's limit).",
    )
    keep_audio: bool = Field(default=False, description="Keep the input's sound track.")
    aspect_ratio: AspectRatio | None = Field(
        default=None, description="Crop to this aspect ratio (evolink only)."
    )
    provider: Literal["aimlapi", "evolink"] | None = Field(
        default=None,
        description="Provider for this job; must be one this stack is configured for.",
    )
    priority: Priority = Field(
        default="normal",
        description="Its turn in the backlog within its folder: high passes normal and low "
        "(folders still take turns).",
    )
    turn_weight: int = Field(
        default=1,
        ge=1,
        le=100,
        description="The folder's share of turns while folders wait for provider slots (set it "
        "in the folder's _preset.json); 2 takes twice the turns of a folder at 1.",
    )
    not_after: str | None = Field(
        default=None,
        max_length=64,
        description="Start by then, or end unpaid with a start_deadline_passed report: a wait "
        "from the upload's arrival (90s, 45m, 6h, 2d) or an ISO 8601 date-time with its UTC "
        "offset (2026-12-08T06:00:00Z). Unset: the job waits as long as the backlog needs.",
    )
    output_name: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._ -]{0,120}$",
        description="File name (without folder) for the edited video; default <video stem>.edited.mp4.",
    )

    @field_validator("images")
    @classmethod
    def _images_are_keys_or_https(cls, images: list[str]) -> list[str]:
        return [_key_or_https(image) for image in images]

    @field_validator("not_after")
    @classmethod
    def _not_after_is_a_wait_or_a_moment(cls, not_after: str | None) -> str | None:
        if not_after is None:
            return None
        try:
            return check_not_after(not_after)
        except ValueError as exc:
            raise ValueError(f"must be {exc}") from None

    def image_fields(self) -> list[tuple[str, str]]:
        """Every image the job names, with the manifest field that names it."""
        named = [(f"images[{i}]", image) for i, image in enumerate(self.images)]
        for i, element in enumerate(self.elements):
            named.append((f"elements[{i}].frontal_image", element.frontal_image))
            named.extend(
                (f"elements[{i}].reference_images[{j}]", image)
                for j, image in enumerate(element.reference_images)
            )
        return named


def parse_job_spec(document: Any) -> JobSpec:
    """The options a manifest (or preset plus prompt) states; raises InputInvalid listing every
    broken rule as a Problem."""
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


def job_id_for(bucket: str, key: str, version: str) -> str:
    """Deterministic id of one version of one input: repeated events map to the same job.

    `version` is the S3 version id (or the ETag where versioning is off). The id is also the
    Standard-workflow execution name, so it fits the name rules (<= 80 chars, [0-9a-z-]).
    """
    digest = hashlib.sha256(f"{bucket}\n{key}\n{version}".encode()).hexdigest()
    return f"job-{digest[:40]}"


#: A part's id: its job's id + "-p" + its two-digit index (dropcut.model.plan, Plan.part_ids).
PART_SUFFIX_CHARS = 4


def job_of(part_id: str) -> str:
    """The job a part belongs to (its execution's name): the part itself for a one-part job's
    id, the job's id for a part id (`<job id>-pNN`)."""
    job, dash, index = part_id.rpartition("-p")
    if dash and len(index) == PART_SUFFIX_CHARS - 2 and index.isdigit() and job.startswith("job-"):
        return job
    return part_id


def attempt_of(job_id: str) -> int:
    """1 for a first run (job_id_for), N for the job a retry made (`...-rN`)."""
    suffix = job_id[BASE_JOB_ID_CHARS:]
    return int(suffix[2:]) if suffix.startswith("-r") and suffix[2:].isdigit() else 1


def retry_job_id(job_id: str) -> str:
    """The id of the job that retries `job_id`: the same version's id, next attempt.

    Deterministic, so a repeated retry request finds the job the first one made. Raises
    ValueError past MAX_ATTEMPTS.
    """
    attempt = attempt_of(job_id) + 1
    if attempt > MAX_ATTEMPTS:
        raise ValueError(f"at most {MAX_ATTEMPTS} attempts of one input version")
    return f"{job_id[:BASE_JOB_ID_CHARS]}-r{attempt}"


def is_job_id(value: str) -> bool:
    """True when `value` has the shape job_id_for gives, or a part's id (JOB_ID_PATTERN)."""
    return re.fullmatch(JOB_ID_PATTERN, value) is not None


#: The phase a record created with a status starts in.
_FIRST_PHASE = {
    JobStatus.WAITING_FOR_MANIFEST: JobPhase.WAITING_FOR_MANIFEST,
    JobStatus.QUEUED: JobPhase.QUEUED,
    JobStatus.RECEIVED: JobPhase.RECEIVED,
    JobStatus.RUNNING: JobPhase.AT_PROVIDER,
    JobStatus.SUCCEEDED: JobPhase.DONE,
    JobStatus.FAILED: JobPhase.FAILED,
}


def phase_of(status: JobStatus) -> JobPhase:
    """The phase a record of `status` is created in (a status written later comes with the
    phase the step that writes it moves to)."""
    return _FIRST_PHASE[status]


class PartRecord(BaseModel):
    """A part's row in the jobs table: what it sends the provider, its slot, its task and its
    edited video. A job is its own one part when it is not split (a JobRecord is a PartRecord);
    a split job's parts have records of their own (`part_of`, `part_index`), read with
    JobStore.require_part. The steps inside the Map (AcquireSlot .. Finalize, the webhook)
    read only this."""

    job_id: str
    status: JobStatus
    bucket: str
    key: str
    version: str
    spec: JobSpec | None = None
    spec_source: str | None = None
    provider: str | None = None
    task_id: str | None = None
    task_state: str | None = None
    progress: int | None = None
    credits: float | None = None
    execution_name: str | None = None
    error_reason: str | None = None
    error_message: str | None = None
    #: What validation read from the video's header boxes (container, duration, size, codecs).
    media: dict[str, Any] | None = None
    #: StartTask's claim before it sends the create (cleared once the task is recorded, or when
    #: the create was provably refused: dropcut.providers.base.create_refused).
    creating_since: float | None = None
    #: Where it stands (dropcut.model.phases): written by the step that moves it. None: recorded
    #: before phases were stored.
    phase: JobPhase | None = None
    #: Why the create's outcome is unknown (its answer was lost or unusable): the task may exist.
    create_uncertain: str | None = None
    #: When a callback named the task of a create whose answer was lost (the task was adopted).
    task_adopted_at: float | None = None
    created_at: float = Field(default_factory=time.time)
    updated_at: float = Field(default_factory=time.time)
    task_created_at: float | None = None
    task_finished_seen_at: float | None = None
    stored_at: float | None = None
    #: When Finalize gave the job's provider slot back (the hand-over to the next job starts).
    slot_released_at: float | None = None
    polls: int = 0
    #: A part's record: the job it belongs to and its place in it.
    part_of: str | None = None
    part_index: int | None = None
    #: What the provider is sent when it is not the input itself (Prepare's mezzanine or part).
    source_key: str | None = None
    source_version: str | None = None
    #: A part's provider tasks that failed before the current one (TaskRetries): task_id, credits.
    failed_tasks: list[dict[str, Any]] = []
    #: Finalize's copy of this part's edited video (layout.edited_key), for Stitch.
    edited_key: str | None = None
    #: A paid result Finalize could not copy yet: why, and when its link dies (epoch s; the
    #: provider's result_link_seconds after the task was seen to succeed).
    result_copy_error: str | None = None
    result_copy_attempts: int = 0
    result_link_expires_at: float | None = None
    #: Callback mode: the waiting execution's task token, and the outcome a confirmed callback saw.
    callback_token: str | None = None
    callback_outcome: str | None = None
    callback_received_at: float | None = None
    #: A retry's part that re-uses the paid work (task, result or edited video) of this part
    #: of the retried job (dropcut.services.parts.carry_paid_results): no new task.
    carried_from: str | None = None

    @property
    def source(self) -> tuple[str, str | None]:
        """The S3 key and version the provider is sent: Prepare's video, else the input."""
        if self.source_key:
            return self.source_key, self.source_version
        return self.key, self.version

    @property
    def task_number(self) -> int:
        """Which of the part's provider tasks is its current one: 0 the first, n after n failed
        ones (TaskRetries). Each task has its own budget reservation (dropcut.model.budget)."""
        return len(self.failed_tasks)

    @property
    def task_may_be_running(self) -> bool:
        """True when a provider task may exist that we have not seen end: its slot stays held."""
        if self.task_id:
            return self.task_finished_seen_at is None and self.callback_outcome is None
        return self.creating_since is not None


class JobRecord(PartRecord):
    """The job's row in the jobs table: what was asked, what happened, where the result is.
    The fields of its one part (PartRecord), and the job's own: its plan and parts, its
    output or report, its manifest, cancel and retry."""

    #: The manifest's S3 version when the options were last read ("absent": none): a refusal
    #: for its options is evaluated again when a new manifest version arrives.
    manifest_version: str | None = None
    output_key: str | None = None
    result_manifest_key: str | None = None
    error_report_key: str | None = None
    problems: list[dict[str, str]] = []
    #: Things the user should know that did not stop the job (billing of short/long clips).
    notices: list[str] = []
    #: Submit's plan for the video and its estimate (dropcut.model.plan.Plan dumped as JSON; read it
    #: back with dropcut.model.plan.recorded_plan). None for jobs recorded before plans, or refused
    #: before the video could be read.
    plan: dict[str, Any] | None = None
    #: The job's parts (Prepare): [its own id] (the one-part case), or one id per part of a split.
    #: Read from "units" too: the attribute's name in records written before the rename.
    part_ids: list[str] | None = Field(
        default=None, validation_alias=AliasChoices("part_ids", "units")
    )
    #: What Prepare wrote, per part: index, start_seconds, duration_seconds, moved_to_scene_cut.
    prepared: list[dict[str, Any]] | None = None
    #: The before/after picture beside the output (Stitch).
    contact_sheet_key: str | None = None
    #: `dropcut cancel`: who asked (as the command line reported its caller) and when.
    cancel_requested_by: str | None = None
    cancel_requested_at: float | None = None
    #: A queued job's place and expected start when it was queued (dropcut.model.eta; the CLI
    #: shows the current one).
    eta: QueueEta | None = None
    #: `dropcut retry`: the job this one runs again, the job that ran this one again, and who
    #: asked for it.
    retry_of: str | None = None
    retried_by: str | None = None
    retry_requested_by: str | None = None
    #: The batch the job joined when its record was made (dropcut.model.batches).
    batch_id: str | None = None
    #: Its spec's not_after as an epoch second (dropcut.model.deadlines): start by then, or end.
    start_deadline: float | None = None
