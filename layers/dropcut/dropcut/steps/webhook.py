"""Webhook: an authenticated provider callback -> confirmed with the provider -> the waiting
execution resumed exactly once.

Two writers meet on the job record: the state machine's ArmCallback step (stores the task token,
dropcut.steps.arm_callback) and this step (stores the confirmed outcome). Each writes with a
condition and reads the record back from the same atomic write, so whichever comes second sees
the other's value and resumes the execution: a callback that arrives before the token is stored
is not lost, and a repeated callback finds the outcome already stored and changes nothing.

A callback for a job whose create answer was lost (no task id recorded, the create's claim
still held: dropcut.steps.start_task) adopts the task it names: the URL's capability is this
job's, so only the provider, which was sent it with this job's create, can call it; the
provider confirms the task exists. The job follows that task and pays once. A job that
already ended `task_creation_uncertain` records the task too, so what was paid is on record
(and `dropcut retry` re-uses its result instead of paying again).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from dropcut.aws.job_store import JobStore
from dropcut.aws.tokens import resume_wait
from dropcut.bounded_json import BoundedJsonError, parse_bounded_json
from dropcut.errors import ProviderBadResponse, ProviderError
from dropcut.model.jobs import JobStatus, PartRecord
from dropcut.model.phases import JobPhase
from dropcut.observability import logger, metrics
from dropcut.providers import Provider, ProviderFor, ProviderTask, TaskState

if TYPE_CHECKING:
    from mypy_boto3_stepfunctions import SFNClient


@dataclass(frozen=True)
class CallbackAnswer:
    """What the webhook answers. 2xx tells the provider to stop retrying."""

    status_code: int
    message: str


ACCEPTED = 200
#: Largest callback body read (the provider's task JSON is about 1 KB).
MAX_CALLBACK_BYTES = 64 * 1024


@dataclass(frozen=True)
class WebhookDeps:
    store: JobStore
    sfn: SFNClient
    #: Adapters with short timeouts: the provider gives up on a callback after 10 s.
    provider_for: ProviderFor


def accept_callback(deps: WebhookDeps, part_id: str, raw_body: str | bytes) -> CallbackAnswer:
    """Handle an authenticated callback for `part_id` (its raw body): confirm with the provider,
    then resume once.

    Answers 404 unknown job, 400 malformed body, 409/503 retry later, 200 accepted or already
    handled; never raises for anything the caller sent.
    """
    store = deps.store
    record = store.part(part_id)
    if record is None:
        return CallbackAnswer(404, "unknown job")
    try:
        body: Any = parse_bounded_json(raw_body, max_bytes=MAX_CALLBACK_BYTES)
    except BoundedJsonError as exc:
        return CallbackAnswer(400, f"the body is not usable JSON: {exc}")
    if not isinstance(body, dict):
        return CallbackAnswer(400, "the body must be a JSON object")
    if record.task_id is None and record.creating_since is not None and record.provider:
        adopted = _adopt(deps, record, body)
        if isinstance(adopted, CallbackAnswer):
            return adopted
        record = adopted
    if record.status in (JobStatus.SUCCEEDED, JobStatus.FAILED) or record.callback_outcome:
        return CallbackAnswer(ACCEPTED, "already handled")
    if record.task_id is None or record.provider is None:
        # The provider called back before StartTask recorded the task: ask it to retry.
        return CallbackAnswer(409, "the job's task is not recorded yet; retry later")
    confirmed = _confirm(deps.provider_for(record.provider), record.task_id, body)
    if isinstance(confirmed, CallbackAnswer):
        return confirmed
    now = time.time()
    updated = store.update_returning(
        part_id,
        {
            "callback_outcome": confirmed.state.value,
            "callback_received_at": now,
            "task_state": confirmed.state.value,
            "progress": confirmed.progress,
            "credits": confirmed.credits,
            "task_finished_seen_at": now,
            **({"phase": JobPhase.STORING.value} if confirmed.state is TaskState.SUCCEEDED else {}),
        },
        condition="attribute_not_exists(callback_outcome) AND #status = :running",
        condition_names={"#status": "status"},
        condition_values={":running": JobStatus.RUNNING.value},
    )
    if updated is None:
        return CallbackAnswer(ACCEPTED, "already handled")
    metrics.add_metric(name="CallbacksAccepted", unit="Count", value=1)
    if updated.callback_token:
        resume_callback_wait(deps.sfn, updated.callback_token, confirmed.state.value)
    else:
        logger.info("callback stored before the execution armed its wait")
    return CallbackAnswer(ACCEPTED, "accepted")


def _adopt(
    deps: WebhookDeps, record: PartRecord, body: dict[str, Any]
) -> PartRecord | CallbackAnswer:
    """Record the task this callback names as the job's, for a create whose answer was lost
    (see the module docstring); the record after it, or the answer that refuses the body."""
    assert record.provider is not None
    confirmed = _confirm(deps.provider_for(record.provider), None, body)
    if isinstance(confirmed, CallbackAnswer):
        return confirmed
    fields: dict[str, Any] = {
        "task_id": confirmed.task_id,
        "task_created_at": record.creating_since,
        "task_adopted_at": time.time(),
        "creating_since": None,
    }
    if record.status is JobStatus.RECEIVED:
        fields["status"] = JobStatus.RUNNING.value
    adopted = deps.store.update_returning(
        record.job_id,
        fields,
        condition="attribute_not_exists(task_id) AND attribute_exists(creating_since)",
    )
    if adopted is None:  # StartTask's answer (or another callback) recorded it meanwhile
        return deps.store.require_part(record.job_id)
    metrics.add_metric(name="TasksAdopted", unit="Count", value=1)
    logger.warning(
        "task adopted from its callback",
        extra={"task_id": confirmed.task_id, "job_status": record.status.value},
    )
    if adopted.status is JobStatus.FAILED:
        # Ended task_creation_uncertain already: what was paid is on record now.
        deps.store.update(
            record.job_id,
            {
                "task_state": confirmed.state.value,
                "credits": confirmed.credits,
                "task_finished_seen_at": time.time(),
            },
        )
    return adopted


def _confirm(
    provider: Provider, task_id: str | None, body: dict[str, Any]
) -> ProviderTask | CallbackAnswer:
    """The task as the provider itself reports it, once it has ended; otherwise the answer that
    says why the body is not believed (400, 409) or could not be checked (503). `task_id`: the
    task the body must name (None: a task to adopt, whichever the body names)."""
    try:
        claimed = provider.parse_callback(body)
    except ProviderBadResponse as exc:
        return CallbackAnswer(400, f"malformed callback body: {exc}")
    except NotImplementedError:
        return CallbackAnswer(400, f"{provider.name} sends no callbacks")
    task_id = claimed.task_id if task_id is None else task_id
    if claimed.task_id != task_id:
        logger.warning("callback names another task", extra={"claimed_task_id": claimed.task_id})
        return CallbackAnswer(400, "the body names a different task than this job's")
    try:
        confirmed = provider.get_task(task_id)
    except ProviderError as exc:
        logger.warning("could not confirm a callback", extra={"error": type(exc).__name__})
        return CallbackAnswer(503, "could not confirm the task with the provider; retry later")
    if not confirmed.finished:
        # Not trusted: the body said finished, the provider says otherwise. Nothing changes.
        logger.warning(
            "callback not confirmed by the provider",
            extra={"claimed": claimed.provider_status, "provider": confirmed.provider_status},
        )
        metrics.add_metric(name="CallbacksUnconfirmed", unit="Count", value=1)
        return CallbackAnswer(409, f"the provider reports the task {confirmed.provider_status}")
    return confirmed


def resume_callback_wait(sfn: SFNClient, task_token: str, outcome: str) -> bool:
    """Resume WaitForCallback with `{"state": outcome}`; False when that wait already ended (a
    safety-net status check took over and will see the outcome)."""
    if resume_wait(sfn, task_token, {"state": outcome}):
        return True
    logger.info("the callback wait had already ended; the next wait picks the outcome up")
    return False
