"""Callback mode: per-job capability URLs, the webhook's checks, and the task-token hand-off.

The provider signs nothing, so the callback URL itself carries the credential: an HMAC of the job
id under a stack secret. Even an authentic callback is only a hint: the webhook asks the provider
before it resumes anything, and resumes only a job that is actually waiting.

Two writers meet on the job record, the state machine's `ArmCallback` step (stores the task token)
and the webhook (stores the confirmed outcome). Each writes with a condition and reads the record
back from the same atomic write, so whichever comes second sees the other's value and resumes the
execution: a callback that arrives before the token is stored is not lost, and a repeated
callback finds the outcome already stored and changes nothing.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import SecretStr

from dropcut.errors import ProviderBadResponse, ProviderError
from dropcut.jobs import JobStatus, JobStore
from dropcut.observability import logger, metrics

if TYPE_CHECKING:
    from dropcut.tasks import ProviderFor

CALLBACK_ROUTE = "/callbacks/<job_id>"
CAPABILITY_PARAM = "cap"
_JOB_ID = re.compile(r"^job-[0-9a-f]{40}$")


@dataclass(frozen=True)
class CallbackSigner:
    """Makes and checks the per-job callback URLs (`<base>/callbacks/<job id>?cap=<hmac>`)."""

    base_url: str
    secret: SecretStr

    def capability(self, job_id: str) -> str:
        key = self.secret.get_secret_value().encode()
        return hmac.new(key, job_id.encode(), hashlib.sha256).hexdigest()

    def url_for(self, job_id: str) -> str:
        base = self.base_url.rstrip("/")
        return f"{base}/callbacks/{job_id}?{CAPABILITY_PARAM}={self.capability(job_id)}"

    def verify(self, job_id: str, presented: str | None) -> bool:
        """True only for this job's capability; constant time whatever is presented."""
        expected = self.capability(job_id)
        candidate = presented if isinstance(presented, str) else ""
        well_formed = bool(_JOB_ID.match(job_id))
        return hmac.compare_digest(expected.encode(), candidate.encode()) and well_formed


@dataclass(frozen=True)
class CallbackAnswer:
    """What the webhook answers. 2xx tells the provider to stop retrying."""

    status_code: int
    message: str


ACCEPTED = 200


def accept_callback(
    store: JobStore, sfn: Any, provider_for: ProviderFor, job_id: str, body: Any
) -> CallbackAnswer:
    """Handle an authenticated callback for `job_id`: confirm with the provider, then resume once."""
    record = store.get(job_id)
    if record is None:
        return CallbackAnswer(404, "unknown job")
    if not isinstance(body, dict):
        return CallbackAnswer(400, "the body must be a JSON object")
    if record.status in (JobStatus.SUCCEEDED, JobStatus.FAILED) or record.callback_outcome:
        return CallbackAnswer(ACCEPTED, "already handled")
    if record.task_id is None or record.provider is None:
        # The provider called back before StartTask recorded the task: ask it to retry.
        return CallbackAnswer(409, "the job's task is not recorded yet; retry later")
    provider = provider_for(record.provider)
    try:
        claimed = provider.parse_callback(body)
    except ProviderBadResponse as exc:
        return CallbackAnswer(400, f"malformed callback body: {exc}")
    except NotImplementedError:
        return CallbackAnswer(400, f"{provider.name} sends no callbacks")
    if claimed.task_id != record.task_id:
        logger.warning("callback names another task", extra={"claimed_task_id": claimed.task_id})
        return CallbackAnswer(400, "the body names a different task than this job's")
    try:
        confirmed = provider.get_task(record.task_id)
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
    now = time.time()
    updated = store.update_returning(
        job_id,
        {
            "callback_outcome": confirmed.state.value,
            "callback_received_at": now,
            "task_state": confirmed.state.value,
            "progress": confirmed.progress,
            "credits": confirmed.credits,
            "task_finished_seen_at": now,
        },
        condition="attribute_not_exists(callback_outcome) AND #status = :running",
        condition_names={"#status": "status"},
        condition_values={":running": JobStatus.RUNNING.value},
    )
    if updated is None:
        return CallbackAnswer(ACCEPTED, "already handled")
    metrics.add_metric(name="CallbacksAccepted", unit="Count", value=1)
    if updated.callback_token:
        resume(sfn, updated.callback_token, confirmed.state.value)
    else:
        logger.info("callback stored before the execution armed its wait")
    return CallbackAnswer(ACCEPTED, "accepted")


def arm_callback(store: JobStore, sfn: Any, job_id: str, task_token: str) -> bool:
    """Store the waiting execution's token; if the callback already came, resume at once.

    Returns True when the execution was resumed here (the callback came first).
    """
    armed = store.update_returning(
        job_id,
        {"callback_token": task_token},
        condition="attribute_not_exists(callback_outcome)",
    )
    if armed is not None:
        return False
    record = store.require(job_id)
    logger.info("callback arrived before the wait: resuming now")
    return resume(sfn, task_token, record.callback_outcome or "")


def resume(sfn: Any, task_token: str, outcome: str) -> bool:
    """Resume a waiting execution; False when that wait already ended (a safety poll took over)."""
    try:
        sfn.send_task_success(taskToken=task_token, output=json.dumps({"state": outcome}))
    except (
        sfn.exceptions.TaskTimedOut,
        sfn.exceptions.InvalidToken,
        sfn.exceptions.TaskDoesNotExist,
    ):
        logger.info("the callback wait had already ended; the next wait picks the outcome up")
        return False
    return True
