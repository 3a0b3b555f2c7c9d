"""SQS event sources on the local stack (devstack.sqs_events), and FunctionPool.kill_busy.

The stack polls each SQS event's queue as Lambda's event source mapping does: batches gathered
within the batching window, partial batch responses, at most MaximumConcurrency batches, a
function error returning the whole batch, SQS's own redrive to the dead-letter queue.

Fixture: tests/devstack/fixtures/sqs_template.yaml; its handler (functions/sqs_consumer)
records every batch it gets in a table, and fails items, crashes or sleeps as the bodies say.
"""

from __future__ import annotations

import dataclasses
import hashlib
import inspect
import json
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from devstack import sqs_events
from devstack.sqs_events import SqsEventSource, SqsPoller, parse_batch_response
from devstack.stack import DevStack
from devstack.template import TemplateError

FIXTURES = Path(__file__).resolve().parent / "fixtures"
STACK_NAME = "sqstest"
ACCOUNT = "123456789012"


@pytest.fixture(scope="module")
def stack() -> Iterator[DevStack]:
    with DevStack(FIXTURES / "sqs_template.yaml", stack_name=STACK_NAME) as running:
        yield running
    # leaving the stack stops every poller thread (checked after the module's tests)
    assert not any(p.polling for p in running.sqs_pollers.values())


# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------


def _send(
    stack: DevStack,
    queue_output: str,
    bodies: list[dict[str, Any]],
    attributes: dict[int, dict[str, Any]] | None = None,
) -> list[str]:
    """Send the bodies (as JSON, 10 per request); their message ids, in order."""
    sqs = stack.client("sqs")
    ids: list[str] = []
    for start in range(0, len(bodies), 10):
        entries = []
        for index in range(start, min(start + 10, len(bodies))):
            entry: dict[str, Any] = {"Id": str(index), "MessageBody": json.dumps(bodies[index])}
            if attributes and index in attributes:
                entry["MessageAttributes"] = attributes[index]
            entries.append(entry)
        response = sqs.send_message_batch(QueueUrl=stack.outputs[queue_output], Entries=entries)
        assert not response.get("Failed"), response
        by_entry = {e["Id"]: e["MessageId"] for e in response["Successful"]}
        ids.extend(by_entry[e["Id"]] for e in entries)
    return ids


def _batches(stack: DevStack, run: str) -> list[dict[str, Any]]:
    """What the handler recorded for this run's batches, in the order they started."""
    ddb = stack.client("dynamodb")
    # By key: moto pages a scan by position, so a page read while other tests' pollers still
    # write to the table can repeat an item of the page before (DynamoDB pages by key).
    docs: dict[str, dict[str, Any]] = {}
    for page in ddb.get_paginator("scan").paginate(TableName=stack.physical_ids["BatchesTable"]):
        docs.update((item["pk"]["S"], json.loads(item["doc"]["S"])) for item in page["Items"])
    return sorted((d for d in docs.values() if d["run"] == run), key=lambda d: d["started"])


def _deliveries(docs: list[dict[str, Any]]) -> dict[str, list[int]]:
    """message id -> the ApproximateReceiveCount of each delivery the handler saw."""
    seen: dict[str, list[int]] = {}
    for doc in docs:
        for message_id, count in zip(doc["ids"], doc["counts"], strict=True):
            seen.setdefault(message_id, []).append(count)
    return seen


def _delta(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    keys = (
        "batches",
        "messages_received",
        "messages_deleted",
        "item_failures",
        "batch_errors",
        "invalid_responses",
        "invocations",
    )
    return {k: after[k] - before[k] for k in keys}


def _queue_size(stack: DevStack, queue_output: str) -> int:
    attributes = stack.client("sqs").get_queue_attributes(
        QueueUrl=stack.outputs[queue_output], AttributeNames=["All"]
    )["Attributes"]
    return sum(
        int(attributes[k])
        for k in (
            "ApproximateNumberOfMessages",
            "ApproximateNumberOfMessagesNotVisible",
            "ApproximateNumberOfMessagesDelayed",
        )
    )


def _wait_for(condition: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def _max_overlap(docs: list[dict[str, Any]]) -> int:
    edges = sorted(
        [(d["started"], 1) for d in docs] + [(d["ended"], -1) for d in docs],
        key=lambda e: (e[0], e[1]),  # an end before a start at the same instant
    )
    current = peak = 0
    for _, step in edges:
        current += step
        peak = max(peak, current)
    return peak


def _run() -> str:
    return uuid.uuid4().hex[:12]


# ---------------------------------------------------------------------------------------------
# what the pollers rely on, and how they are configured
# ---------------------------------------------------------------------------------------------


def test_moto_internals_the_pollers_rely_on(stack: DevStack) -> None:
    from moto.sqs.models import Queue, SQSBackend, sqs_backends

    # install() serialises moto's queue updates (concurrent deletes otherwise lose updates).
    assert getattr(Queue.delete_message, "devstack_fix", False)
    assert getattr(SQSBackend.receive_message, "devstack_fix", False)
    delete_src = inspect.getsource(sqs_events._ORIGINALS["Queue.delete_message"])
    assert "self._messages = new_messages" in delete_src
    receive_src = " ".join(
        inspect.getsource(sqs_events._ORIGINALS["SQSBackend.receive_message"]).split()
    )
    # ... and redrive happens on receive, once the count reached maxReceiveCount.
    assert (
        'message.approximate_receive_count >= queue.redrive_policy["maxReceiveCount"]'
        in receive_src
    )
    assert "queue.dead_letter_queue.add_message(message)" in receive_src
    assert "queue.wait_for_messages(1)" in receive_src
    queue = sqs_backends[ACCOUNT][stack.region].get_queue(f"{STACK_NAME}-InboxQueue")
    assert isinstance(queue._messages_lock, threading.Condition)
    assert type(queue._messages_lock._lock).__name__ == "RLock"  # re-entered by wait_for_messages
    # moto's own SQS -> Lambda mapping (synchronous inside SendMessage) is not used.
    assert stack.client("lambda").list_event_source_mappings()["EventSourceMappings"] == []


def test_pollers_follow_the_template(stack: DevStack) -> None:
    pollers = stack.sqs_pollers
    assert set(pollers) == {
        "InboxFunction.InboxQueue",
        "SlowFunction.SlowQueue",
        "PlainFunction.PlainQueue",
        "PlainFunction.Manual",
        "InboxFunction.UnhurriedInboxQueue",
        "PlainFunction.UnhurriedPlainQueue",
    }
    queue_arn = f"arn:aws:sqs:us-east-1:{ACCOUNT}:{STACK_NAME}-"
    assert pollers["InboxFunction.InboxQueue"].source == SqsEventSource(
        function_arn=stack.function_specs["InboxFunction"].function_arn,
        queue_arn=queue_arn + "InboxQueue",
        queue_url=stack.outputs["InboxQueueUrl"],
        batch_size=10,
        batching_window=1.0,
        report_batch_item_failures=True,
        max_concurrency=5,
        enabled=True,
    )
    plain = pollers["PlainFunction.PlainQueue"].source
    assert (plain.batch_size, plain.batching_window) == (3, 0)
    assert plain.report_batch_item_failures is False
    assert plain.max_concurrency == stack.max_workers_per_function  # no ScalingConfig
    assert pollers["SlowFunction.SlowQueue"].source.max_concurrency == 2
    assert pollers["PlainFunction.Manual"].source.enabled is False
    assert not pollers["PlainFunction.Manual"].polling  # Enabled: false
    for key in ("InboxFunction.InboxQueue", "SlowFunction.SlowQueue", "PlainFunction.PlainQueue"):
        assert pollers[key].polling
        assert pollers[key]._thread is not None and pollers[key]._thread.daemon


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"batch_size": 11}, "needs MaximumBatchingWindowInSeconds"),
        ({"batch_size": 0}, "BatchSize 0"),
        ({"batching_window": 301}, "MaximumBatchingWindowInSeconds 301"),
        ({"max_concurrency": 0}, "max_concurrency 0"),
        (
            {"queue_arn": "arn:aws:sqs:us-east-1:1:q.fifo", "batch_size": 20, "batching_window": 5},
            "1..10",
        ),
    ],
)
def test_event_source_limits_are_lambdas(change: dict[str, Any], message: str) -> None:
    fields: dict[str, Any] = {"queue_arn": "arn:aws:sqs:us-east-1:1:q", **change}
    with pytest.raises(ValueError, match=message):
        SqsEventSource(function_arn="arn:fn", queue_url="http://q", **fields).validate()
    SqsEventSource(
        "arn:fn", "arn:aws:sqs:us-east-1:1:q", "http://q", batch_size=10_000, batching_window=1
    ).validate()
    with pytest.raises(ValueError, match=r"MaximumConcurrency 1 is not within 2\.\.1000"):
        sqs_events.check_maximum_concurrency(1)
    sqs_events.check_maximum_concurrency(2)


@pytest.mark.parametrize(
    ("properties", "message"),
    [
        ("BatchSize: 20", "needs MaximumBatchingWindowInSeconds"),
        ("ScalingConfig: {MaximumConcurrency: 1}", "MaximumConcurrency 1 is not within"),
        ("FunctionResponseTypes: [Everything]", "unknown FunctionResponseTypes"),
    ],
)
def test_bad_sqs_event_fails_like_cloudformation(
    stack: DevStack, tmp_path: Path, properties: str, message: str
) -> None:
    code = FIXTURES / "functions" / "sqs_consumer"
    template = tmp_path / "template.yaml"
    template.write_text(
        "Transform: AWS::Serverless-2016-10-31\n"
        "Resources:\n"
        "  Queue: {Type: AWS::SQS::Queue}\n"
        "  Consumer:\n"
        "    Type: AWS::Serverless::Function\n"
        f"    Properties: {{CodeUri: {code}, Handler: app.handler, Runtime: python3.13,\n"
        "      Events: {Q: {Type: SQS, Properties: {Queue: !GetAtt Queue.Arn, "
        f"{properties}}}}}}}}}\n",
        encoding="utf-8",
    )
    bad = DevStack(template, stack_name=f"bad{uuid.uuid4().hex[:6]}")
    with pytest.raises(TemplateError, match=message):
        bad.start()
    assert not bad.sqs_pollers or not any(p.polling for p in bad.sqs_pollers.values())


@pytest.mark.parametrize(
    ("payload", "failed", "invalid"),
    [
        ("null", [], None),
        ("", [], None),
        ("{}", [], None),
        ('{"batchItemFailures": null}', [], None),
        ('{"batchItemFailures": []}', [], None),
        ('{"batchItemFailures": [{"itemIdentifier": "b"}, {"itemIdentifier": "b"}]}', ["b"], None),
        ('{"batchItemFailures": [{"itemIdentifier": ""}]}', ["a", "b"], "invalid batch item"),
        ('{"batchItemFailures": [{"itemIdentifier": null}]}', ["a", "b"], "invalid batch item"),
        ('{"batchItemFailures": [{"id": "a"}]}', ["a", "b"], "invalid batch item"),
        ('{"batchItemFailures": [{"itemIdentifier": "zz"}]}', ["a", "b"], "not in the batch"),
        ('{"batchItemFailures": "a"}', ["a", "b"], "not a list"),
        ('"done"', ["a", "b"], "JSON str"),
        ("not json", ["a", "b"], "not JSON"),
    ],
)
def test_partial_batch_response_rules(payload: str, failed: list[str], invalid: str | None) -> None:
    got_failed, got_invalid = parse_batch_response(payload, ["a", "b"])
    assert got_failed == failed
    if invalid is None:
        assert got_invalid is None
    else:
        assert got_invalid is not None and invalid in got_invalid


# ---------------------------------------------------------------------------------------------
# batches
# ---------------------------------------------------------------------------------------------


def test_batches_gather_up_to_batch_size_within_the_window(stack: DevStack) -> None:
    # A queue whose VisibilityTimeout (60 s) no batch comes near: every delivery is counted.
    inbox = stack.sqs_pollers["InboxFunction.UnhurriedInboxQueue"]
    before = inbox.stats()
    run = _run()
    attributes = {
        0: {
            "kind": {"DataType": "String", "StringValue": "clip"},
            "size": {"DataType": "Number", "StringValue": "42"},
            "blob": {"DataType": "Binary", "BinaryValue": b"\x00\x01hi"},
        }
    }
    ids = _send(
        stack, "UnhurriedInboxQueueUrl", [{"run": run, "n": n} for n in range(12)], attributes
    )
    stack.drain(20)
    after = inbox.stats()

    docs = _batches(stack, run)
    # 12 messages sent at once: one full batch of 10, then 2 once the 1 s window is over.
    assert sorted(len(d["ids"]) for d in docs) == [2, 10]
    assert _deliveries(docs) == {message_id: [1] for message_id in ids}
    assert _delta(before, after) == {
        "batches": 2,
        "messages_received": 12,
        "messages_deleted": 12,
        "item_failures": 0,
        "batch_errors": 0,
        "invalid_responses": 0,
        "invocations": 2,
    }
    assert inbox.queue_counts() == {"visible": 0, "in_flight": 0, "delayed": 0}

    records = {r["messageId"]: r for d in docs for r in d["event"]["Records"]}
    first, plain = records[ids[0]], records[ids[1]]
    assert set(first) == {
        "messageId",
        "receiptHandle",
        "body",
        "attributes",
        "messageAttributes",
        "md5OfBody",
        "md5OfMessageAttributes",
        "eventSource",
        "eventSourceARN",
        "awsRegion",
    }
    assert set(plain) == set(first) - {"md5OfMessageAttributes"}
    assert first["eventSource"] == "aws:sqs"
    assert first["eventSourceARN"] == inbox.source.queue_arn
    assert first["awsRegion"] == "us-east-1"
    assert json.loads(first["body"]) == {"run": run, "n": 0}
    assert (
        first["md5OfBody"] == hashlib.md5(first["body"].encode(), usedforsecurity=False).hexdigest()
    )
    assert first["receiptHandle"]
    assert set(first["attributes"]) >= {
        "ApproximateReceiveCount",
        "SentTimestamp",
        "SenderId",
        "ApproximateFirstReceiveTimestamp",
    }
    assert first["attributes"]["ApproximateReceiveCount"] == "1"
    assert int(first["attributes"]["ApproximateFirstReceiveTimestamp"]) >= int(
        first["attributes"]["SentTimestamp"]
    )
    assert first["messageAttributes"] == {
        "kind": {
            "stringValue": "clip",
            "stringListValues": [],
            "binaryListValues": [],
            "dataType": "String",
        },
        "size": {
            "stringValue": "42",
            "stringListValues": [],
            "binaryListValues": [],
            "dataType": "Number",
        },
        "blob": {
            "binaryValue": "AAFoaQ==",
            "stringListValues": [],
            "binaryListValues": [],
            "dataType": "Binary",
        },
    }
    assert plain["messageAttributes"] == {}


def test_without_a_window_each_receive_is_a_batch_and_responses_are_ignored(
    stack: DevStack,
) -> None:
    plain = stack.sqs_pollers["PlainFunction.UnhurriedPlainQueue"]
    before = plain.stats()
    run = _run()
    bodies = [{"run": run, "n": n} for n in range(7)]
    bodies[0]["fail_until"] = 99  # reported, but the mapping has no ReportBatchItemFailures
    ids = _send(stack, "UnhurriedPlainQueueUrl", bodies)
    stack.drain(20)
    after = plain.stats()

    docs = _batches(stack, run)
    sizes = [len(d["ids"]) for d in docs]
    assert max(sizes) == 3 and sum(sizes) == 7
    assert _deliveries(docs) == {message_id: [1] for message_id in ids}
    [reporting] = [d for d in docs if d["failed"]]
    assert reporting["failed"] == [ids[0]]
    delta = _delta(before, after)
    assert delta["messages_deleted"] == 7
    assert delta["item_failures"] == 0
    assert _queue_size(stack, "UnhurriedPlainQueueUrl") == 0


# ---------------------------------------------------------------------------------------------
# failures: partial batch responses, function errors, redrive
# ---------------------------------------------------------------------------------------------


def test_only_failed_items_come_back(stack: DevStack) -> None:
    inbox = stack.sqs_pollers["InboxFunction.InboxQueue"]
    before = inbox.stats()
    dlq_before = _queue_size(stack, "InboxDeadLetterQueueUrl")
    run = _run()
    bodies: list[dict[str, Any]] = [{"run": run, "n": n} for n in range(5)]
    bodies[1]["fail_until"] = bodies[3]["fail_until"] = 1  # fail the first delivery only
    ids = _send(stack, "InboxQueueUrl", bodies)
    stack.drain(20)

    docs = _batches(stack, run)
    first, *later = docs
    assert first["ids"] == ids and first["counts"] == [1] * 5
    assert first["failed"] == [ids[1], ids[3]]
    assert sorted(i for d in later for i in d["ids"]) == sorted([ids[1], ids[3]])
    assert all(d["counts"] == [2] * len(d["ids"]) and not d["failed"] for d in later)
    # not before the queue's visibility timeout (6 s) is over
    assert later[0]["started"] - first["started"] >= 5.5
    assert _delta(before, inbox.stats()) == {
        "batches": 1 + len(later),
        "messages_received": 7,
        "messages_deleted": 5,
        "item_failures": 2,
        "batch_errors": 0,
        "invalid_responses": 0,
        "invocations": 1 + len(later),
    }
    assert _queue_size(stack, "InboxQueueUrl") == 0
    assert _queue_size(stack, "InboxDeadLetterQueueUrl") == dlq_before


def test_invalid_partial_response_fails_the_whole_batch(stack: DevStack) -> None:
    inbox = stack.sqs_pollers["InboxFunction.InboxQueue"]
    before = inbox.stats()
    run = _run()
    bad = {"batchItemFailures": [{"itemIdentifier": "not-in-this-batch"}]}
    bodies = [{"run": run, "n": 0, "respond": bad, "respond_until": 1}, {"run": run, "n": 1}]
    ids = _send(stack, "InboxQueueUrl", bodies)
    stack.drain(20)

    assert _deliveries(_batches(stack, run)) == {ids[0]: [1, 2], ids[1]: [1, 2]}
    delta = _delta(before, inbox.stats())
    assert delta["invalid_responses"] == 1
    assert delta["item_failures"] == 0
    assert delta["messages_deleted"] == 2
    invalid = [r for r in inbox.results if r.invalid_response and ids[0] in r.message_ids]
    assert "not in the batch" in (invalid[0].invalid_response or "")
    assert invalid[0].failed_ids == ids and invalid[0].deleted == 0


def test_crashed_invocation_returns_the_whole_batch(stack: DevStack) -> None:
    inbox = stack.sqs_pollers["InboxFunction.InboxQueue"]
    before = inbox.stats()
    run = _run()
    bodies: list[dict[str, Any]] = [{"run": run, "n": n} for n in range(4)]
    bodies[2]["crash_until"] = 1  # os._exit(1) on the first delivery
    ids = _send(stack, "InboxQueueUrl", bodies)
    stack.drain(20)

    docs = _batches(stack, run)
    crashed, *later = docs
    assert crashed["outcome"] == "crash" and crashed["ids"] == ids and crashed["counts"] == [1] * 4
    assert _deliveries(later) == {message_id: [2] for message_id in ids}
    assert all(d["outcome"] == "ok" for d in later)
    delta = _delta(before, inbox.stats())
    assert delta["batch_errors"] == 1
    assert delta["messages_deleted"] == 4
    assert delta["item_failures"] == 0
    [result] = [r for r in inbox.results if r.errored and ids[0] in r.message_ids]
    payload = json.loads(result.payload)
    assert payload["errorType"] == "Runtime.ExitError"
    assert payload["errorMessage"].endswith("exit status 1")
    assert result.failed_ids == ids and result.deleted == 0


def test_message_failing_more_than_max_receive_count_goes_to_the_dlq(stack: DevStack) -> None:
    sqs = stack.client("sqs")
    redrive = json.loads(
        sqs.get_queue_attributes(
            QueueUrl=stack.outputs["InboxQueueUrl"], AttributeNames=["RedrivePolicy"]
        )["Attributes"]["RedrivePolicy"]
    )
    assert redrive["maxReceiveCount"] == 2
    inbox = stack.sqs_pollers["InboxFunction.InboxQueue"]
    before = inbox.stats()
    run = _run()
    ids = _send(
        stack, "InboxQueueUrl", [{"run": run, "n": 0, "fail_until": 99}, {"run": run, "n": 1}]
    )
    stack.drain(40)  # two visibility timeouts (6 s each) and the receive that moves it

    # delivered maxReceiveCount times, then moved by SQS (moto: on the next receive)
    assert _deliveries(_batches(stack, run)) == {ids[0]: [1, 2], ids[1]: [1]}
    delta = _delta(before, inbox.stats())
    assert delta["item_failures"] == 2
    assert delta["messages_deleted"] == 1
    assert _queue_size(stack, "InboxQueueUrl") == 0

    dlq_url = stack.outputs["InboxDeadLetterQueueUrl"]
    moved = sqs.receive_message(
        QueueUrl=dlq_url, MaxNumberOfMessages=10, AttributeNames=["All"], WaitTimeSeconds=1
    ).get("Messages", [])
    [message] = [m for m in moved if m["MessageId"] == ids[0]]
    assert json.loads(message["Body"]) == {"run": run, "n": 0, "fail_until": 99}
    # moto keeps the receive count: 2 deliveries, plus this receive from the DLQ
    assert message["Attributes"]["ApproximateReceiveCount"] == "3"
    sqs.delete_message(QueueUrl=dlq_url, ReceiptHandle=message["ReceiptHandle"])


# ---------------------------------------------------------------------------------------------
# concurrency, drain, stop
# ---------------------------------------------------------------------------------------------


def test_max_concurrency_is_never_exceeded(stack: DevStack) -> None:
    slow = stack.sqs_pollers["SlowFunction.SlowQueue"]
    run = _run()
    started = time.monotonic()
    ids = _send(stack, "SlowQueueUrl", [{"run": run, "n": n, "sleep": 0.6} for n in range(6)])
    stack.drain(30)
    elapsed = time.monotonic() - started

    docs = _batches(stack, run)
    assert [len(d["ids"]) for d in docs] == [1] * 6  # BatchSize 1
    assert _deliveries(docs) == {message_id: [1] for message_id in ids}
    assert _max_overlap(docs) == 2  # MaximumConcurrency 2 (the function has 4 workers)
    assert slow.max_concurrent_batches == 2
    assert len({d["pid"] for d in docs}) == 2
    assert elapsed >= 3 * 0.6
    assert stack.sqs_pollers["InboxFunction.InboxQueue"].max_concurrent_batches <= 5


def test_drain_waits_for_the_queue_to_empty(stack: DevStack) -> None:
    slow = stack.sqs_pollers["SlowFunction.SlowQueue"]
    run = _run()
    _send(stack, "SlowQueueUrl", [{"run": run, "n": n, "sleep": 1.0} for n in range(2)])
    with pytest.raises(TimeoutError, match=r"SlowFunction\.SlowQueue: .* batch\(es\) running"):
        stack.drain(timeout=0.3)
    stack.drain(20)
    drained_at = time.time()

    docs = _batches(stack, run)
    assert len(docs) == 2
    assert all(d["ended"] <= drained_at for d in docs)
    assert slow.queue_counts() == {"visible": 0, "in_flight": 0, "delayed": 0}
    assert slow.running_batches == 0


def test_drain_ignores_a_disabled_event_source(stack: DevStack) -> None:
    sqs = stack.client("sqs")
    sqs.send_message(QueueUrl=stack.outputs["ManualQueueUrl"], MessageBody="{}")
    started = time.monotonic()
    stack.drain(5)
    assert time.monotonic() - started < 1
    assert _queue_size(stack, "ManualQueueUrl") == 1
    sqs.purge_queue(QueueUrl=stack.outputs["ManualQueueUrl"])


def test_stop_is_quick_while_a_batch_runs(stack: DevStack) -> None:
    # A poller of our own on the queue the stack does not poll, with an invoke we control.
    release = threading.Event()
    events: list[dict[str, Any]] = []

    def invoke(function_arn: str, event: dict[str, Any]) -> tuple[str, bool]:
        events.append(event)
        release.wait(10)
        return "null", False

    source = dataclasses.replace(stack.sqs_pollers["PlainFunction.Manual"].source, enabled=True)
    poller = SqsPoller(
        "Test.Manual", source, sqs_client=stack.client("sqs"), invoke=invoke, region=stack.region
    )
    poller.start()
    try:
        [message_id] = _send(stack, "ManualQueueUrl", [{"run": _run(), "n": 0}])
        _wait_for(lambda: events, 5, "the batch")
        assert events[0]["Records"][0]["messageId"] == message_id
        assert poller.running_batches == 1
        assert all(t.daemon for t in threading.enumerate() if t.name.startswith("sqs-"))
        started = time.monotonic()
        poller.stop(timeout=2.0)
        assert time.monotonic() - started < 2.5
        assert not poller.polling
        assert poller.running_batches == 1  # the invocation goes on; nothing is received
    finally:
        release.set()
    _wait_for(lambda: poller.running_batches == 0, 5, "the batch to end")
    # the function returned: its message is deleted, as Lambda would
    assert poller.messages_deleted == 1
    assert _queue_size(stack, "ManualQueueUrl") == 0


# ---------------------------------------------------------------------------------------------
# chaos: FunctionPool.kill_busy
# ---------------------------------------------------------------------------------------------


def test_kill_busy_kills_only_running_invocations(stack: DevStack) -> None:
    pool = stack.pool("PlainFunction")
    stack.drain(10)
    stack.invoke("PlainFunction", {})  # a warm, idle worker
    idle = pool.worker_pids()
    killed_before = pool.killed
    assert pool.busy_pids() == []
    assert pool.kill_busy() == []  # idle workers are left alone
    assert pool.worker_pids() == idle

    results: list[Any] = []
    threads = [
        threading.Thread(
            target=lambda: results.append(stack.invoke_raw("PlainFunction", {"sleep": 1.5}))
        )
        for _ in range(2)
    ]
    for thread in threads:
        thread.start()
    _wait_for(lambda: pool.busy_count() == 2, 10, "2 busy workers")
    busy = pool.busy_pids()
    [victim] = pool.kill_busy(1)
    assert victim in busy
    for thread in threads:
        thread.join(10)
    killed = [payload for payload, error, _ in results if error]
    finished = [payload for payload, error, _ in results if not error]
    assert len(killed) == 1 and len(finished) == 1
    assert killed[0]["errorType"] == "Runtime.ExitError"
    assert "signal: killed" in killed[0]["errorMessage"]
    assert finished[0]["pid"] != victim
    assert pool.killed == killed_before + 1
    assert victim not in pool.worker_pids()
    assert pool.busy_pids() == [] and pool.busy_count() == 0
    again = stack.invoke("PlainFunction", {})  # the pool replaced the environment
    assert again["pid"] != victim


def test_kill_busy_during_a_batch_returns_it_to_the_queue(stack: DevStack) -> None:
    inbox = stack.sqs_pollers["InboxFunction.InboxQueue"]
    pool = stack.pool("InboxFunction")
    before = inbox.stats()
    run = _run()
    [message_id] = _send(
        stack, "InboxQueueUrl", [{"run": run, "n": 0, "sleep": 5, "sleep_until": 1}]
    )
    _wait_for(pool.busy_pids, 10, "the batch to run")
    [victim] = pool.kill_busy()
    stack.drain(20)

    [doc] = _batches(stack, run)  # the killed invocation recorded nothing
    assert doc["ids"] == [message_id] and doc["counts"] == [2] and doc["pid"] != victim
    delta = _delta(before, inbox.stats())
    assert delta["batch_errors"] == 1
    assert delta["messages_deleted"] == 1
    [result] = [r for r in inbox.results if r.errored and message_id in r.message_ids]
    assert json.loads(result.payload)["errorType"] == "Runtime.ExitError"
    assert "signal: killed" in json.loads(result.payload)["errorMessage"]
