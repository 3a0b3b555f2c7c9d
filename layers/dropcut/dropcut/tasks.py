"""Start the provider task (at most once per job) and follow it: the polling plan lives here."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, Field

from dropcut.config import Settings
from dropcut.errors import (
    ExecutionEnded,
    JobTimedOut,
    ProviderAnswerLost,
    TaskCreationUncertain,
    TaskFailed,
)
from dropcut.jobs import JobStatus, JobStore
from dropcut.observability import logger, metrics
from dropcut.providers import EditRequest, Provider, ProviderTask, TaskState
from dropcut.providers.http import redact_urls
from dropcut.storage import presign_get


@dataclass(frozen=True)
class PollPlan:
    """Waits between status checks: the provider's estimate first, then growing, capped intervals."""

    initial_seconds: int
    max_seconds: int
    growth_percent: int = 150
    deadline_seconds: int = 3600
    #: Callback mode: the longest silence trusted before a safety-net status check.
    callback_silence_seconds: int = 300

    def first_wait(self, estimated_seconds: int | None) -> int:
        if estimated_seconds:
            return max(1, min(estimated_seconds, self.deadline_seconds))
        return self.initial_seconds

    def first_silence(self, estimated_seconds: int | None) -> int:
        """Callback mode: wait well past the estimate before checking on a silent provider."""
        if estimated_seconds:
            return max(1, min(2 * estimated_seconds, self.deadline_seconds))
        return min(self.callback_silence_seconds, self.deadline_seconds)

    def next_interval(self, interval: int) -> int:
        return max(1, min(self.max_seconds, math.ceil(interval * self.growth_percent / 100)))

    def waits_for(self, task_seconds: float, estimated_seconds: int | None = None) -> list[int]:
        """The waits a job makes before it sees a task of `task_seconds` finished."""
        waits = [self.first_wait(estimated_seconds)]
        interval = self.initial_seconds
        while sum(waits) < task_seconds:
            interval = self.next_interval(interval)
            waits.append(interval)
        return waits


Follow = Literal["poll", "callback"]


class TaskProgress(BaseModel):
    """The state machine's view of a provider task ($.task). Holds no URL: those carry signatures.

    `follow` picks the loop: "poll" waits `wait_seconds` then checks; "callback" waits for the
    provider's callback, with `wait_seconds` as the heartbeat (a safety-net check after that much
    silence) and `seconds_left` (to the job deadline) as the wait's timeout.
    """

    task_id: str
    provider: str
    state: TaskState
    follow: Follow = "poll"
    wait_seconds: int = Field(ge=1)
    interval_seconds: int = Field(ge=1)
    deadline: float
    seconds_left: int = Field(default=1, ge=1)
    polls: int = 0
    progress: int | None = None


ProviderFor = Callable[[str], Provider]
#: The callback URL for a job id, when callbacks are on (see dropcut.callbacks.CallbackSigner).
CallbackUrlFor = Callable[[str], str]


def start_task(
    s3: Any,
    store: JobStore,
    settings: Settings,
    provider_for: ProviderFor,
    plan: PollPlan,
    presign_seconds: int,
    job_id: str,
    callback_url_for: CallbackUrlFor | None = None,
) -> TaskProgress:
    """Create the job's provider task, or return the one already recorded. Never creates two.

    With `callback_url_for` and a provider that calls back, the task is created with this job's
    callback URL and followed in callback mode; otherwise it is polled.
    """
    record = store.require(job_id)
    provider_name = record.provider or settings.provider
    provider = provider_for(provider_name)
    follow: Follow = "callback" if callback_url_for and provider.supports_callback else "poll"
    if record.task_id:
        logger.info("provider task already recorded", extra={"task_id": record.task_id})
        created_at = record.task_created_at or time.time()
        return _progress(
            record.task_id, provider_name, TaskState.QUEUED, follow, plan, None, created_at
        )
    claimed = store.update(
        job_id,
        {"creating_since": time.time()},
        condition="attribute_not_exists(task_id) AND attribute_not_exists(creating_since) "
        "AND #status = :received",
        condition_names={"#status": "status"},
        condition_values={":received": JobStatus.RECEIVED.value},
    )
    if not claimed:
        if (ended := store.require(job_id).status) is not JobStatus.RECEIVED:
            # Its execution was cancelled and the reconciler ended the job: pay for nothing.
            raise ExecutionEnded(f"the job had already ended ({ended.value}); no task was created")
        raise TaskCreationUncertain(
            "an earlier attempt sent the create request and its answer was lost; "
            "dropcut will not send a second one"
        )
    assert record.spec is not None, "a job is only started with a resolved spec"
    spec = record.spec
    request = EditRequest(
        prompt=spec.prompt,
        video_url=presign_get(s3, record.bucket, record.key, record.version, presign_seconds),
        image_urls=tuple(
            image
            if image.startswith("https://")
            else presign_get(s3, record.bucket, image, None, presign_seconds)
            for image in spec.images
        ),
        keep_audio=spec.keep_audio,
        aspect_ratio=spec.aspect_ratio,
        callback_url=callback_url_for(job_id)
        if callback_url_for and follow == "callback"
        else None,
    )
    try:
        task = provider.create_task(request)
    except ProviderAnswerLost as lost:
        raise TaskCreationUncertain(f"{lost}; the provider may have created the task") from None
    except Exception:
        # The provider answered with an error (or we never sent): no task exists, retry is safe.
        store.update(job_id, {"creating_since": None})
        raise
    now = time.time()
    store.update(
        job_id,
        {
            "task_id": task.task_id,
            "provider": provider_name,
            "status": JobStatus.RUNNING.value,
            "task_state": task.state.value,
            "task_created_at": now,
            "creating_since": None,
        },
    )
    metrics.add_metric(name="TasksCreated", unit="Count", value=1)
    logger.info(
        "provider task created",
        extra={"task_id": task.task_id, "provider": provider_name, "follow": follow},
    )
    return _progress(
        task.task_id, provider_name, task.state, follow, plan, task.estimated_seconds, now
    )


def _progress(
    task_id: str,
    provider: str,
    state: TaskState,
    follow: Follow,
    plan: PollPlan,
    estimate: int | None,
    created_at: float,
) -> TaskProgress:
    deadline = created_at + plan.deadline_seconds
    seconds_left = max(1, math.ceil(deadline - time.time()))
    first = plan.first_silence(estimate) if follow == "callback" else plan.first_wait(estimate)
    wait = max(1, min(first, seconds_left))
    return TaskProgress(
        task_id=task_id,
        provider=provider,
        state=state,
        follow=follow,
        wait_seconds=wait,
        interval_seconds=plan.initial_seconds,
        deadline=deadline,
        # Step Functions wants a heartbeat shorter than the timeout.
        seconds_left=max(seconds_left, wait + 1),
    )


def check_task(
    store: JobStore, provider_for: ProviderFor, plan: PollPlan, job_id: str, progress: TaskProgress
) -> TaskProgress:
    """One status query. Raises TaskFailed or JobTimedOut; otherwise returns the next wait."""
    task: ProviderTask = provider_for(progress.provider).get_task(progress.task_id)
    now = time.time()
    fields: dict[str, Any] = {
        "task_state": task.state.value,
        "progress": task.progress,
        "polls": progress.polls + 1,
    }
    if task.finished:
        fields["task_finished_seen_at"] = now
        fields["credits"] = task.credits
    store.update(job_id, fields)
    if task.state is TaskState.FAILED:
        code = f" [{task.error_code}]" if task.error_code else ""
        message = redact_urls(task.error_message or "no message")
        raise TaskFailed(f"the provider reported the task failed{code}: {message}")
    updated = progress.model_copy(
        update={"state": task.state, "polls": progress.polls + 1, "progress": task.progress}
    )
    if task.state is TaskState.SUCCEEDED:
        return updated
    remaining = progress.deadline - now
    if remaining <= 0:
        raise JobTimedOut(
            f"the provider task was still {task.provider_status} at the job deadline "
            f"(after {progress.polls + 1} status checks)"
        )
    # The same schedule PollPlan.waits_for describes: each wait grows from the previous interval.
    if progress.follow == "callback":
        interval = plan.callback_silence_seconds
    else:
        interval = plan.next_interval(progress.interval_seconds)
    wait = max(1, min(interval, math.ceil(remaining)))
    return updated.model_copy(
        update={
            "wait_seconds": wait,
            "interval_seconds": interval,
            # Step Functions wants a heartbeat shorter than the timeout.
            "seconds_left": max(wait + 1, math.ceil(remaining)),
        }
    )
