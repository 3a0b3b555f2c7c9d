"""Wiring: AWS clients, secrets, provider adapters, the callback signer and the slot pool, built
from Settings. Only the handlers (functions/*/app.py) import this module: everything below it
receives its dependencies (the `*Deps` objects of dropcut.steps) instead of building them.

Everything here is built once per Lambda execution environment (module scope of a handler) and
reused across invocations; secrets are re-read through Powertools Parameters' 5-minute cache.

Each factory imports what it builds: a function imports (and pays at its cold start) only the
clients, providers and domain objects it asks for (httpx and the provider adapters only where a
provider is called).
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, Any

import boto3

from dropcut.settings import (
    ActorSettings,
    CallbackSettings,
    JobEventSettings,
    ReconcileSettings,
    Settings,
    SubmitSettings,
)

if TYPE_CHECKING:
    import httpx
    from mypy_boto3_dynamodb import DynamoDBServiceResource
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_stepfunctions import SFNClient

    from dropcut.aws.breaker import Breaker
    from dropcut.aws.executions import Executions
    from dropcut.aws.inbox_queue import InboxQueues
    from dropcut.aws.job_events import JobEvents
    from dropcut.aws.job_store import JobStore
    from dropcut.aws.ledger import BudgetLedger
    from dropcut.aws.pace import PaceBook
    from dropcut.aws.slots import SlotPool
    from dropcut.model.budget import DailyBudget
    from dropcut.model.callbacks import CallbackSigner, CallbackUrlFor
    from dropcut.providers import Provider, ProviderFor
    from dropcut.services.actors import ActorDeps, IamReader
    from dropcut.services.batches import Batches
    from dropcut.steps.submit import SubmitDeps

#: How long a secret read from Secrets Manager is reused before it is read again (s).
SECRET_MAX_AGE_SECONDS = 300


@cache
def s3_client() -> S3Client:
    return boto3.client("s3")


@cache
def presigning_s3_client() -> S3Client:
    """An S3 client that signs URLs with SigV4 (what S3 requires; allows up to 7 days)."""
    from botocore.config import Config

    return boto3.client("s3", config=Config(signature_version="s3v4"))


@cache
def sfn_client() -> SFNClient:
    return boto3.client("stepfunctions")


@cache
def dynamodb() -> DynamoDBServiceResource:
    return boto3.resource("dynamodb")


@cache
def http_client() -> httpx.Client:
    """One httpx client per process, reused across invocations (connection pooling), traced by
    X-Ray like the AWS clients (the patch must precede the client: it swaps httpx.Client)."""
    from dropcut.observability import tracer
    from dropcut.providers.http import make_client

    tracer.patch(("httpx",))
    return make_client()


@cache
def events_client() -> Any:
    """EventBridge, for job events: few attempts, short timeouts (an event is best effort and
    must not hold a step up; PutEvents' own SDK retries are the only ones)."""
    from botocore.config import Config

    config = Config(
        retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=2, read_timeout=5
    )
    return boto3.client("events", config=config)


@cache
def sns_client() -> Any:
    """SNS, for the paced per-job emails (dropcut.steps.notify)."""
    return boto3.client("sns")


def job_events(settings: Settings, events: JobEventSettings) -> JobEvents:
    """The job event publisher of this stack (PutEvents on the default bus), which counts each
    job ending in the job's batch (and completes the batch on its last)."""
    from dropcut.aws.job_events import JobEvents

    return JobEvents(events_client(), events.service, on_ending=batches(settings, events).job_ended)


def batches(settings: Settings, events: JobEventSettings) -> Batches:
    """This stack's batches: joins, ending counts, summaries and `Batch Completed` events."""
    from dropcut.aws.batch_store import BatchStore
    from dropcut.aws.job_events import JobEvents
    from dropcut.services.batches import Batches

    return Batches(
        store=BatchStore(dynamodb().Table(settings.batches.table)),
        jobs=job_store(settings),
        s3=s3_client(),
        layout=settings.layout,
        events=JobEvents(events_client(), events.service),
        quiet_seconds=settings.batches.quiet_seconds,
    )


def inbox_queues(reconcile: ReconcileSettings) -> InboxQueues:
    """The inbox queue and its dead-letter queue (the reconciler sends dead letters back)."""
    from dropcut.aws.inbox_queue import InboxQueues

    return InboxQueues(
        boto3.client("sqs"), reconcile.inbox_queue_url, reconcile.inbox_dead_letter_queue_url
    )


def job_store(settings: Settings) -> JobStore:
    from dropcut.aws.job_store import JobStore

    return JobStore(dynamodb().Table(settings.jobs_table))


def pace_book(settings: Settings) -> PaceBook:
    """Recent provider task durations (in the jobs table)."""
    from dropcut.aws.pace import PaceBook

    return PaceBook(dynamodb().Table(settings.jobs_table))


def daily_budget(settings: Settings) -> DailyBudget:
    """The stack's daily credit budget (DailyCreditBudget, CreditsPerBilledSecond)."""
    from dropcut.model.budget import DailyBudget

    slots = settings.slots
    return DailyBudget(slots.daily_credit_budget, slots.credits_per_billed_second)


def slot_pool(settings: Settings) -> SlotPool:
    """The slot pool of this stack's provider account."""
    from dropcut.aws.backlog import Backlog
    from dropcut.aws.slots import Admission, SlotPool

    slots = settings.slots
    table = dynamodb().Table(slots.table)
    admission = Admission(
        Backlog(table, settings.provider),
        job_store(settings),
        executions(settings),
        settings.layout,
    )
    return SlotPool(
        table, sfn_client(), settings.provider, slots.limit, daily_budget(settings), admission
    )


def breaker(settings: Settings) -> Breaker:
    """The provider breaker of this stack's provider account (dropcut.aws.breaker)."""
    from dropcut.aws.breaker import Breaker

    return Breaker(dynamodb().Table(settings.slots.table), settings.provider)


def budget_ledger(settings: Settings) -> BudgetLedger:
    """The daily credit budget's ledger of this stack's provider account, alone: no slot
    hand-overs, so no Step Functions client."""
    from dropcut.aws.ledger import BudgetLedger

    table = dynamodb().Table(settings.slots.table)
    return BudgetLedger(table, settings.provider, daily_budget(settings))


@cache
def iam_client() -> IamReader:
    """IAM, for the actors rule's "writers" (GetRole, SimulatePrincipalPolicy)."""
    client: IamReader = boto3.client("iam")
    return client


def actor_deps(settings: Settings, actors: ActorSettings) -> ActorDeps:
    """Who may cancel and retry which jobs (dropcut.services.actors): ActorPrefixes, parsed now (a bad
    value fails the cold start), and IAM, built on the first "writers" question."""
    from dropcut.services.actors import ActorDeps, ActorPolicy, ActorRules

    rules = ActorRules.parse(actors.actor_prefixes, settings.inbox_prefix)
    policy = ActorPolicy(rules=rules, bucket=settings.bucket, iam=iam_client)
    return ActorDeps(policy=policy, store=job_store(settings))


def executions(settings: Settings) -> Executions:
    """The job state machine's executions (named by job id)."""
    from dropcut.aws.executions import Executions

    return Executions(sfn_client(), settings.state_machine_arn)


def fetch_secret(secret_arn: str, what: str) -> str:
    """A secret's SecretString from Secrets Manager, cached by Powertools Parameters.

    Raises ValueError when the secret is empty (the operator has not set it).
    """
    from aws_lambda_powertools.utilities import parameters

    value = parameters.get_secret(secret_arn, max_age=SECRET_MAX_AGE_SECONDS)
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"the {what} secret is empty; put the value in its SecretString")
    return value.strip()


def provider_factory(settings: Settings, **overrides: Any) -> ProviderFor:
    """`provider_for(name)`: the named adapter, keyed from Secrets Manager at call time.

    `overrides` adjust ProviderSettings (timeouts: each step sets what fits its Lambda timeout).
    """
    from pydantic import SecretStr

    from dropcut.providers import ProviderSettings, make_provider

    client = http_client()  # built here, at init, with the step's other clients

    def provider_for(name: str) -> Provider:
        api_key = fetch_secret(settings.provider_key_secret_arn, "provider API key")
        provider_settings = ProviderSettings(
            base_url=settings.provider_base_url,
            api_key=SecretStr(api_key),
            model=settings.provider_model,
            allow_insecure_urls=settings.allow_insecure_urls,
            **overrides,
        )
        return make_provider(name, provider_settings, client)

    return provider_for


def callback_signer(secret_arn: str, base_url: str = "") -> CallbackSigner:
    """A signer with the current secret (the webhook only verifies, so it needs no base URL)."""
    from pydantic import SecretStr

    from dropcut.model.callbacks import CallbackSigner

    secret = fetch_secret(secret_arn, "callback signing")
    return CallbackSigner(base_url=base_url, secret=SecretStr(secret))


def callback_url_factory(callbacks: CallbackSettings) -> CallbackUrlFor | None:
    """`url_for(part_id)` when callbacks are on (the signer read at call time), else None."""
    if not callbacks.enabled:
        return None

    def url_for(part_id: str) -> str:
        return callback_signer(callbacks.secret_arn, callbacks.base_url).url_for(part_id)

    return url_for


def submit_deps(settings: Settings, submit: SubmitSettings) -> SubmitDeps:
    """Submit's dependencies, for Submit and for Retry (which runs Submit's checks and start):
    built here once, so the two cannot drift (a retry planned with defaults did)."""
    from dropcut.public_urls import system_resolver
    from dropcut.steps.submit import SubmitDeps

    return SubmitDeps(
        s3=s3_client(),
        store=job_store(settings),
        executions=executions(settings),
        slots=slot_pool(settings),
        settings=settings,
        default_prompt=submit.default_prompt,
        resolve=system_resolver,
        events=job_events(settings, JobEventSettings.from_env()),
        plan=submit.plan,
        batches=batches(settings, JobEventSettings.from_env()),
    )
