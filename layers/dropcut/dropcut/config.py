"""Settings read from the function's environment. Required values fail fast with a KeyError."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

import httpx
from pydantic import SecretStr

from dropcut.callbacks import CallbackSigner
from dropcut.providers import Provider, ProviderSettings, make_provider
from dropcut.providers.http import make_client
from dropcut.slots import SlotPool


def _flag(name: str) -> bool:
    return os.environ[name].strip().lower() == "true"


@dataclass(frozen=True)
class Settings:
    """What every function needs to know about its stack."""

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
        )


@cache
def http_client() -> httpx.Client:
    """One httpx client per process, reused across invocations (connection pooling)."""
    return make_client()


def provider_from_settings(
    settings: Settings, api_key: str, name: str | None = None, **overrides: Any
) -> Provider:
    """The adapter for `name` (default: the stack's provider) with the key from Secrets Manager.

    `overrides` adjust ProviderSettings (the webhook uses shorter timeouts: it must answer fast).
    """
    provider_settings = ProviderSettings(
        base_url=settings.provider_base_url,
        api_key=SecretStr(api_key),
        model=settings.provider_model,
        allow_insecure_urls=settings.allow_insecure_urls,
        **overrides,
    )
    return make_provider(name or settings.provider, provider_settings, http_client())


def fetch_secret(secret_arn: str, what: str) -> str:
    """A secret's SecretString from Secrets Manager, cached for 5 minutes by Powertools Parameters."""
    from aws_lambda_powertools.utilities import parameters

    value = parameters.get_secret(secret_arn, max_age=300)
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"the {what} secret is empty; put the value in its SecretString")
    return value.strip()


def fetch_api_key(secret_arn: str) -> str:
    return fetch_secret(secret_arn, "provider API key")


def provider_factory(settings: Settings, **overrides: Any) -> Callable[[str], Provider]:
    """`provider_for(name)`: the named adapter, keyed from Secrets Manager at call time."""

    def provider_for(name: str) -> Provider:
        api_key = fetch_api_key(settings.provider_key_secret_arn)
        return provider_from_settings(settings, api_key, name, **overrides)

    return provider_for


@dataclass(frozen=True)
class CallbackSettings:
    """Callback mode: where the webhook is reached and which secret makes its capabilities."""

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

    def url_for(self, job_id: str) -> str:
        return callback_signer(self.secret_arn, self.base_url).url_for(job_id)


def callback_signer(secret_arn: str, base_url: str = "") -> CallbackSigner:
    """A signer with the current secret (fetched through the Parameters cache).

    The webhook only verifies, so it needs no base URL.
    """
    secret = fetch_secret(secret_arn, "callback signing")
    return CallbackSigner(base_url=base_url, secret=SecretStr(secret))


@dataclass(frozen=True)
class SlotSettings:
    """Provider concurrency: the slots table and how many tasks the provider account may run."""

    table: str
    limit: int
    #: How long a job may wait in line for a slot before it ends with a report.
    max_wait_seconds: int
    #: How long a slot stays held for a task we lost track of (it may still be running).
    lost_task_hold_seconds: int

    @classmethod
    def from_env(cls) -> SlotSettings:
        return cls(
            table=os.environ["SLOTS_TABLE"],
            limit=int(os.environ["PROVIDER_CONCURRENCY"]),
            max_wait_seconds=int(os.environ["QUEUE_WAIT_SECONDS"]),
            lost_task_hold_seconds=int(os.environ["JOB_DEADLINE_SECONDS"]),
        )

    def pool(self, settings: Settings, dynamodb: Any, sfn: Any) -> SlotPool:
        """The slot pool of this stack's provider account."""
        return SlotPool(dynamodb.Table(self.table), sfn, settings.provider, self.limit)
