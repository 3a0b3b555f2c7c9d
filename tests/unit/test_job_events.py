"""Job events: the detail (one builder, one published schema, a sample that matches it), the
publisher (best effort: a failure is logged and counted, never raised), the steps that end a job
(one event per ending), and the template's email rule (the ending types, this stack only)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from botocore.exceptions import ClientError, EndpointConnectionError
from cfnlint.decode import decode

from devstack.schema import JOB_EVENT_SCHEMA_PATH, render_job_event
from dropcut.aws.job_events import (
    BATCH_COMPLETED,
    ENDINGS,
    EVENT_SOURCE,
    NO_JOB_EVENTS,
    PHASE_AFTER,
    JobEventDetail,
    JobEvents,
    JobEventType,
    build_detail,
)
from dropcut.errors import Failure, InputInvalid, Problem, TaskFailed
from dropcut.model.jobs import JobRecord, JobSpec, JobStatus
from dropcut.steps.notify import EMAILS_PER_SECOND
from dropcut.steps.reconcile import SETTLE_SECONDS, ReconcileDeps, reconcile
from dropcut.steps.record_failure import RecordFailureDeps, record_failure

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = json.loads(JOB_EVENT_SCHEMA_PATH.read_text())
SAMPLE = json.loads((ROOT / "events" / "job_event.json").read_text())


def _record(**fields: Any) -> JobRecord:
    return JobRecord(
        **{
            "job_id": "job-" + "0" * 40,
            "status": JobStatus.RUNNING,
            "bucket": "media",
            "key": "inbox/team/a.mp4",
            "version": "v1",
            "spec": JobSpec(prompt="sepia"),
            "provider": "evolink",
            "created_at": 1000.0,
            **fields,
        }
    )


class FakeEventBridge:
    """PutEvents as boto3 answers it, or failing as told."""

    def __init__(self, fail_with: Exception | None = None, failed_entry: bool = False) -> None:
        self.fail_with = fail_with
        self.failed_entry = failed_entry
        self.entries: list[dict[str, str]] = []

    def put_events(self, *, Entries: list[dict[str, str]]) -> dict[str, Any]:
        if self.fail_with is not None:
            raise self.fail_with
        self.entries.extend(Entries)
        if self.failed_entry:
            return {
                "FailedEntryCount": 1,
                "Entries": [{"ErrorCode": "InternalFailure", "ErrorMessage": "try again"}],
            }
        return {"FailedEntryCount": 0, "Entries": [{"EventId": "e-1"}]}

    def details(self) -> list[dict[str, Any]]:
        return [json.loads(entry["Detail"]) for entry in self.entries]


# -- the detail --------------------------------------------------------------------------------


def test_published_schema_is_up_to_date():
    assert JOB_EVENT_SCHEMA_PATH.read_text() == render_job_event(), "run: python -m devstack.schema"


def test_a_success_carries_the_output_credits_and_both_durations():
    record = _record(
        output_key="outbox/team/a.edited.mp4",
        result_manifest_key="outbox/team/a.edited.result.json",
        credits=12.5,
        task_created_at=1010.0,
        task_finished_seen_at=1070.25,
    )
    detail = build_detail(JobEventType.SUCCEEDED, record, "stack", at=1100.0)
    document = json.loads(detail.model_dump_json())
    jsonschema.validate(document, SCHEMA)
    assert (document["status"], document["phase"]) == ("succeeded", "done")
    assert document["service"] == "stack"
    assert document["input"] == {"bucket": "media", "key": "inbox/team/a.mp4", "version": "v1"}
    assert document["output_key"] == "outbox/team/a.edited.mp4"
    assert document["credits"] == 12.5
    assert document["durations"] == {"total_seconds": 100.0, "at_provider_seconds": 60.25}
    assert document["plan"] is None
    assert (document["reason"], document["advice"], document["problems"]) == (None, None, [])
    assert document["notices"] == []


def test_an_event_carries_the_jobs_notices():
    notices = ["the video is 2.0 s: it is padded to the model's 3 s"]
    detail = build_detail(JobEventType.SUCCEEDED, _record(notices=notices), "stack", at=1100.0)
    document = json.loads(detail.model_dump_json())
    jsonschema.validate(document, SCHEMA)
    assert document["notices"] == notices


def test_a_refusal_carries_reason_advice_and_every_problem_and_no_provider_time():
    problems = [
        Problem("prompt", "too long", "at most 2500 characters", "Shorten it."),
        Problem("images[0]", "not found"),
    ]
    failure = Failure.of(InputInvalid(problems))
    detail = build_detail(
        JobEventType.REFUSED,
        _record(status=JobStatus.RECEIVED),
        "stack",
        failure=failure,
        report_key="errors/team/a.mp4.error.json",
        at=1002.0,
    )
    document = json.loads(detail.model_dump_json())
    jsonschema.validate(document, SCHEMA)
    assert (document["status"], document["phase"]) == ("refused", "failed")
    assert document["reason"] == "input_invalid"
    assert document["advice"] == InputInvalid.advice
    assert [p["field"] for p in document["problems"]] == ["prompt", "images[0]"]
    assert document["problems"][0]["limit"] == "at most 2500 characters"
    assert document["error_report_key"] == "errors/team/a.mp4.error.json"
    assert document["durations"] == {"total_seconds": 2.0, "at_provider_seconds": None}


def test_every_type_has_a_status_the_schema_accepts_and_the_endings_are_all_but_submitted():
    statuses = set(SCHEMA["properties"]["status"]["enum"])
    assert {kind.status for kind in JobEventType} == statuses
    assert set(JobEventType) - ENDINGS == {JobEventType.SUBMITTED}
    # each ending moves the job to an ending phase, one the phase table lets nothing leave
    # but a new manifest's start again (dropcut.model.phases.MOVES)
    assert set(PHASE_AFTER) == ENDINGS
    assert all(phase.ended for phase in PHASE_AFTER.values())


def test_the_schema_refuses_an_unknown_field_or_a_missing_one():
    document = json.loads(build_detail(JobEventType.SUBMITTED, _record(), "s").model_dump_json())
    jsonschema.validate(document, SCHEMA)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**document, "colour": "red"}, SCHEMA)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({k: v for k, v in document.items() if k != "plan"}, SCHEMA)


def test_the_sample_event_is_a_job_event_whose_detail_the_schema_and_model_accept():
    assert SAMPLE["source"] == EVENT_SOURCE
    assert SAMPLE["detail-type"] in {kind.value for kind in JobEventType}
    jsonschema.validate(SAMPLE["detail"], SCHEMA)
    detail = JobEventDetail.model_validate(SAMPLE["detail"])
    assert JobEventType(SAMPLE["detail-type"]).status == detail.status


# -- the publisher -----------------------------------------------------------------------------


def test_an_event_goes_to_the_default_bus_with_source_type_and_detail():
    client = FakeEventBridge()
    assert JobEvents(client, "stack").publish(JobEventType.SUBMITTED, _record())
    [entry] = client.entries
    assert (entry["Source"], entry["DetailType"], entry["EventBusName"]) == (
        "dropcut",
        "Job Submitted",
        "default",
    )
    jsonschema.validate(json.loads(entry["Detail"]), SCHEMA)


@pytest.mark.parametrize(
    "client",
    [
        FakeEventBridge(
            fail_with=ClientError(
                {"Error": {"Code": "AccessDeniedException", "Message": "no"}}, "PutEvents"
            )
        ),
        FakeEventBridge(fail_with=EndpointConnectionError(endpoint_url="https://events")),
        FakeEventBridge(failed_entry=True),
    ],
    ids=["denied", "unreachable", "entry-failed"],
)
def test_a_failed_publish_is_logged_and_counted_never_raised(client, caplog):
    from dropcut.observability import metrics

    metrics.clear_metrics()
    sent = JobEvents(client, "stack").publish(
        JobEventType.FAILED, _record(), failure=Failure.of(TaskFailed("refused"))
    )
    assert sent is False
    assert metrics.metric_set["JobEventsUnpublished"]["Value"] == [1.0]
    metrics.clear_metrics()


def test_without_a_client_nothing_is_published():
    assert NO_JOB_EVENTS.publish(JobEventType.SUCCEEDED, _record()) is False


# -- the steps: one event per ending -----------------------------------------------------------


def _record_failure_deps(s3, settings, store, pool, client) -> RecordFailureDeps:
    return RecordFailureDeps(
        s3=s3,
        store=store,
        layout=settings.layout,
        slots=pool,
        lost_task_hold_seconds=60,
        events=JobEvents(client, "stack"),
    )


TASK_FAILED = {"Error": "TaskFailed", "Cause": "the provider reported the task failed"}


def test_record_failure_publishes_one_failed_event(media_bucket, settings, stored_job, pool):
    store, job_id = stored_job(status=JobStatus.RUNNING)
    client = FakeEventBridge()
    key = record_failure(
        _record_failure_deps(media_bucket, settings, store, pool, client), job_id, TASK_FAILED
    )
    [detail] = client.details()
    assert [entry["DetailType"] for entry in client.entries] == ["Job Failed"]
    assert (detail["job_id"], detail["reason"], detail["error_report_key"]) == (
        job_id,
        "provider_task_failed",
        key,
    )
    jsonschema.validate(detail, SCHEMA)


def test_record_failure_of_a_job_already_ended_publishes_nothing_more(
    media_bucket, settings, stored_job, pool
):
    # The reconciler ended it (and published); then its execution's Finalize raised ExecutionEnded.
    store, job_id = stored_job(status=JobStatus.FAILED, error_reason="execution_ended")
    client = FakeEventBridge()
    deps = _record_failure_deps(media_bucket, settings, store, pool, client)
    record_failure(deps, job_id, {"Error": "ExecutionEnded", "Cause": "ended"})
    assert client.entries == []


def test_a_job_ends_even_when_its_event_cannot_be_published(
    media_bucket, settings, stored_job, pool
):
    store, job_id = stored_job(status=JobStatus.RUNNING)
    down = FakeEventBridge(fail_with=EndpointConnectionError(endpoint_url="https://events"))
    record_failure(
        _record_failure_deps(media_bucket, settings, store, pool, down), job_id, TASK_FAILED
    )
    assert store.require(job_id).status is JobStatus.FAILED


class StoppedExecutions:
    def __init__(self, statuses: dict[str, str]) -> None:
        self.statuses = statuses

    def status(self, job_id: str) -> str | None:
        return self.statuses.get(job_id)

    def start(self, job_id: str) -> None:
        raise AssertionError("nothing to start")


@pytest.mark.parametrize(
    ("execution", "kind"), [("ABORTED", "Job Cancelled"), ("TIMED_OUT", "Job Failed")]
)
def test_the_reconciler_publishes_one_ending_per_abandoned_job(
    media_bucket, settings, stored_job, pool, execution, kind
):
    store, job_id = stored_job(
        status=JobStatus.RUNNING, created_at=time.time() - SETTLE_SECONDS - 60
    )
    client = FakeEventBridge()
    deps = ReconcileDeps(
        s3=media_bucket,
        store=store,
        layout=settings.layout,
        executions=StoppedExecutions({job_id: execution}),  # type: ignore[arg-type]
        slots=pool,
        manifest_wait_seconds=600,
        lost_task_hold_seconds=60,
        events=JobEvents(client, "stack"),
        batches=None,
        inbox=None,
    )
    assert reconcile(deps).ended == [job_id]
    assert reconcile(deps).ended == []  # a second pass finds it ended: no second event
    assert [entry["DetailType"] for entry in client.entries] == [kind]
    [detail] = client.details()
    assert detail["reason"] == "execution_ended"


def test_the_reconciler_publishes_a_manifest_timeout(media_bucket, settings, stored_job, pool):
    store, job_id = stored_job(
        status=JobStatus.WAITING_FOR_MANIFEST, spec=None, created_at=time.time() - 700
    )
    client = FakeEventBridge()
    deps = ReconcileDeps(
        s3=media_bucket,
        store=store,
        layout=settings.layout,
        executions=StoppedExecutions({}),  # type: ignore[arg-type]
        slots=pool,
        manifest_wait_seconds=600,
        lost_task_hold_seconds=60,
        events=JobEvents(client, "stack"),
        batches=None,
        inbox=None,
    )
    assert reconcile(deps).manifest_timeouts == [job_id]
    [detail] = client.details()
    assert (detail["status"], detail["reason"]) == ("failed", "manifest_timeout")
    assert detail["problems"][0]["field"] == "manifest"


# -- the template ------------------------------------------------------------------------------


def test_the_email_rule_matches_this_stacks_batches_or_job_endings_and_feeds_the_topic():
    template, _ = decode(str(ROOT / "template.yaml"))
    resources = template["Resources"]
    rule = resources["JobEndingsRule"]
    pattern = rule["Properties"]["EventPattern"]
    assert pattern["source"] == [EVENT_SOURCE]
    # NotificationEmailFor: job mails each ending; batch (the default) each completed batch.
    condition, per_job, per_batch = pattern["detail-type"]["Fn::If"]
    assert template["Conditions"][condition] == {
        "Fn::Equals": [{"Ref": "NotificationEmailFor"}, "job"]
    }
    assert template["Parameters"]["NotificationEmailFor"]["Default"] == "batch"
    assert set(per_job) == {kind.value for kind in ENDINGS}
    assert per_batch == [BATCH_COMPLETED]
    assert pattern["detail"] == {"service": [{"Ref": "AWS::StackName"}]}
    # Per job, through the email queue and NotifyFunction, paced (dropcut.steps.notify).
    [target] = rule["Properties"]["Targets"]
    assert target["Arn"] == {
        "Fn::If": [condition, {"Fn::GetAtt": ["EmailQueue", "Arn"]}, {"Ref": "JobEndingsTopic"}]
    }
    for name in ("JobEndingsRule", "JobEndingsTopic", "JobEndingsTopicPolicy"):
        assert resources[name]["Condition"] == "HasNotificationEmail"
    assert template["Conditions"]["MailsEachJob"] == {
        "Fn::And": [{"Condition": "HasNotificationEmail"}, {"Condition": condition}]
    }
    for name in ("EmailQueue", "EmailQueuePolicy", "NotifyFunction"):
        assert resources[name]["Condition"] == "MailsEachJob"
    source = resources["NotifyFunction"]["Properties"]["Events"]["EmailQueue"]["Properties"]
    emails_a_second = source["ScalingConfig"]["MaximumConcurrency"] * EMAILS_PER_SECOND
    assert emails_a_second <= 10 / 4, "far below SNS's 10 a second per email subscription"
    [statement] = resources["JobEndingsTopicPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert statement["Principal"] == {"Service": "events.amazonaws.com"}
    assert statement["Action"] == "sns:Publish"
    assert statement["Condition"] == {
        "ArnEquals": {"aws:SourceArn": {"Fn::GetAtt": ["JobEndingsRule", "Arn"]}}
    }


# -- Submit: submitted, refused, and nothing for a repeated event ------------------------------


@pytest.fixture
def submit_deps(submit_deps_of):
    client = FakeEventBridge()
    deps = submit_deps_of(events=JobEvents(client, "stack"))
    return deps, client


@pytest.fixture(scope="module")
def small_clip(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    from devstack.media import make_sample_video

    path = make_sample_video(
        tmp_path_factory.mktemp("events") / "c.mp4", seconds=3.0, width=64, height=48
    )
    return Path(path).read_bytes()


def test_submit_publishes_submitted_once_and_refused_once(submit_deps, small_clip, settings):
    from dropcut.steps.submit import Outcome, submit_object

    deps, client = submit_deps
    s3 = deps.s3
    good = s3.put_object(
        Bucket="media", Key="inbox/ok.mp4", Body=small_clip, Metadata={"prompt": "sepia"}
    )
    s3.put_object(Bucket="media", Key="inbox/bad.mp4.json", Body=b'{"prompt": "x", "colour": 1}')
    bad = s3.put_object(Bucket="media", Key="inbox/bad.mp4", Body=small_clip)
    started = submit_object(deps, "media", "inbox/ok.mp4", good["VersionId"])
    refused = submit_object(deps, "media", "inbox/bad.mp4", bad["VersionId"])
    assert (started.outcome, refused.outcome) == (Outcome.STARTED, Outcome.REFUSED)
    # S3 events come at least once: a repeat of either publishes nothing.
    again = [
        submit_object(deps, "media", "inbox/ok.mp4", good["VersionId"]).outcome,
        submit_object(deps, "media", "inbox/bad.mp4", bad["VersionId"]).outcome,
    ]
    assert again == [Outcome.DUPLICATE, Outcome.DUPLICATE]
    assert [entry["DetailType"] for entry in client.entries] == ["Job Submitted", "Job Refused"]
    submitted, refusal = client.details()
    assert (submitted["job_id"], submitted["status"]) == (started.job_id, "submitted")
    # the phase the job is in, as `dropcut ls` shows it: what its record says
    assert submitted["phase"] == deps.store.require(started.job_id).phase == "received"
    assert (refusal["job_id"], refusal["reason"]) == (refused.job_id, "input_invalid")
    assert refusal["problems"][0]["field"] == "colour"
    assert refusal["error_report_key"] == settings.layout.error_report_key("inbox/bad.mp4")
    for detail in (submitted, refusal):
        jsonschema.validate(detail, SCHEMA)


# -- Notify: the per-job emails, paced -----------------------------------------------------------


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_notify_publishes_each_job_event_to_the_topic_at_its_pace(aws):
    import boto3

    from dropcut.steps.notify import NotifyDeps, Pacer, send_email

    sns = boto3.client("sns", region_name="us-east-1")
    topic = sns.create_topic(Name="endings")["TopicArn"]
    sqs = boto3.client("sqs", region_name="us-east-1")
    inbox = sqs.create_queue(QueueName="mailbox")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=inbox, AttributeNames=["QueueArn"])
    sns.subscribe(
        TopicArn=topic,
        Protocol="sqs",
        Endpoint=arn["Attributes"]["QueueArn"],
        Attributes={"RawMessageDelivery": "true"},
    )
    clock = _Clock()
    pacer = Pacer(per_second=2.0, clock=clock, sleep=clock.sleep)
    events = [json.dumps({"detail-type": "Job Failed", "detail": {"job_id": f"j{i}"}}) for i in range(5)]  # fmt: skip
    for event in events:
        send_email(NotifyDeps(sns, topic), pacer, event)

    assert clock.slept == [0.5] * 4, "the first at once, then one every half second"
    got = sqs.receive_message(QueueUrl=inbox, MaxNumberOfMessages=10)["Messages"]
    assert sorted(m["Body"] for m in got) == sorted(events), "the event as EventBridge sends it"


def test_a_pacer_that_was_idle_does_not_wait():
    from dropcut.steps.notify import Pacer

    clock = _Clock()
    pacer = Pacer(per_second=1.0, clock=clock, sleep=clock.sleep)
    pacer.wait()
    clock.now += 5.0
    pacer.wait()
    assert clock.slept == []
