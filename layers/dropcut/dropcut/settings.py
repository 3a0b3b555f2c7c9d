"""Settings: plain frozen data read from a function's environment, here and nowhere else.

Every variable comes from template.yaml (the Globals for all functions, the rest per function).
A required variable that is missing fails fast with a KeyError at cold start.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from dropcut.model.follow import PollPlan
from dropcut.model.layout import BucketLayout
from dropcut.model.plan import DEFAULT_MAX_PARTS


def _flag(name: str) -> bool:
    return os.environ[name].strip().lower() == "true"


def _int(name: str) -> int:
    return int(os.environ[name])


@dataclass(frozen=True)
class SlotSettings:
    """Provider concurrency: the slots table and how many tasks the provider account may run."""

    table: str
    limit: int
    #: How long a job may wait in line for a slot before it ends with a report.
    max_wait_seconds: int
    #: How long a slot stays held for a task we lost track of (it may still be running).
    lost_task_hold_seconds: int
    #: DailyCreditBudget: provider credits the stack may spend per UTC day (0: no limit).
    daily_credit_budget: float = 0.0
    #: CreditsPerBilledSecond: the account's price of a billed second, for estimates.
    credits_per_billed_second: float = 1.0


@dataclass(frozen=True)
class BatchSettings:
    """Batches (dropcut.model.batches): where they are kept, and when a folder's batch closes."""

    table: str
    #: BatchQuietSeconds: a folder's uploads this far apart start a new batch (s).
    quiet_seconds: int


@dataclass(frozen=True)
class Settings:
    """What every function knows about its stack (template.yaml's Globals)."""

    bucket: str
    jobs_table: str
    inbox_prefix: str
    outbox_prefix: str
    errors_prefix: str
    provider: str
    provider_base_url: str
    provider_model: str | None
    provider_key_secret_arn: str
    allow_insecure_urls: bool
    slots: SlotSettings
    #: The job state machine (its name is the stack's: template.yaml, JobStateMachine), whose
    #: executions Submit, the admission of queued jobs, Reconcile and Cancel start or stop.
    state_machine_arn: str
    #: The batches table and BatchQuietSeconds (dropcut.model.batches).
    batches: BatchSettings

    @property
    def layout(self) -> BucketLayout:
        """Where inputs, outputs and reports live in the media bucket."""
        return BucketLayout(self.bucket, self.inbox_prefix, self.outbox_prefix, self.errors_prefix)

    @classmethod
    def from_env(cls) -> Settings:
        return cls(
            bucket=os.environ["MEDIA_BUCKET"],
            jobs_table=os.environ["JOBS_TABLE"],
            inbox_prefix=os.environ["INBOX_PREFIX"],
            outbox_prefix=os.environ["OUTBOX_PREFIX"],
            errors_prefix=os.environ["ERRORS_PREFIX"],
            provider=os.environ["PROVIDER"],
            provider_base_url=os.environ["PROVIDER_BASE_URL"],
            provider_model=os.environ["PROVIDER_MODEL"] or None,
            provider_key_secret_arn=os.environ["PROVIDER_API_KEY_SECRET_ARN"],
            allow_insecure_urls=_flag("ALLOW_INSECURE_URLS"),
            slots=SlotSettings(
                table=os.environ["SLOTS_TABLE"],
                limit=_int("PROVIDER_CONCURRENCY"),
                max_wait_seconds=_int("QUEUE_WAIT_SECONDS"),
                lost_task_hold_seconds=_int("JOB_DEADLINE_SECONDS"),
                daily_credit_budget=float(os.environ["DAILY_CREDIT_BUDGET"]),
                credits_per_billed_second=float(os.environ["CREDITS_PER_BILLED_SECOND"]),
            ),
            state_machine_arn=os.environ["STATE_MACHINE_ARN"],
            batches=BatchSettings(
                table=os.environ["BATCHES_TABLE"],
                quiet_seconds=_int("BATCH_QUIET_SECONDS"),
            ),
        )


@dataclass(frozen=True)
class JobEventSettings:
    """Where job events go and whose they are (dropcut.aws.job_events)."""

    #: The stack name (POWERTOOLS_SERVICE_NAME, also the metrics' service dimension).
    service: str

    @classmethod
    def from_env(cls) -> JobEventSettings:
        return cls(service=os.environ["POWERTOOLS_SERVICE_NAME"])


@dataclass(frozen=True)
class CallbackSettings:
    """Callback mode: whether it is on, where the webhook is reached, which secret signs."""

    enabled: bool
    base_url: str
    secret_arn: str

    @classmethod
    def from_env(cls) -> CallbackSettings:
        mode = os.environ["CALLBACKS"]
        if mode not in ("auto", "off"):
            raise ValueError(f"CALLBACKS must be 'auto' or 'off', not {mode!r}")
        return cls(
            enabled=mode == "auto",
            base_url=os.environ["CALLBACK_BASE_URL"],
            secret_arn=os.environ["CALLBACK_SECRET_ARN"],
        )


@dataclass(frozen=True)
class PlanSettings:
    """How Submit plans a video (dropcut.model.plan.plan_video)."""

    #: MaxPartsPerJob: the most parts a long video is split into (more: refused).
    max_parts: int = DEFAULT_MAX_PARTS
    #: NormalizeInputs: auto (True) converts out-of-spec videos, off (False) refuses them.
    normalize: bool = True


@dataclass(frozen=True)
class SubmitSettings:
    #: The prompt of a video that has no manifest, metadata prompt or preset ("" = wait for one).
    default_prompt: str
    plan: PlanSettings

    @classmethod
    def from_env(cls) -> SubmitSettings:
        mode = os.environ["NORMALIZE_INPUTS"]
        if mode not in ("auto", "off"):
            raise ValueError(f"NORMALIZE_INPUTS must be 'auto' or 'off', not {mode!r}")
        return cls(
            os.environ["DEFAULT_PROMPT"],
            PlanSettings(max_parts=_int("MAX_PARTS_PER_JOB"), normalize=mode == "auto"),
        )


@dataclass(frozen=True)
class StartTaskSettings:
    presign_seconds: int
    poll: PollPlan
    callbacks: CallbackSettings

    @classmethod
    def from_env(cls) -> StartTaskSettings:
        return cls(
            presign_seconds=_int("PRESIGN_EXPIRY_SECONDS"),
            poll=PollPlan(
                initial_seconds=_int("POLL_INITIAL_SECONDS"),
                max_seconds=_int("POLL_MAX_SECONDS"),
                growth_percent=_int("POLL_GROWTH_PERCENT"),
                deadline_seconds=_int("JOB_DEADLINE_SECONDS"),
                callback_silence_seconds=_int("CALLBACK_SILENCE_SECONDS"),
            ),
            callbacks=CallbackSettings.from_env(),
        )


@dataclass(frozen=True)
class FinalizeSettings:
    #: MaxResultBytes: the largest result Finalize copies.
    max_result_bytes: int
    #: ResultCopyWindowSeconds: how long a ready result's copy is retried (s).
    copy_window_seconds: int

    @classmethod
    def from_env(cls) -> FinalizeSettings:
        return cls(
            max_result_bytes=_int("MAX_RESULT_BYTES"),
            copy_window_seconds=_int("RESULT_COPY_WINDOW_SECONDS"),
        )


@dataclass(frozen=True)
class CheckStatusSettings:
    poll: PollPlan
    #: TaskRetries: how many new tasks a part whose provider task failed gets.
    task_retries: int

    @classmethod
    def from_env(cls) -> CheckStatusSettings:
        return cls(
            poll=PollPlan(
                initial_seconds=1,  # only StartTask uses the initial wait
                max_seconds=_int("POLL_MAX_SECONDS"),
                growth_percent=_int("POLL_GROWTH_PERCENT"),
                callback_silence_seconds=_int("CALLBACK_SILENCE_SECONDS"),
            ),
            task_retries=_int("TASK_RETRIES"),
        )


@dataclass(frozen=True)
class ReconcileSettings:
    #: How long a video without options waits for its manifest before it ends with a report.
    manifest_wait_seconds: int
    #: The inbox queue and its dead-letter queue (dropcut.services.dead_letters).
    inbox_queue_url: str
    inbox_dead_letter_queue_url: str

    @classmethod
    def from_env(cls) -> ReconcileSettings:
        return cls(
            _int("MANIFEST_WAIT_SECONDS"),
            os.environ["INBOX_QUEUE_URL"],
            os.environ["INBOX_DEAD_LETTER_QUEUE_URL"],
        )


@dataclass(frozen=True)
class NotifySettings:
    #: The NotificationEmail topic (dropcut.steps.notify).
    topic_arn: str

    @classmethod
    def from_env(cls) -> NotifySettings:
        return cls(os.environ["NOTIFICATION_TOPIC_ARN"])


@dataclass(frozen=True)
class ActorSettings:
    """Who may cancel and retry which jobs (dropcut.services.actors)."""

    #: ActorPrefixes, as the template passes it (JSON; parsed by dropcut.services.actors.ActorRules).
    actor_prefixes: str

    @classmethod
    def from_env(cls) -> ActorSettings:
        return cls(os.environ["ACTOR_PREFIXES"])


@dataclass(frozen=True)
class WebhookSettings:
    callback_secret_arn: str

    @classmethod
    def from_env(cls) -> WebhookSettings:
        return cls(os.environ["CALLBACK_SECRET_ARN"])
