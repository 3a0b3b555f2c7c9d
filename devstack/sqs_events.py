"""Lambda's SQS event source mapping, emulated: one `SqsPoller` per SAM `Type: SQS` event.

moto 5.2.5 has an SQS -> Lambda mapping of its own, but it runs inside SendMessage (the sender
waits for the function), invokes once per message, and ignores partial batch responses. Like
Lambda's pollers, `SqsPoller` instead polls the queue from a thread:

- receives up to `BatchSize` messages with `AttributeNames=["All"]` and
  `MessageAttributeNames=["All"]`, gathering for up to `MaximumBatchingWindowInSeconds` after the
  first message arrived (default 0: one receive; an empty queue is long-polled for
  `poll_wait_seconds` so the thread does not spin). The queue's own VisibilityTimeout applies;
- runs at most `ScalingConfig.MaximumConcurrency` batches at once (default: the function's
  worker count); a batch is received only when a slot is free, so the rest stays in the queue;
- invokes the function synchronously with Lambda's SQS event (`lambda_sqs_event`) through moto's
  Lambda backend (so the devstack hook runs the real handler in a warm worker);
- a function error deletes nothing: the whole batch comes back after the visibility timeout.
  Success deletes the batch, or with `FunctionResponseTypes: [ReportBatchItemFailures]` every
  message not listed in `{"batchItemFailures": [{"itemIdentifier": messageId}]}` (a null or
  empty list: all succeeded; an empty or unknown itemIdentifier, or a response that is not such
  an object: the whole batch failed, as Lambda treats them);
- redrive to the dead-letter queue is SQS's (moto moves a message when it is received again after
  `maxReceiveCount` receives).

`install()` makes moto's queue updates thread-safe (see `_serialize_queue_updates`): concurrent
DeleteMessage calls, which several batches in flight make, otherwise lose each other's deletes.
"""

from __future__ import annotations

import base64
import collections
import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

LOG = logging.getLogger("devstack.sqs")

#: What SAM/Lambda accept (CreateEventSourceMapping) for an SQS source.
MAX_BATCH_SIZE_STANDARD = 10_000
MAX_BATCH_SIZE_FIFO = 10
MAX_BATCHING_WINDOW_SECONDS = 300
MIN_MAXIMUM_CONCURRENCY = 2
MAX_MAXIMUM_CONCURRENCY = 1000
REPORT_BATCH_ITEM_FAILURES = "ReportBatchItemFailures"

Invoke = Callable[[str, dict[str, Any]], tuple[str, bool]]


@dataclass(frozen=True)
class SqsEventSource:
    """One SQS event source mapping, resolved from the template."""

    function_arn: str
    queue_arn: str
    queue_url: str
    batch_size: int = 10
    batching_window: float = 0.0
    report_batch_item_failures: bool = False
    max_concurrency: int = 4
    enabled: bool = True

    @property
    def fifo(self) -> bool:
        return self.queue_arn.endswith(".fifo")

    def validate(self) -> None:
        """Raise ValueError for what CreateEventSourceMapping rejects."""
        limit = MAX_BATCH_SIZE_FIFO if self.fifo else MAX_BATCH_SIZE_STANDARD
        if not 1 <= self.batch_size <= limit:
            raise ValueError(f"BatchSize {self.batch_size} is not within 1..{limit}")
        if not 0 <= self.batching_window <= MAX_BATCHING_WINDOW_SECONDS:
            raise ValueError(
                f"MaximumBatchingWindowInSeconds {self.batching_window:g} is not within "
                f"0..{MAX_BATCHING_WINDOW_SECONDS}"
            )
        if self.batch_size > 10 and self.batching_window < 1:
            raise ValueError(
                "a BatchSize above 10 needs MaximumBatchingWindowInSeconds of at least 1"
            )
        if self.max_concurrency < 1:
            raise ValueError(f"max_concurrency {self.max_concurrency} is below 1")


def check_maximum_concurrency(value: int) -> None:
    """Raise ValueError for a ScalingConfig.MaximumConcurrency Lambda rejects (the default when
    there is none is the function's worker count, which may be lower)."""
    if not MIN_MAXIMUM_CONCURRENCY <= value <= MAX_MAXIMUM_CONCURRENCY:
        raise ValueError(
            f"ScalingConfig.MaximumConcurrency {value} is not within "
            f"{MIN_MAXIMUM_CONCURRENCY}..{MAX_MAXIMUM_CONCURRENCY}"
        )


@dataclass
class BatchResult:
    """What happened to one batch (`SqsPoller.results`)."""

    message_ids: list[str]
    receive_counts: list[int]
    errored: bool = False
    #: Messages left in the queue: the reported item failures, or the whole batch after a
    #: function error or an invalid partial batch response.
    failed_ids: list[str] = field(default_factory=list)
    invalid_response: str | None = None
    deleted: int = 0
    payload: str = ""
    started: float = 0.0
    ended: float = 0.0


def lambda_sqs_event(messages: list[dict[str, Any]], queue_arn: str, region: str) -> dict[str, Any]:
    """Lambda's SQS event for messages as ReceiveMessage (boto3) returns them."""
    records = []
    for message in messages:
        record: dict[str, Any] = {
            "messageId": message["MessageId"],
            "receiptHandle": message["ReceiptHandle"],
            "body": message.get("Body", ""),
            "attributes": dict(message.get("Attributes") or {}),
            "messageAttributes": {
                name: _lambda_message_attribute(value)
                for name, value in (message.get("MessageAttributes") or {}).items()
            },
            "md5OfBody": message.get("MD5OfBody", ""),
            "eventSource": "aws:sqs",
            "eventSourceARN": queue_arn,
            "awsRegion": region,
        }
        if message.get("MD5OfMessageAttributes"):
            record["md5OfMessageAttributes"] = message["MD5OfMessageAttributes"]
        records.append(record)
    return {"Records": records}


def _b64(value: bytes | str) -> str:
    raw = value.encode("utf-8") if isinstance(value, str) else value
    return base64.b64encode(raw).decode("ascii")


def _lambda_message_attribute(value: dict[str, Any]) -> dict[str, Any]:
    # SQS API: StringValue/BinaryValue (bytes in boto3)/...; Lambda: camelCase, binary as base64.
    attribute: dict[str, Any] = {}
    if value.get("StringValue") is not None:
        attribute["stringValue"] = value["StringValue"]
    if value.get("BinaryValue") is not None:
        attribute["binaryValue"] = _b64(value["BinaryValue"])
    attribute["stringListValues"] = list(value.get("StringListValues") or [])
    attribute["binaryListValues"] = [_b64(v) for v in value.get("BinaryListValues") or []]
    attribute["dataType"] = value.get("DataType", "String")
    return attribute


def parse_batch_response(payload: str, message_ids: list[str]) -> tuple[list[str], str | None]:
    """The failed message ids of a partial batch response, or (all ids, why) when Lambda would
    treat the batch as a complete failure."""
    try:
        response = json.loads(payload) if payload.strip() else None
    except json.JSONDecodeError:
        return list(message_ids), "the response is not JSON"
    if response is None:
        return [], None  # a null EventResponse
    if not isinstance(response, dict):
        return list(message_ids), f"the response is a JSON {type(response).__name__}"
    failures = response.get("batchItemFailures")
    if failures is None:
        return [], None  # an empty EventResponse, or a null list
    if not isinstance(failures, list):
        return list(message_ids), "batchItemFailures is not a list"
    known = set(message_ids)
    failed: list[str] = []
    for item in failures:
        identifier = item.get("itemIdentifier") if isinstance(item, dict) else None
        if not isinstance(identifier, str) or not identifier:
            return list(message_ids), f"invalid batch item failure {item!r}"
        if identifier not in known:
            return list(message_ids), f"itemIdentifier {identifier!r} is not in the batch"
        if identifier not in failed:
            failed.append(identifier)
    return failed, None


class SqsPoller:
    """Polls one queue for one function, as a Lambda SQS event source mapping does.

    Counters (read them any time; they only grow): `batches`, `messages_received`,
    `messages_deleted`, `item_failures` (reported by partial batch responses), `batch_errors`
    (function errors), `invalid_responses`, `invocations`, `max_concurrent_batches`.
    """

    def __init__(
        self,
        name: str,
        source: SqsEventSource,
        *,
        sqs_client: Any,
        invoke: Invoke,
        region: str,
        poll_wait_seconds: int = 1,
        keep_results: int = 1000,
    ) -> None:
        source.validate()
        self.name = name
        self.source = source
        self.region = region
        self.poll_wait_seconds = poll_wait_seconds
        self._sqs = sqs_client
        self._invoke = invoke
        self._stop = threading.Event()
        self._slots = threading.BoundedSemaphore(source.max_concurrency)
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._batch_threads: set[threading.Thread] = set()
        self._running = 0
        self.batches = 0
        self.messages_received = 0
        self.messages_deleted = 0
        self.item_failures = 0
        self.batch_errors = 0
        self.invalid_responses = 0
        self.invocations = 0
        self.max_concurrent_batches = 0
        self.receive_errors = 0
        #: The last `keep_results` batches, oldest first.
        self.results: collections.deque[BatchResult] = collections.deque(maxlen=keep_results)

    def __repr__(self) -> str:
        return f"<SqsPoller {self.name} {self.source.queue_arn.rsplit(':', 1)[-1]}>"

    # -- lifecycle ------------------------------------------------------------------------------

    @property
    def polling(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError(f"{self.name}: poller already started")
        self._thread = threading.Thread(
            target=self._poll_loop, name=f"sqs-poller-{self.name}", daemon=True
        )
        self._thread.start()

    def signal_stop(self) -> None:
        """Stop receiving (batches in flight finish on their own)."""
        self._stop.set()

    def stop(self, timeout: float = 2.0) -> None:
        """Stop receiving and wait (at most `timeout` s in all) for the threads to end."""
        self._stop.set()
        deadline = time.monotonic() + timeout
        if self._thread is not None:
            self._thread.join(max(0.0, deadline - time.monotonic()))
            if self._thread.is_alive():
                LOG.warning("%s: the poller thread did not stop within %.1f s", self, timeout)
        with self._lock:
            batch_threads = list(self._batch_threads)
        for thread in batch_threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        if any(t.is_alive() for t in batch_threads):
            LOG.info("%s: a batch is still running at stop (its function is being stopped)", self)

    # -- state for drain() and tests ------------------------------------------------------------

    @property
    def running_batches(self) -> int:
        with self._lock:
            return self._running

    def queue_counts(self) -> dict[str, int]:
        attributes = self._sqs.get_queue_attributes(
            QueueUrl=self.source.queue_url,
            AttributeNames=[
                "ApproximateNumberOfMessages",
                "ApproximateNumberOfMessagesNotVisible",
                "ApproximateNumberOfMessagesDelayed",
            ],
        )["Attributes"]
        return {
            "visible": int(attributes.get("ApproximateNumberOfMessages", 0)),
            "in_flight": int(attributes.get("ApproximateNumberOfMessagesNotVisible", 0)),
            "delayed": int(attributes.get("ApproximateNumberOfMessagesDelayed", 0)),
        }

    def busy(self) -> str | None:
        """Why the source is not drained (messages in its queue, a batch running), or None."""
        counts = self.queue_counts()  # first: a message is counted until its batch deleted it
        running = self.running_batches
        if running == 0 and not any(counts.values()):
            return None
        return (
            f"{self.name}: {counts['visible']} visible, {counts['in_flight']} in flight, "
            f"{counts['delayed']} delayed message(s), {running} batch(es) running"
        )

    def stats(self) -> dict[str, int]:
        with self._lock:
            return {
                "batches": self.batches,
                "messages_received": self.messages_received,
                "messages_deleted": self.messages_deleted,
                "item_failures": self.item_failures,
                "batch_errors": self.batch_errors,
                "invalid_responses": self.invalid_responses,
                "invocations": self.invocations,
                "max_concurrent_batches": self.max_concurrent_batches,
                "receive_errors": self.receive_errors,
                "running_batches": self._running,
            }

    # -- polling --------------------------------------------------------------------------------

    def _poll_loop(self) -> None:
        while not self._stop.is_set():
            if not self._slots.acquire(timeout=0.2):
                continue  # every slot busy: leave the messages in the queue
            handed_over = False
            try:
                messages = self._gather()
                # Stopping: what was just received comes back after its visibility timeout.
                if messages and not self._stop.is_set():
                    self._dispatch(messages)
                    handed_over = True
            except Exception as exc:
                if self._stop.is_set():
                    break
                with self._lock:
                    self.receive_errors += 1
                LOG.warning("%s: receiving failed: %s", self, exc)
                self._stop.wait(1.0)
            finally:
                if not handed_over:
                    self._slots.release()

    def _receive(self, count: int, wait_seconds: int) -> list[dict[str, Any]]:
        response = self._sqs.receive_message(
            QueueUrl=self.source.queue_url,
            MaxNumberOfMessages=count,
            WaitTimeSeconds=wait_seconds,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        )
        return list(response.get("Messages") or [])

    def _gather(self) -> list[dict[str, Any]]:
        """One batch: up to BatchSize messages, gathered for up to the batching window."""
        source = self.source
        batch = self._receive(min(10, source.batch_size), self.poll_wait_seconds)
        if not batch or source.batching_window <= 0:
            return batch
        deadline = time.monotonic() + source.batching_window
        while len(batch) < source.batch_size and not self._stop.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            # ReceiveMessage waits whole seconds (and returns as soon as there is a message).
            wait = min(20, int(remaining))
            more = self._receive(min(10, source.batch_size - len(batch)), wait)
            batch.extend(more)
            if not more and wait == 0:
                self._stop.wait(min(0.05, remaining))
        return batch

    def _dispatch(self, messages: list[dict[str, Any]]) -> None:
        thread = threading.Thread(
            target=self._run_batch,
            args=(messages,),
            name=f"sqs-batch-{self.name}",
            daemon=True,
        )
        with self._lock:
            self._running += 1
            self.batches += 1
            self.messages_received += len(messages)
            self.max_concurrent_batches = max(self.max_concurrent_batches, self._running)
            self._batch_threads.add(thread)
        try:
            thread.start()
        except BaseException:
            with self._lock:
                self._running -= 1
                self._batch_threads.discard(thread)
            raise

    # -- one batch ------------------------------------------------------------------------------

    def _run_batch(self, messages: list[dict[str, Any]]) -> None:
        source = self.source
        ids = [m["MessageId"] for m in messages]
        result = BatchResult(
            message_ids=ids,
            receive_counts=[
                int((m.get("Attributes") or {}).get("ApproximateReceiveCount", 0)) for m in messages
            ],
            started=time.time(),
        )
        try:
            event = lambda_sqs_event(messages, source.queue_arn, self.region)
            with self._lock:
                self.invocations += 1
            try:
                result.payload, result.errored = self._invoke(source.function_arn, event)
            except Exception as exc:  # the invoke itself failed (e.g. the stack is stopping)
                LOG.warning("%s: invoke failed: %s", self, exc)
                error = {"errorMessage": str(exc), "errorType": "Runtime.Unknown"}
                result.payload, result.errored = json.dumps(error), True
            if result.errored:
                result.failed_ids = list(ids)
                LOG.info("%s: function error, %d message(s) stay queued", self, len(ids))
            elif source.report_batch_item_failures:
                failed, invalid = parse_batch_response(result.payload, ids)
                result.failed_ids, result.invalid_response = failed, invalid
                if invalid:
                    LOG.warning(
                        "%s: invalid partial batch response (%s): the whole batch failed",
                        self,
                        invalid,
                    )
            failed = set(result.failed_ids)
            result.deleted = self._delete([m for m in messages if m["MessageId"] not in failed])
        except Exception:
            LOG.exception("%s: batch handling failed", self)
        finally:
            result.ended = time.time()
            with self._lock:
                if result.errored:
                    self.batch_errors += 1
                elif result.invalid_response:
                    self.invalid_responses += 1
                else:
                    self.item_failures += len(result.failed_ids)
                self.messages_deleted += result.deleted
                self.results.append(result)
                self._running -= 1
                self._batch_threads.discard(threading.current_thread())
            self._slots.release()

    def _delete(self, messages: list[dict[str, Any]]) -> int:
        deleted = 0
        for start in range(0, len(messages), 10):
            chunk = messages[start : start + 10]
            entries = [
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(chunk)
            ]
            try:
                response = self._sqs.delete_message_batch(
                    QueueUrl=self.source.queue_url, Entries=entries
                )
            except Exception as exc:
                LOG.warning("%s: deleting %d message(s) failed: %s", self, len(chunk), exc)
                continue
            deleted += len(response.get("Successful") or [])
            for failure in response.get("Failed") or []:
                LOG.warning("%s: message not deleted: %s", self, failure)
        return deleted


# --------------------------------------------------------------------------------------------
# moto fixes
# --------------------------------------------------------------------------------------------

#: The moto functions `install` wrapped, by name (the tests check their source).
_ORIGINALS: dict[str, Any] = {}


def install() -> None:
    """Apply the moto fixes pollers rely on (idempotent)."""
    if not _ORIGINALS:
        _serialize_queue_updates()


def _serialize_queue_updates() -> None:
    # moto 5.2.5 `Queue.delete_message` rebuilds `queue._messages` from a copy, and only
    # `add_message` takes the queue's `_messages_lock`: two concurrent deletes (batches in flight),
    # or a delete beside a send, lose one side's update, so deleted messages come back or sent ones
    # vanish. `receive_message` checks and marks messages without a lock, so two concurrent
    # receivers can get the same message. Run both under the queue's lock (a Condition on an
    # RLock; `wait_for_messages` inside the receive releases it while it waits).
    from moto.sqs.models import Queue, SQSBackend

    original_delete = _ORIGINALS["Queue.delete_message"] = Queue.delete_message
    original_receive = _ORIGINALS["SQSBackend.receive_message"] = SQSBackend.receive_message

    def delete_message(self: Any, receipt_handle: str) -> None:
        with self._messages_lock:
            original_delete(self, receipt_handle)

    def receive_message(self: Any, queue_name: str, *args: Any, **kwargs: Any) -> Any:
        queue = self.get_queue(queue_name)
        with queue._messages_lock:
            return original_receive(self, queue_name, *args, **kwargs)

    delete_message.devstack_fix = True  # type: ignore[attr-defined]
    receive_message.devstack_fix = True  # type: ignore[attr-defined]
    Queue.delete_message = delete_message  # type: ignore[method-assign]
    SQSBackend.receive_message = receive_message  # type: ignore[method-assign]
