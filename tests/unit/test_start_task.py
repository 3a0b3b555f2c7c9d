"""StartTask never pays twice: a lost answer to the create is not retried, a refused one is."""

from __future__ import annotations

from pathlib import Path

import pytest
from cfnlint.decode import decode

from dropcut.errors import (
    ExecutionEnded,
    InputGone,
    ProviderAnswerLost,
    ProviderBadResponse,
    ProviderThrottled,
    ProviderUnavailable,
    TaskCreationUncertain,
)
from dropcut.model.follow import PollPlan
from dropcut.model.jobs import JobStatus
from dropcut.providers import EditRequest, ProviderTask, TaskState
from dropcut.steps.start_task import StartTaskDeps, start_task
from dropcut.wiring import presigning_s3_client

PLAN = PollPlan(initial_seconds=15, max_seconds=60, deadline_seconds=600)


class FakeProvider:
    """Answers creates from a script; records what it was asked."""

    supports_callback = True

    def __init__(self, *answers):
        self.answers = list(answers)
        self.requests: list[EditRequest] = []

    def create_task(self, request):
        self.requests.append(request)
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


@pytest.fixture
def job(uploaded_job):
    store, job_id = uploaded_job()
    s3 = presigning_s3_client()
    return store, s3, job_id


@pytest.fixture
def start(job, settings):
    """`start(provider)`: run StartTask for the stored job against `provider`."""
    store, s3, job_id = job

    def run(provider):
        deps = StartTaskDeps(
            s3=s3,
            store=store,
            provider_for=lambda _: provider,
            default_provider=settings.provider,
            plan=PLAN,
            presign_seconds=3600,
            callback_url_for=None,
            pace=None,
            breaker=None,
        )
        return start_task(deps, job_id)

    return run


CREATED = ProviderTask(
    task_id="task-unified-1-abcdefgh",
    state=TaskState.QUEUED,
    provider_status="pending",
    estimated_seconds=240,
)


def test_creates_once_and_a_retry_returns_the_recorded_task(job, start):
    provider = FakeProvider(CREATED)
    first = start(provider)
    again = start(provider)
    assert first.task_id == again.task_id == CREATED.task_id
    assert len(provider.requests) == 1
    assert first.wait_seconds == 240  # the provider's estimate sets the first wait
    record = job[0].require(job[2])
    assert (record.status, record.task_id, record.creating_since) == (
        JobStatus.RUNNING,
        CREATED.task_id,
        None,
    )
    assert "X-Amz-Signature" in provider.requests[0].video_url  # presigned, versioned GET
    assert f"versionId={record.version}" in provider.requests[0].video_url


def test_a_refused_create_releases_the_claim_so_the_state_machine_can_retry(job, start):
    provider = FakeProvider(ProviderThrottled("429", retry_after=1), CREATED)
    with pytest.raises(ProviderThrottled):
        start(provider)
    assert job[0].require(job[2]).creating_since is None
    assert start(provider).task_id == CREATED.task_id
    assert len(provider.requests) == 2


def test_a_lost_answer_is_never_retried(job, start):
    provider = FakeProvider(ProviderAnswerLost("read timeout"), CREATED)
    with pytest.raises(TaskCreationUncertain):
        start(provider)
    with pytest.raises(TaskCreationUncertain):  # a Step Functions retry must not POST again
        start(provider)
    assert len(provider.requests) == 1


def test_a_job_that_ended_meanwhile_is_never_paid_for(job, start):
    store, _, job_id = job
    # Its execution was cancelled and the reconciler ended it while StartTask was on its way.
    store.update(job_id, {"status": JobStatus.FAILED.value, "error_reason": "execution_ended"})
    provider = FakeProvider(CREATED)
    with pytest.raises(ExecutionEnded, match="already ended"):
        start(provider)
    assert provider.requests == []
    assert store.require(job_id).status is JobStatus.FAILED


def test_a_job_cancelled_during_the_create_keeps_its_ending_and_records_the_task(job, start):
    store, _, job_id = job

    class CancelledMeanwhile(FakeProvider):
        def create_task(self, request):
            store.update(job_id, {"status": JobStatus.FAILED.value, "error_reason": "cancelled"})
            return super().create_task(request)

    with pytest.raises(ExecutionEnded, match="while its task"):
        start(CancelledMeanwhile(CREATED))
    record = store.require(job_id)
    assert (record.status, record.error_reason) == (JobStatus.FAILED, "cancelled")
    assert record.task_id == CREATED.task_id and record.creating_since is None
    assert record.task_may_be_running  # its slot stays held while the task may run


@pytest.mark.parametrize(
    "error",
    [
        ProviderUnavailable("502 from the gateway", status=502),
        ProviderUnavailable("504 from the gateway", status=504),
        ProviderUnavailable("408", status=408),
        ProviderBadResponse("a 2xx without an id", status=200),
        ProviderAnswerLost("read timeout"),
        KeyError("a bug after the POST"),
    ],
    ids=["502", "504", "408", "garbage-2xx", "lost", "bug"],
)
def test_a_create_that_may_have_created_a_task_is_never_sent_again(job, start, error):
    store, _, job_id = job
    provider = FakeProvider(error, CREATED)
    provider.supports_callback = False  # no callback can name the task: the job ends
    with pytest.raises(TaskCreationUncertain, match="will not send a second one"):
        start(provider)
    with pytest.raises(TaskCreationUncertain):  # a Step Functions retry must not POST again
        start(provider)
    assert len(provider.requests) == 1
    record = store.require(job_id)
    assert record.creating_since is not None  # the claim (and so the slot) stays
    assert record.task_may_be_running
    assert record.create_uncertain


def test_a_connect_error_releases_the_claim(job, start):
    provider = FakeProvider(ProviderUnavailable("refused", delivered=False), CREATED)
    with pytest.raises(ProviderUnavailable):
        start(provider)
    assert job[0].require(job[2]).creating_since is None
    assert start(provider).task_id == CREATED.task_id


def test_with_callbacks_an_uncertain_create_waits_for_the_callback_to_name_the_task(job, settings):
    store, s3, job_id = job
    provider = FakeProvider(ProviderUnavailable("502", status=502), CREATED)
    deps = StartTaskDeps(
        s3=s3,
        store=store,
        provider_for=lambda _: provider,
        default_provider=settings.provider,
        plan=PLAN,
        presign_seconds=3600,
        callback_url_for=lambda job: f"https://hooks.test/callbacks/{job}?cap=x",
        pace=None,
        breaker=None,
    )
    waiting = start_task(deps, job_id)
    assert (waiting.task_id, waiting.follow) == ("", "callback")
    # The wait lasts until the job deadline: the callback comes only once the task has ended.
    assert PLAN.deadline_seconds - 5 <= waiting.seconds_left <= PLAN.deadline_seconds
    assert waiting.wait_seconds < waiting.seconds_left
    again = start_task(deps, job_id)  # a retried StartTask waits again, sends nothing
    assert again.task_id == "" and len(provider.requests) == 1
    # The webhook adopted the task (dropcut.steps.webhook): StartTask follows it from now on.
    store.update(job_id, {"task_id": CREATED.task_id, "status": JobStatus.RUNNING.value})
    assert start_task(deps, job_id).task_id == CREATED.task_id
    assert len(provider.requests) == 1


def _delete_version(s3, version):
    s3.delete_object(Bucket="media", Key="inbox/a.mp4", VersionId=version)


def _delete_key(s3, version):
    s3.delete_object(Bucket="media", Key="inbox/a.mp4")  # a delete marker: the version stays


@pytest.mark.parametrize("delete", [_delete_version, _delete_key], ids=["version", "key"])
def test_an_input_deleted_while_its_job_waited_is_never_paid_for(job, start, media_bucket, delete):
    store, _, job_id = job
    delete(media_bucket, store.require(job_id).version)
    provider = FakeProvider(CREATED)
    with pytest.raises(InputGone, match=r"inbox/a\.mp4: .*deleted before its provider task"):
        start(provider)
    assert provider.requests == []
    record = store.require(job_id)
    assert (record.status, record.creating_since, record.task_id) == (
        JobStatus.RECEIVED,
        None,
        None,
    )


def test_an_older_version_is_still_edited_after_a_newer_upload(job, start, media_bucket):
    media_bucket.put_object(Bucket="media", Key="inbox/a.mp4", Body=b"newer")
    provider = FakeProvider(CREATED)
    assert start(provider).task_id == CREATED.task_id
    assert f"versionId={job[0].require(job[2]).version}" in provider.requests[0].video_url


def test_a_link_shorter_than_the_deadline_is_refused_before_anything_is_sent(job, settings):
    """Issue 26, item 15: a task the provider starts after its input link expired fails, paid."""
    from dropcut.errors import StackMisconfigured

    store, s3, job_id = job
    provider = FakeProvider(CREATED)
    deps = StartTaskDeps(
        s3=s3,
        store=store,
        provider_for=lambda _: provider,
        default_provider=settings.provider,
        plan=PLAN,  # a deadline of 600 s
        presign_seconds=300,
        callback_url_for=None,
        pace=None,
        breaker=None,
    )
    with pytest.raises(StackMisconfigured, match=r"PresignExpirySeconds \(300 s\) is shorter"):
        start_task(deps, job_id)
    assert provider.requests == []
    assert store.require(job_id).creating_since is None


def test_the_templates_defaults_give_the_link_the_whole_deadline():
    template, _ = decode(str(Path(__file__).parents[2] / "template.yaml"))
    parameters = template["Parameters"]
    assert (
        parameters["PresignExpirySeconds"]["Default"] >= parameters["JobDeadlineSeconds"]["Default"]
    )
    assert (
        parameters["PresignExpirySeconds"]["MaxValue"]
        >= parameters["JobDeadlineSeconds"]["MaxValue"]
    )


def test_a_new_task_for_a_paid_part_goes_on_without_the_input(job, start, media_bucket):
    """A part whose task failed after the input was deleted is sent from its own video under
    work/: stopping there would throw away the job's other paid parts."""
    store, _, job_id = job
    store.update(
        job_id,
        {
            "source_key": "work/job/part-001.mp4",
            "source_version": "w1",
            "failed_tasks": [{"task_id": "task-unified-0-failed", "credits": 1.0}],
        },
    )
    media_bucket.delete_object(Bucket="media", Key="inbox/a.mp4")
    provider = FakeProvider(CREATED)
    assert start(provider).task_id == CREATED.task_id
    assert "work/job/part-001.mp4" in provider.requests[0].video_url
