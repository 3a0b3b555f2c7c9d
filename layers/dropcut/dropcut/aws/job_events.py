"""Job events: one EventBridge event (default bus, source "dropcut") when a job is submitted,
refused, succeeds, fails or is cancelled. The detail is built here and nowhere else
(`JobEventDetail`, published as schemas/job-event.schema.json).

Best effort: PutEvents has the SDK's own bounded retries; a failure after them is logged and
counted (`JobEventsUnpublished`) and never fails the job (the output or the report is what the
user paid for, and it is already stored when the event is sent).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Literal, Protocol

from botocore.exceptions import BotoCoreError, ClientError
from pydantic import BaseModel, ConfigDict, Field

from dropcut.errors import Failure
from dropcut.model.batches import Batch
from dropcut.model.eta import QueueEta
from dropcut.model.jobs import JobRecord, phase_of
from dropcut.model.phases import JobPhase
from dropcut.observability import logger, metrics


class PutEvents(Protocol):
    """The one EventBridge call made here (boto3's events client; no stubs are installed for it)."""

    def put_events(self, *, Entries: list[dict[str, str]]) -> dict[str, Any]: ...


#: The events' `source`: a rule matches it together with `detail.service` (the stack name).
EVENT_SOURCE = "dropcut"
#: The bus the events go to (the account's default bus).
EVENT_BUS = "default"
#: Longest error message carried in an event (the full one is in the error report).
MAX_MESSAGE_CHARS = 1000


class JobEventType(StrEnum):
    """The events' `detail-type`, one per moment of a job."""

    SUBMITTED = "Job Submitted"
    REFUSED = "Job Refused"
    SUCCEEDED = "Job Succeeded"
    FAILED = "Job Failed"
    CANCELLED = "Job Cancelled"

    @property
    def status(self) -> str:
        """The detail's `status`: the type's last word, lower case."""
        return self.value.split()[-1].lower()


#: The types that end a job (exactly one of them per job ending); the template's email rule
#: matches these (tests/unit/test_job_events.py checks it).
ENDINGS = frozenset(
    {
        JobEventType.REFUSED,
        JobEventType.SUCCEEDED,
        JobEventType.FAILED,
        JobEventType.CANCELLED,
    }
)

#: The phase an ending moves the job to (a submitted job is in the phase its record starts in).
PHASE_AFTER = {
    JobEventType.REFUSED: JobPhase.FAILED,
    JobEventType.SUCCEEDED: JobPhase.DONE,
    JobEventType.FAILED: JobPhase.FAILED,
    JobEventType.CANCELLED: JobPhase.CANCELLED,
}

_STRICT = ConfigDict(extra="forbid", frozen=True, json_schema_serialization_defaults_required=True)


class JobEventInput(BaseModel):
    """The input version the job is about."""

    model_config = _STRICT
    bucket: str
    key: str
    version: str


class JobEventDurations(BaseModel):
    """Seconds, from the upload's arrival (total) and at the provider (null when unknown)."""

    model_config = _STRICT
    total_seconds: float = Field(description="From the job's record to this event.")
    at_provider_seconds: float | None = Field(
        default=None,
        description="From the provider task's creation to its end being seen (null: no task, "
        "or its end was not seen).",
    )


class JobEventProblem(BaseModel):
    """One broken rule of a refused input (as in the error report)."""

    model_config = _STRICT
    field: str
    message: str
    limit: str = ""
    hint: str = ""


class JobEventDetail(BaseModel):
    """The `detail` of every dropcut job event."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        title="dropcut job event detail (EventBridge source dropcut)",
        # Every field is always sent (null when it does not apply): the schema says so.
        json_schema_serialization_defaults_required=True,
    )
    schema_version: Literal[1] = 1
    service: str = Field(description="The stack name (also the metrics' service dimension).")
    job_id: str
    batch_id: str | None = Field(
        default=None,
        description="The batch the job belongs to (dropcut.model.batches; null: none).",
    )
    status: Literal["submitted", "refused", "succeeded", "failed", "cancelled"]
    phase: JobPhase = Field(
        description="The job's phase after this event, as `dropcut ls` shows it and "
        "`dropcut ls --status` filters on (dropcut.model.phases): queued, received or "
        "waiting_for_manifest when submitted; done, failed or cancelled at its ending."
    )
    input: JobEventInput
    output_key: str | None = Field(default=None, description="The edited video (succeeded).")
    result_manifest_key: str | None = None
    error_report_key: str | None = Field(
        default=None, description="The error report (refused, failed, cancelled)."
    )
    plan: dict[str, Any] | None = Field(
        default=None,
        description="The job's plan and estimate (dropcut.model.plan.Plan as JSON; null before one "
        "was made).",
    )
    provider: str | None = None
    credits: float | None = None
    durations: JobEventDurations
    reason: str | None = Field(default=None, description="The failure reason (error reports').")
    message: str | None = None
    advice: str | None = None
    problems: list[JobEventProblem] = []
    eta: QueueEta | None = Field(
        default=None,
        description="Submitted and queued: its place in the backlog and expected start.",
    )
    notices: list[str] = Field(
        default=[],
        description="What the user should know that is not a failure (the result manifest's "
        "notices): a short clip padded and billed as the model's minimum, keep_audio asked "
        "of a video with no audio track.",
    )
    occurred_at: float = Field(description="Epoch seconds.")


def build_detail(
    kind: JobEventType,
    record: JobRecord,
    service: str,
    *,
    failure: Failure | None = None,
    report_key: str | None = None,
    at: float | None = None,
) -> JobEventDetail:
    """The detail of a `kind` event for the job as `record` has it (an ending's fields set)."""
    at = time.time() if at is None else at
    at_provider = None
    if record.task_created_at is not None and record.task_finished_seen_at is not None:
        at_provider = round(max(0.0, record.task_finished_seen_at - record.task_created_at), 3)
    message = failure.message[:MAX_MESSAGE_CHARS] if failure is not None else None
    return JobEventDetail(
        service=service,
        job_id=record.job_id,
        batch_id=record.batch_id,
        status=kind.status,
        phase=PHASE_AFTER.get(kind) or record.phase or phase_of(record.status),
        input=JobEventInput(bucket=record.bucket, key=record.key, version=record.version),
        output_key=record.output_key,
        result_manifest_key=record.result_manifest_key,
        error_report_key=report_key or record.error_report_key,
        plan=record.plan,
        provider=record.provider,
        credits=record.credits,
        durations=JobEventDurations(
            total_seconds=round(max(0.0, at - record.created_at), 3),
            at_provider_seconds=at_provider,
        ),
        reason=failure.reason if failure is not None else None,
        message=message,
        advice=failure.advice if failure is not None else None,
        problems=[JobEventProblem(**problem.as_dict()) for problem in failure.problems]
        if failure is not None
        else [],
        eta=record.eta if kind is JobEventType.SUBMITTED else None,
        notices=list(record.notices),
        occurred_at=at,
    )


#: The `detail-type` of the one event a batch gets, when its last job has ended.
BATCH_COMPLETED = "Batch Completed"


class BatchEventDetail(BaseModel):
    """The `detail` of a `Batch Completed` event (schemas/batch-event.schema.json)."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        title="dropcut batch event detail (EventBridge source dropcut)",
        json_schema_serialization_defaults_required=True,
    )
    schema_version: Literal[1] = 1
    service: str = Field(description="The stack name (also the metrics' service dimension).")
    batch_id: str
    folder: str = Field(description="The inbox folder the batch was dropped into.")
    origin: Literal["tagged", "folder"]
    jobs: int
    succeeded: int
    failed: int = Field(description="Failed and refused jobs (each has an error report).")
    cancelled: int
    credits_spent: float
    credits_estimated: float
    summary_key: str | None = Field(description="The summary JSON beside the outputs.")
    page_key: str | None = Field(description="The summary page (HTML) beside it.")
    created_at: float = Field(description="Epoch seconds: the first job joined.")
    completed_at: float | None = Field(description="Epoch seconds: the summary was written.")


#: Called with the job (as the ending's caller has it) and the ending event's detail, once per
#: job ending (dropcut.services.batches.Batches.job_ended counts it in the job's batch).
EndingHook = Callable[[JobRecord, JobEventDetail], None]


@dataclass(frozen=True)
class JobEvents:
    """Publishes job events for one stack (`service`). With no client it publishes nothing
    (NO_JOB_EVENTS: steps built without wiring, tests). Every job ending passes through
    `publish`: `on_ending` (when set) hears of each one, whether or not its event is sent."""

    client: PutEvents | None
    service: str
    bus: str = EVENT_BUS
    on_ending: EndingHook | None = None

    def publish(
        self,
        kind: JobEventType,
        record: JobRecord,
        *,
        failure: Failure | None = None,
        report_key: str | None = None,
    ) -> bool:
        """Send one event; False (logged, counted) when it could not be sent. Never raises."""
        try:
            detail = build_detail(
                kind, record, self.service, failure=failure, report_key=report_key
            )
        except ValueError as exc:
            return _unpublished(kind.value, f"{type(exc).__name__}: {exc}")
        if kind in ENDINGS and self.on_ending is not None:
            self.on_ending(record, detail)
        return self._put(kind.value, detail)

    def publish_batch(self, batch: Batch) -> bool:
        """Send a batch's `Batch Completed` event; False (logged, counted) when it could not be
        sent. Never raises."""
        fields = set(BatchEventDetail.model_fields) - {"schema_version", "service"}
        detail = BatchEventDetail(
            service=self.service, **batch.model_dump(mode="json", include=fields)
        )
        return self._put(BATCH_COMPLETED, detail)

    def _put(self, detail_type: str, detail: BaseModel) -> bool:
        if self.client is None:
            return False
        try:
            answer = self.client.put_events(
                Entries=[
                    {
                        "Source": EVENT_SOURCE,
                        "DetailType": detail_type,
                        "Detail": detail.model_dump_json(),
                        "EventBusName": self.bus,
                    }
                ]
            )
        except (BotoCoreError, ClientError, ValueError) as exc:
            return _unpublished(detail_type, f"{type(exc).__name__}: {exc}")
        if answer.get("FailedEntryCount"):
            entry: dict[str, Any] = dict((answer.get("Entries") or [{}])[0])
            return _unpublished(
                detail_type, f"{entry.get('ErrorCode')}: {entry.get('ErrorMessage')}"
            )
        return True


def _unpublished(detail_type: str, why: str) -> bool:
    logger.warning("job event not published", extra={"event": detail_type, "error": why})
    metrics.add_metric(name="JobEventsUnpublished", unit="Count", value=1)
    return False


#: Publishes nothing: the default of every step's Deps (wiring gives the handlers real ones).
NO_JOB_EVENTS = JobEvents(client=None, service="")
