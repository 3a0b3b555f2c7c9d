"""Make moto 5.2.5's S3 -> Lambda notifications look and behave like S3's.

What moto does (checked in `moto/s3/notifications.py`, server mode):
- the record has `eventName`, `bucket.name/arn`, `object.key/size/eTag`, but no `versionId`,
  `sequencer`, `userIdentity`, `requestParameters`, `responseElements`;
- the key is `quote_plus(key)`, so `/` arrives as `%2F` (S3 keeps `/`: `inbox/my+clip.mp4`);
- the function runs synchronously inside `PutObject` and any error is swallowed.

`install()` patches two module functions (resolved at call time by `send_event`):
- `_get_s3_event`: adds the missing fields (versionId from the moto key of a versioned bucket),
  and encodes the key as S3 does (`quote_plus` keeping `/`); `unquote_plus` decodes both.
- `_invoke_awslambda`: with an `AsyncInvoker` set, the invoke is queued and runs in a thread
  after PutObject returned, like Lambda's asynchronous invocation, with retries on function
  errors (Lambda's default is 2 retries, spaced minutes apart; locally seconds).
"""

from __future__ import annotations

import itertools
import json
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote_plus

LOG = logging.getLogger("devstack.s3")

_SEQUENCER = itertools.count(1)
_ORIGINALS: dict[str, Any] = {}


@dataclass
class AsyncInvocation:
    function_arn: str
    event: dict[str, Any]
    attempts: int = 0
    payload: str | None = None
    errored: bool | None = None
    done: threading.Event = field(default_factory=threading.Event)


class AsyncInvoker:
    """Lambda's event (asynchronous) invocation for S3 notifications: queued, retried."""

    def __init__(
        self,
        invoke: Callable[[str, dict[str, Any]], tuple[str, bool]],
        *,
        max_concurrency: int = 16,
        retry_delays: tuple[float, ...] = (1.0, 2.0),
    ) -> None:
        self._invoke = invoke
        self._executor = ThreadPoolExecutor(max_concurrency, thread_name_prefix="s3-event")
        self._retry_delays = retry_delays
        self._lock = threading.Lock()
        self._pending: set[Future[None]] = set()
        self.invocations: list[AsyncInvocation] = []
        self._closed = False

    def submit(self, function_arn: str, event: dict[str, Any]) -> None:
        item = AsyncInvocation(function_arn, event)
        with self._lock:
            if self._closed:
                return
            self.invocations.append(item)
            future = self._executor.submit(self._run, item)
            self._pending.add(future)
        future.add_done_callback(self._forget)

    def _forget(self, future: Future[None]) -> None:
        with self._lock:
            self._pending.discard(future)

    def _run(self, item: AsyncInvocation) -> None:
        try:
            for delay in (0.0, *self._retry_delays):
                if self._closed:
                    return
                time.sleep(delay)
                item.attempts += 1
                item.payload, item.errored = self._invoke(item.function_arn, item.event)
                if not item.errored:
                    return
                LOG.warning(
                    "S3 event -> %s failed (attempt %d): %s",
                    item.function_arn.rsplit(":", 1)[-1],
                    item.attempts,
                    item.payload,
                )
        except Exception:
            LOG.exception("S3 event -> %s: invoke failed", item.function_arn)
        finally:
            item.done.set()

    def pending(self) -> int:
        with self._lock:
            return len(self._pending)

    def drain(self, timeout: float = 30.0) -> None:
        """Wait until every queued S3 event has been handled (retries included)."""
        deadline = time.monotonic() + timeout
        while self.pending():
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.pending()} S3 event invocation(s) still running")
            time.sleep(0.02)

    def close(self) -> None:
        with self._lock:
            self._closed = True
        self._executor.shutdown(wait=True, cancel_futures=True)


_ASYNC_INVOKER: AsyncInvoker | None = None


def set_async_invoker(invoker: AsyncInvoker | None) -> None:
    global _ASYNC_INVOKER
    _ASYNC_INVOKER = invoker


def s3_event_key(key: str) -> str:
    """The object key as S3 writes it in event notifications (form-encoded, `/` kept)."""
    return quote_plus(key, safe="/")


def _get_s3_event(event_name: str, bucket: Any, key: Any, notification_id: str) -> Any:
    event = _ORIGINALS["_get_s3_event"](event_name, bucket, key, notification_id)
    for record in event["Records"]:
        obj = record["s3"]["object"]
        obj["key"] = s3_event_key(key.name)
        if getattr(bucket, "is_versioned", False) and getattr(key, "version_id", None):
            obj["versionId"] = key.version_id
        obj["sequencer"] = f"{int(time.time() * 1000):012X}{next(_SEQUENCER):06X}"
        record.setdefault("userIdentity", {"principalId": "AWS:AIDALOCALDEVSTACK"})
        record.setdefault("requestParameters", {"sourceIPAddress": "127.0.0.1"})
        record.setdefault(
            "responseElements",
            {"x-amz-request-id": "DEVSTACK", "x-amz-id-2": "devstack/local"},
        )
        record["s3"].setdefault("bucket", {}).setdefault(
            "ownerIdentity", {"principalId": "AIDALOCALDEVSTACK"}
        )
    return event


def _invoke_awslambda(account_id: str, event_body: Any, fn_arn: str, region_name: str) -> None:
    invoker = _ASYNC_INVOKER
    if invoker is None:
        _ORIGINALS["_invoke_awslambda"](account_id, event_body, fn_arn, region_name)
        return
    invoker.submit(fn_arn, json.loads(json.dumps(event_body)))


def install() -> None:
    """Patch moto's S3 notification module (idempotent)."""
    from moto.s3 import notifications

    if "_get_s3_event" not in _ORIGINALS:
        _ORIGINALS["_get_s3_event"] = notifications._get_s3_event
        _ORIGINALS["_invoke_awslambda"] = notifications._invoke_awslambda
    notifications._get_s3_event = _get_s3_event
    notifications._invoke_awslambda = _invoke_awslambda
