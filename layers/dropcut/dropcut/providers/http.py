"""HTTP plumbing shared by the adapters: one call, error mapping, JSON parsing, bounded read retries."""

from __future__ import annotations

import random
import re
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from dropcut.bounded_json import BoundedJsonError, parse_bounded_json
from dropcut.errors import (
    ProviderAnswerLost,
    ProviderBadResponse,
    ProviderError,
    ProviderOutOfCredits,
    ProviderRejected,
    ProviderThrottled,
    ProviderUnauthorized,
    ProviderUnavailable,
)

if TYPE_CHECKING:
    # Imported where a client is built and used (make_client, send): a function that only reads
    # the adapters' documented limits never imports httpx.
    import httpx

T = TypeVar("T")
SNIPPET_BYTES = 200
#: Largest provider answer parsed (task and error bodies are a few KB).
MAX_ANSWER_BYTES = 1024 * 1024


def make_client(connect_timeout: float = 5.0, read_timeout: float = 30.0) -> httpx.Client:
    """An httpx client with explicit connect/read/write/pool timeouts; create once per process."""
    import httpx

    timeout = httpx.Timeout(read_timeout, connect=connect_timeout)
    return httpx.Client(timeout=timeout, follow_redirects=False)


_URL_QUERY = re.compile(r"(https?://[^\s?\"'<>]+)\?[^\s\"'<>]*")


def redact_urls(text: str) -> str:
    """Drop URL query strings: presigned URLs carry their signature there."""
    return _URL_QUERY.sub(r"\1?<redacted>", text)


def snippet(body: bytes | str) -> str:
    """The first bytes of a body, for error messages (never a whole page, never a signature)."""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    text = redact_urls(" ".join(text.split()))
    return text[:SNIPPET_BYTES] + ("..." if len(text) > SNIPPET_BYTES else "")


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def _error_fields(response: httpx.Response) -> tuple[str | None, str]:
    """(code, message) from either provider's error body, falling back to the body's first bytes."""
    try:
        body = parse_bounded_json(response.content, max_bytes=MAX_ANSWER_BYTES)
    except BoundedJsonError:
        return None, snippet(response.content)
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict):
            code = error.get("code", error.get("type"))
            message = error.get("message") or error.get("name") or snippet(response.content)
            return (None if code is None else str(code)), redact_urls(str(message))
        message = body.get("message")
        if isinstance(message, str | list):
            return None, redact_urls(str(message))
    return None, snippet(response.content)


def raise_for_status(provider: str, response: httpx.Response) -> None:
    """Map an HTTP error answer onto the named exception the state machine matches."""
    status = response.status_code
    if status < 400:
        return
    code, message = _error_fields(response)
    text = f"{provider} answered HTTP {status}: {message}"
    if status == 429:
        raise ProviderThrottled(text, retry_after=_retry_after(response), status=status, code=code)
    if status == 401:
        raise ProviderUnauthorized(text, status=status, code=code)
    if status == 402:
        raise ProviderOutOfCredits(text, status=status, code=code)
    if status >= 500 or status == 408:
        raise ProviderUnavailable(text, status=status, code=code)
    raise ProviderRejected(text, status=status, code=code)


def _not_sent() -> tuple[type[Exception], ...]:
    import httpx

    return (
        httpx.ConnectError,
        httpx.ConnectTimeout,
        httpx.PoolTimeout,
        httpx.ProxyError,
        httpx.UnsupportedProtocol,
    )


def send(
    provider: str, client: httpx.Client, method: str, url: str, **kwargs: Any
) -> dict[str, Any]:
    """One HTTP call; returns the JSON object body or raises a named ProviderError."""
    import httpx  # already imported by whoever built `client` (make_client)

    try:
        response = client.request(method, url, **kwargs)
    except _not_sent() as exc:
        # No connection was made: the request never left (dropcut.providers.base.create_refused).
        raise ProviderUnavailable(
            f"{provider} could not be reached ({type(exc).__name__})", delivered=False
        ) from None
    except httpx.TransportError as exc:
        # Read timeouts, resets, write errors: the request (or part of it) went out; the
        # provider may have acted on it.
        raise ProviderAnswerLost(f"{provider} sent no answer ({type(exc).__name__})") from None
    raise_for_status(provider, response)
    try:
        body = parse_bounded_json(response.content, max_bytes=MAX_ANSWER_BYTES)
    except BoundedJsonError as exc:
        raise ProviderBadResponse(
            f"{provider} answered HTTP {response.status_code} with a body that is not usable "
            f"JSON: {exc}: {snippet(response.content)!r}",
            status=response.status_code,
        ) from None
    if not isinstance(body, dict):
        raise ProviderBadResponse(
            f"{provider} answered with JSON that is not an object: {snippet(response.content)!r}",
            status=response.status_code,
        )
    return body


def retry_read[T](
    call: Callable[[], T],
    *,
    attempts: int,
    base: float,
    cap: float,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Run an idempotent read, retrying transient failures with full-jitter exponential backoff."""
    for attempt in range(1, attempts + 1):
        try:
            return call()
        except (ProviderUnavailable, ProviderBadResponse, ProviderThrottled) as exc:
            if attempt == attempts:
                raise
            delay = random.uniform(0, min(cap, base * 2 ** (attempt - 1)))
            if isinstance(exc, ProviderThrottled) and exc.retry_after is not None:
                if exc.retry_after > cap:
                    raise  # a long pause is the state machine's job, not a Lambda's
                delay = max(delay, exc.retry_after)
            sleep(delay)
    raise AssertionError("unreachable")


def require(provider: str, body: dict[str, Any], key: str, kind: type) -> Any:
    """body[key], checked to be of `kind`; a ProviderBadResponse naming the field otherwise."""
    value = body.get(key)
    if not isinstance(value, kind):
        raise ProviderBadResponse(
            f"{provider} answered without a valid {key!r}: {snippet(str(body))!r}"
        )
    return value


__all__ = ["ProviderError", "make_client", "raise_for_status", "require", "retry_read", "send"]
