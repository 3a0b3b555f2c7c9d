"""StartTask: presign the input and create the provider task, at most once per job."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from dropcut.aws.breaker import Breaker
from dropcut.aws.job_store import JobStore
from dropcut.aws.pace import PaceBook, learned_wait, pace_key
from dropcut.aws.storage import input_absence, presign_get
from dropcut.errors import (
    ExecutionEnded,
    InputGone,
    JobNotReady,
    ProviderUnavailable,
    StackMisconfigured,
    TaskCreationUncertain,
)
from dropcut.model.callbacks import CallbackUrlFor
from dropcut.model.follow import Follow, PollPlan, TaskProgress, adoption_progress, first_progress
from dropcut.model.jobs import JobStatus, PartRecord
from dropcut.model.phases import JobPhase
from dropcut.observability import logger, metrics
from dropcut.providers import EditRequest, Element, ProviderFor, TaskState
from dropcut.providers.base import create_refused
from dropcut.providers.http import redact_urls

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


@dataclass(frozen=True)
class StartTaskDeps:
    #: Signs with SigV4 (storage.presigning_s3_client): the provider reads the input through it.
    s3: S3Client
    store: JobStore
    provider_for: ProviderFor
    #: The stack's provider, for a job record that names none.
    default_provider: str
    plan: PollPlan
    presign_seconds: int
    #: None when callbacks are off: every task is polled.
    callback_url_for: CallbackUrlFor | None
    #: Recent task durations (the first wait of a task with no provider estimate); None: none.
    pace: PaceBook | None
    #: The provider breaker: outages are recorded there, and while it pauses admission no
    #: create is sent (dropcut.aws.breaker); None: no breaker.
    breaker: Breaker | None


def start_task(deps: StartTaskDeps, part_id: str) -> TaskProgress:
    """Create the job's provider task, or return the one already recorded. Never creates two.

    With a callback URL and a provider that calls back, the task is created with this job's
    callback URL and followed in callback mode; otherwise it is polled. A create that may have
    reached the provider and whose answer was lost or unusable (create_refused says which) is
    never sent again: with a callback URL the job waits, until its deadline, for the provider's
    callback to name the task (dropcut.steps.webhook adopts it); without one it ends.
    Raises ExecutionEnded (the job already ended, or ended while the task was being created),
    InputGone (the input was deleted while the job waited: nothing is sent), StackMisconfigured
    (PresignExpirySeconds below JobDeadlineSeconds: nothing is sent), TaskCreationUncertain (a create's outcome is unknown and no callback can tell it),
    JobNotReady (no resolved spec) and the provider's named errors for a refused create.
    """
    store = deps.store
    record = store.require_part(part_id)
    provider_name = record.provider or deps.default_provider
    provider = deps.provider_for(provider_name)
    callbacks = deps.callback_url_for is not None and provider.supports_callback
    follow: Follow = "callback" if callbacks else "poll"
    if record.task_id:
        return _recorded(deps, record, provider_name, follow)
    _unless_misconfigured(deps)
    _unless_paused(deps.breaker)
    _unless_input_gone(deps, record)
    # Everything the create needs is made before the claim, so the claim is followed by the POST
    # alone: a worker stopped before it sent anything leaves no claim behind.
    request = _edit_request(deps, record, callback=callbacks)
    claimed = store.update(
        part_id,
        {
            "creating_since": time.time(),
            "provider": provider_name,
            "phase": JobPhase.AT_PROVIDER.value,
        },
        condition="attribute_not_exists(task_id) AND attribute_not_exists(creating_since) "
        "AND #status = :received",
        condition_names={"#status": "status"},
        condition_values={":received": JobStatus.RECEIVED.value},
    )
    if not claimed:
        latest = store.require_part(part_id)
        if latest.task_id:  # a callback adopted the task meanwhile
            return _recorded(deps, latest, provider_name, follow)
        if latest.status is not JobStatus.RECEIVED:
            # Its execution was cancelled and the reconciler ended the job: pay for nothing.
            raise ExecutionEnded(
                f"the job had already ended ({latest.status.value}); no task was created"
            )
        # An earlier attempt sent the create and stopped before its answer (a killed worker).
        why = latest.create_uncertain or "an earlier attempt sent the create and was stopped"
        return _uncertain(deps, latest, provider_name, callbacks, why)
    try:
        task = provider.create_task(request)
    except Exception as error:
        if deps.breaker is not None:
            deps.breaker.record(error, time.time())
        if not create_refused(error):
            return _uncertain(deps, record, provider_name, callbacks, redact_urls(str(error)))
        # Nothing reached the provider's application: no task exists, retry is safe.
        store.update(part_id, {"creating_since": None})
        raise
    now = time.time()
    created = {
        "task_id": task.task_id,
        "provider": provider_name,
        "task_state": task.state.value,
        "task_created_at": now,
        "creating_since": None,
    }
    running = store.update(
        part_id,
        {**created, "status": JobStatus.RUNNING.value},
        condition="#status = :received AND attribute_not_exists(task_id)",
        condition_names={"#status": "status"},
        condition_values={":received": JobStatus.RECEIVED.value},
    )
    metrics.add_metric(name="TasksCreated", unit="Count", value=1)
    if not running:
        latest = store.require_part(part_id)
        if latest.task_id == task.task_id:  # its callback came first and adopted it
            return _recorded(deps, latest, provider_name, follow)
        # Cancelled while the create was on its way: record the task (it runs and holds the
        # slot until it can have ended), never bring the job back to life.
        store.update(part_id, created)
        raise ExecutionEnded(f"the job ended while its task {task.task_id} was being created")
    logger.info(
        "provider task created",
        extra={"task_id": task.task_id, "provider": provider_name, "follow": follow},
    )
    key, learned = None, None
    if deps.pace is not None:
        key = pace_key(provider_name, provider.model, (record.media or {}).get("duration_seconds"))
        if follow == "poll" and not task.estimated_seconds:
            learned = learned_wait(deps.pace.recent(key), deps.plan.initial_seconds)
            logger.info("first wait", extra={"pace_key": key, "learned_seconds": learned})
    return first_progress(
        task.task_id,
        provider_name,
        task.state,
        follow,
        deps.plan,
        task.estimated_seconds,
        now,
        learned=learned,
        pace_key=key,
    )


def _unless_paused(breaker: Breaker | None) -> None:
    """Raise an undelivered ProviderUnavailable while a provider outage pauses admission: no
    create is sent into it, and the state machine tries again later (5 to 120 s apart)."""
    if breaker is None:
        return
    until = breaker.paused_until()
    if until is not None and time.time() < until:
        raise ProviderUnavailable(
            f"the provider is in an outage (dropcut.aws.breaker): no create is sent before "
            f"{time.strftime('%H:%M:%S', time.gmtime(until))} UTC",
            delivered=False,
        )


def _unless_misconfigured(deps: StartTaskDeps) -> None:
    """Raise StackMisconfigured when the input link would expire before the job's deadline: a
    task the provider starts late (its queue, a retry's new task) would fetch nothing, fail, and
    be billed (issue 26, item 15). CloudFormation's rules cannot compare two numbers, so the
    pair is checked here, before anything is sent."""
    presign, deadline = deps.presign_seconds, deps.plan.deadline_seconds
    if presign < deadline:
        raise StackMisconfigured(
            f"PresignExpirySeconds ({presign} s) is shorter than JobDeadlineSeconds ({deadline} s): "
            "a task the provider started late would find its input link expired and fail, paid; "
            "nothing was sent. PresignExpirySeconds must be at least JobDeadlineSeconds"
        )


def _unless_input_gone(deps: StartTaskDeps, record: PartRecord) -> None:
    """Raise InputGone when the job's input (its version) was deleted while the job waited:
    the provider would fetch nothing, or edit a video its owner took back, and bill it. A new
    task for a part whose task failed (TaskRetries) goes on: its job was paid for already, and
    the part is sent from its own video under work/ (the input's deletion must not throw the
    other parts' paid edits away)."""
    if record.failed_tasks and record.source_key:
        return
    why = input_absence(deps.s3, record.bucket, record.key, record.version)
    if why is not None:
        raise InputGone(
            f"{record.key}: {why} before its provider task was created; nothing was sent"
        )


def _recorded(
    deps: StartTaskDeps, record: PartRecord, provider_name: str, follow: Follow
) -> TaskProgress:
    """The task already recorded on the job (a repeated StartTask, a task a callback adopted,
    or one a retry re-uses: dropcut.services.parts.carry_paid_results): followed from where it is, never
    created again. A re-used task is polled at once (its callbacks went to the retried job)."""
    assert record.task_id is not None
    logger.info("provider task already recorded", extra={"task_id": record.task_id})
    if record.phase in (JobPhase.RECEIVED, JobPhase.IN_LINE):
        deps.store.move_phase(record.job_id, JobPhase.AT_PROVIDER)
    state = TaskState(record.task_state) if record.task_state else TaskState.QUEUED
    estimate = None
    if record.carried_from:
        follow, estimate = "poll", 1
    created_at = record.task_created_at or time.time()
    return first_progress(
        record.task_id,
        record.provider or provider_name,
        state,
        follow,
        deps.plan,
        estimate,
        created_at,
    )


def _uncertain(
    deps: StartTaskDeps, record: PartRecord, provider_name: str, callbacks: bool, why: str
) -> TaskProgress:
    """A create whose outcome is unknown: the claim stays (nothing is sent again, the slot and
    the budget's reservation stay). With callbacks, wait for the one that names the task, until
    the job deadline; without, raise TaskCreationUncertain."""
    metrics.add_metric(name="TaskCreatesUncertain", unit="Count", value=1)
    recorded = deps.store.update(
        record.job_id,
        {"create_uncertain": why},
        condition="attribute_not_exists(task_id)",
    )
    if not recorded:  # a callback adopted the task meanwhile
        return _recorded(deps, deps.store.require_part(record.job_id), provider_name, "callback")
    logger.warning("create outcome unknown", extra={"why": why, "adoption": callbacks})
    if not callbacks:
        raise TaskCreationUncertain(
            f"{why}; the provider may have created the task, and {provider_name} can neither "
            "call back nor be asked for it: dropcut will not send a second one"
        )
    return adoption_progress(provider_name, deps.plan, record.creating_since or time.time())


def _edit_request(deps: StartTaskDeps, record: PartRecord, *, callback: bool) -> EditRequest:
    """The provider request for a job: presigned URLs for the input version and bucket images."""
    if record.spec is None:
        raise JobNotReady("the job has no resolved options; Submit starts only jobs that do")
    spec = record.spec

    def presigned(key: str, version: str | None) -> str:
        return presign_get(deps.s3, record.bucket, key, version, deps.presign_seconds)

    return EditRequest(
        prompt=spec.prompt,
        video_url=presigned(*record.source),
        image_urls=tuple(_url(image, presigned) for image in spec.images),
        elements=tuple(
            Element(
                frontal_image_url=_url(element.frontal_image, presigned),
                reference_image_urls=tuple(
                    _url(image, presigned) for image in element.reference_images
                ),
            )
            for element in spec.elements
        ),
        keep_audio=spec.keep_audio,
        aspect_ratio=spec.aspect_ratio,
        callback_url=deps.callback_url_for(record.job_id)
        if callback and deps.callback_url_for
        else None,
    )


def _url(image: str, presigned: Callable[[str, str | None], str]) -> str:
    """An image as the provider fetches it: its https URL, or a bucket key presigned."""
    return image if image.startswith("https://") else presigned(image, None)
