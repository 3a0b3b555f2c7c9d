"""Dead-lettered inbox events (dropcut.services.dead_letters on moto SQS): sent back to the inbox
queue, later each time, then their upload ends with a report, a failed record, its event and its
place in its folder's batch; never left in the dead-letter queue."""

from __future__ import annotations

import json

import boto3
import pytest

from dropcut.aws.batch_store import BatchStore
from dropcut.aws.inbox_queue import REDRIVES_ATTRIBUTE, InboxQueues
from dropcut.aws.job_events import JobEvents
from dropcut.aws.job_store import JobStore
from dropcut.errors import UploadNotAccepted
from dropcut.model.jobs import JobRecord, JobStatus, job_id_for
from dropcut.services.batches import Batches
from dropcut.services.dead_letters import REDRIVE_DELAYS, DeadLetterDeps, handle_dead_letters
from tests.unit.test_job_events import FakeEventBridge
from tests.unit.test_template import RESOURCES


@pytest.fixture
def world(jobs_table, batches_table, media_bucket, settings):
    """(deps, sqs client, inbox url, dead-letter url, events sent): the queues as template.yaml
    makes them (the inbox's redrive policy names the dead-letter queue)."""
    sqs = boto3.client("sqs", region_name="us-east-1")
    dead = sqs.create_queue(QueueName="inbox-dlq")["QueueUrl"]
    dead_arn = sqs.get_queue_attributes(QueueUrl=dead, AttributeNames=["QueueArn"])
    redrive = RESOURCES["InboxQueue"]["Properties"]["RedrivePolicy"]
    inbox = sqs.create_queue(
        QueueName="inbox",
        Attributes={
            "RedrivePolicy": json.dumps(
                {
                    "deadLetterTargetArn": dead_arn["Attributes"]["QueueArn"],
                    "maxReceiveCount": redrive["maxReceiveCount"],
                }
            )
        },
    )["QueueUrl"]
    sent = FakeEventBridge()
    store = JobStore(jobs_table)
    batches = Batches(
        store=BatchStore(batches_table),
        jobs=store,
        s3=media_bucket,
        layout=settings.layout,
        events=JobEvents(sent, "stack"),
        quiet_seconds=600,
    )
    deps = DeadLetterDeps(
        queues=InboxQueues(sqs, inbox, dead),
        s3=media_bucket,
        store=store,
        layout=settings.layout,
        events=JobEvents(sent, "stack", on_ending=batches.job_ended),
        batches=batches,
    )
    return deps, sqs, inbox, dead, sent


def _s3_event(bucket: str, key: str, version: str = "v1") -> str:
    return json.dumps(
        {
            "Records": [
                {
                    "eventName": "ObjectCreated:Put",
                    "s3": {
                        "bucket": {"name": bucket},
                        "object": {"key": key.replace(" ", "+"), "versionId": version},
                    },
                }
            ]
        }
    )


def _dead_letter(sqs, dead: str, body: str, redrives: int | str | None = None) -> None:
    attributes = {}
    if redrives is not None:
        attributes[REDRIVES_ATTRIBUTE] = {"DataType": "Number", "StringValue": str(redrives)}
    sqs.send_message(QueueUrl=dead, MessageBody=body, MessageAttributes=attributes)


def _counts(sqs, url: str) -> tuple[int, int]:
    """(visible, delayed) messages."""
    names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesDelayed"]
    got = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]
    return int(got[names[0]]), int(got[names[1]])


def test_a_dead_letter_goes_back_to_the_inbox_later_and_counted(world, settings):
    deps, sqs, inbox, dead, _ = world
    body = _s3_event(settings.bucket, "inbox/news/clip one.mp4")
    _dead_letter(sqs, dead, body)

    report = handle_dead_letters(deps)

    assert report.sent_back == 1 and report.not_accepted == []
    assert _counts(sqs, dead) == (0, 0)
    assert _counts(sqs, inbox) == (0, 1), "delayed, not delivered at once"
    assert "Messages" not in sqs.receive_message(QueueUrl=inbox)


def test_each_round_waits_longer_then_the_upload_ends_with_a_report(world, settings, monkeypatch):
    """One round a pass: what a pass sends back is failed again by Submit (here: moved back to
    the dead letters by the test, with the attribute SQS keeps) before the next pass."""
    deps, sqs, _, dead, sent = world
    delays: list[int] = []
    sent_back: list[dict[str, object]] = []
    send = sqs.send_message

    def recording_send(**kwargs):
        delays.append(kwargs["DelaySeconds"])
        sent_back.append(kwargs)
        return {"MessageId": "m"}

    key = "inbox/news/clip.mp4"
    _dead_letter(sqs, dead, _s3_event(settings.bucket, key))
    monkeypatch.setattr(sqs, "send_message", recording_send)

    ended = []
    for round_ in range(len(REDRIVE_DELAYS) + 1):
        ended += handle_dead_letters(deps).not_accepted
        assert len(delays) == min(round_ + 1, len(REDRIVE_DELAYS)), "one round a pass"
        for kwargs in sent_back:  # Submit fails it 5 times more: back in the dead letters
            send(
                QueueUrl=dead,
                MessageBody=kwargs["MessageBody"],
                MessageAttributes=kwargs["MessageAttributes"],
            )
        sent_back.clear()

    assert delays == list(REDRIVE_DELAYS)
    assert delays == sorted(delays)
    job_id = job_id_for(settings.bucket, key, "v1")
    assert ended == [job_id]
    assert _counts(sqs, dead) == (0, 0), "nothing left in the dead-letter queue"
    record = deps.store.require(job_id)
    assert record.status is JobStatus.FAILED
    assert record.error_reason == UploadNotAccepted.reason
    report = json.loads(
        deps.s3.get_object(Bucket=settings.bucket, Key=record.error_report_key)["Body"].read()
    )
    assert report["reason"] == "not_accepted"
    assert "nothing was paid" in report["message"]
    assert report["input_key"] == key
    failed = [d for d in sent.details() if d.get("job_id") == job_id]
    assert [d["reason"] for d in failed] == ["not_accepted"]
    assert record.batch_id is not None
    batch = deps.batches.store.get(record.batch_id)
    assert (batch.jobs, batch.ended) == (1, 1), "it is in its folder's batch, ended"


def test_an_upload_with_a_record_goes_on_and_other_keys_end_nothing(world, settings):
    deps, sqs, _, dead, sent = world
    key = "inbox/news/running.mp4"
    job_id = job_id_for(settings.bucket, key, "v1")
    running = JobRecord(
        job_id=job_id, status=JobStatus.RUNNING, bucket=settings.bucket, key=key, version="v1"
    )
    deps.store.create(running)
    last = len(REDRIVE_DELAYS)
    for body in (
        _s3_event(settings.bucket, key),
        _s3_event(settings.bucket, "inbox/news/running.json"),  # a manifest
        _s3_event(settings.bucket, "inbox/news/.DS_Store"),
        _s3_event("another-bucket", "inbox/news/x.mp4"),
        "not json at all",
    ):
        _dead_letter(sqs, dead, body, last)

    report = handle_dead_letters(deps)

    assert report.not_accepted == []
    assert _counts(sqs, dead) == (0, 0)
    assert deps.store.require(job_id).status is JobStatus.RUNNING
    assert sent.entries == []


def test_an_unreadable_count_is_the_last_round(world, settings):
    deps, sqs, inbox, dead, _ = world
    _dead_letter(sqs, dead, _s3_event(settings.bucket, "inbox/a.mp4"), "lots")

    report = handle_dead_letters(deps)

    assert report.sent_back == 0 and len(report.not_accepted) == 1
    assert _counts(sqs, inbox) == (0, 0)


def test_a_pass_takes_at_most_its_limit(world, settings):
    deps, sqs, _, dead, _ = world
    for i in range(13):
        _dead_letter(sqs, dead, _s3_event(settings.bucket, f"inbox/c{i}.mp4"))

    assert handle_dead_letters(deps, limit=12).sent_back == 12
    assert _counts(sqs, dead)[0] == 1


def test_an_aws_error_leaves_its_letter_for_the_next_pass_and_the_rest_go_on(
    world, settings, monkeypatch
):
    from botocore.exceptions import ClientError

    deps, sqs, inbox, dead, _ = world
    for i in range(3):
        _dead_letter(sqs, dead, _s3_event(settings.bucket, f"inbox/e{i}.mp4"))
    send = sqs.send_message
    calls = {"n": 0}

    def flaky_send(**kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise ClientError({"Error": {"Code": "ServiceUnavailable", "Message": "x"}}, "Send")
        return send(**kwargs)

    monkeypatch.setattr(sqs, "send_message", flaky_send)
    report = handle_dead_letters(deps)

    assert (report.sent_back, report.deferred) == (2, 1)
    assert _counts(sqs, inbox) == (0, 2)
    attributes = sqs.get_queue_attributes(QueueUrl=dead, AttributeNames=["All"])["Attributes"]
    assert attributes["ApproximateNumberOfMessagesNotVisible"] == "1", "kept, hidden till next pass"
