"""Callback capabilities, and the token hand-off between ArmCallback and the webhook."""

from __future__ import annotations

import json

import pytest
from botocore.exceptions import ClientError
from pydantic import SecretStr

from dropcut.aws.job_store import JobStore
from dropcut.model.callbacks import CallbackSigner
from dropcut.model.jobs import JobStatus, job_id_for
from dropcut.providers import ProviderTask, TaskState
from dropcut.steps.arm_callback import ArmCallbackDeps, arm_callback
from dropcut.steps.webhook import WebhookDeps, accept_callback

JOB = job_id_for("media", "inbox/a.mp4", "v1")
OTHER = job_id_for("media", "inbox/b.mp4", "v1")
SIGNER = CallbackSigner(base_url="https://hooks.test/", secret=SecretStr("s" * 64))


def test_a_capability_opens_only_its_own_job():
    url = SIGNER.url_for(JOB)
    assert url == f"https://hooks.test/callbacks/{JOB}?cap={SIGNER.capability(JOB)}"
    assert SIGNER.verify(JOB, SIGNER.capability(JOB))
    assert not SIGNER.verify(JOB, SIGNER.capability(OTHER))
    assert not SIGNER.verify(JOB, None)
    assert not SIGNER.verify(JOB, "")
    assert not SIGNER.verify(JOB, SIGNER.capability(JOB).upper())
    rotated = CallbackSigner(base_url="https://hooks.test", secret=SecretStr("t" * 64))
    assert not rotated.verify(JOB, SIGNER.capability(JOB))
    assert not SIGNER.verify("../etc", SIGNER.capability("../etc")), "only job ids"
    assert "s" * 64 not in repr(SIGNER)


class FakeSfn:
    def __init__(self, expired: set[str] | None = None):
        self.sent: list[tuple[str, dict]] = []
        self.expired = expired or set()

    def send_task_success(self, taskToken: str, output: str) -> None:
        if taskToken in self.expired:
            raise ClientError(
                {"Error": {"Code": "TaskTimedOut", "Message": "expired"}}, "SendTaskSuccess"
            )
        self.sent.append((taskToken, json.loads(output)))


class FakeProvider:
    name = "evolink"

    def __init__(self, status: str):
        self.status = status
        self.queries = 0

    def _task(self, body_status: str, task_id: str) -> ProviderTask:
        state = {"completed": TaskState.SUCCEEDED, "processing": TaskState.RUNNING}[body_status]
        return ProviderTask(task_id=task_id, state=state, provider_status=body_status)

    def parse_callback(self, body: dict) -> ProviderTask:
        return self._task(body["status"], body["id"])

    def get_task(self, task_id: str) -> ProviderTask:
        self.queries += 1
        return self._task(self.status, task_id)


BODY = json.dumps({"id": "task-unified-1", "status": "completed"})


@pytest.fixture
def store(stored_job) -> JobStore:
    store, _ = stored_job(status=JobStatus.RUNNING, task_id="task-unified-1")
    return store


def test_token_first_then_callback_resumes_once(store):
    sfn, provider = FakeSfn(), FakeProvider("completed")
    assert arm_callback(ArmCallbackDeps(store, sfn), JOB, "token-1") is False
    first = accept_callback(WebhookDeps(store, sfn, lambda _: provider), JOB, BODY)
    again = accept_callback(WebhookDeps(store, sfn, lambda _: provider), JOB, BODY)
    assert (first.status_code, first.message) == (200, "accepted")
    assert (again.status_code, again.message) == (200, "already handled")
    assert sfn.sent == [("token-1", {"state": "succeeded"})]


def test_callback_first_then_token_resumes_once(store):
    sfn, provider = FakeSfn(), FakeProvider("completed")
    assert (
        accept_callback(WebhookDeps(store, sfn, lambda _: provider), JOB, BODY).status_code == 200
    )
    assert sfn.sent == []
    assert arm_callback(ArmCallbackDeps(store, sfn), JOB, "token-1") is True
    assert sfn.sent == [("token-1", {"state": "succeeded"})]


def test_a_callback_for_an_expired_wait_is_picked_up_by_the_next_one(store):
    sfn, provider = FakeSfn(expired={"old"}), FakeProvider("completed")
    arm_callback(ArmCallbackDeps(store, sfn), JOB, "old")
    assert (
        accept_callback(WebhookDeps(store, sfn, lambda _: provider), JOB, BODY).status_code == 200
    )
    assert sfn.sent == []
    assert arm_callback(ArmCallbackDeps(store, sfn), JOB, "new") is True
    assert sfn.sent == [("new", {"state": "succeeded"})]


def test_an_unconfirmed_claim_changes_nothing(store):
    sfn, provider = FakeSfn(), FakeProvider("processing")
    arm_callback(ArmCallbackDeps(store, sfn), JOB, "token-1")
    answer = accept_callback(WebhookDeps(store, sfn, lambda _: provider), JOB, BODY)
    assert answer.status_code == 409 and provider.queries == 1
    assert store.require(JOB).callback_outcome is None and sfn.sent == []


def test_answers_for_unknown_jobs_and_bad_bodies(store):
    sfn, provider = FakeSfn(), FakeProvider("completed")
    assert (
        accept_callback(WebhookDeps(store, sfn, lambda _: provider), OTHER, BODY).status_code == 404
    )
    assert (
        accept_callback(WebhookDeps(store, sfn, lambda _: provider), JOB, '["x"]').status_code
        == 400
    )
    other_task = json.dumps({"id": "task-unified-2", "status": "completed"})
    assert (
        accept_callback(WebhookDeps(store, sfn, lambda _: provider), JOB, other_task).status_code
        == 400
    )
    assert provider.queries == 0 and sfn.sent == []


@pytest.mark.parametrize(
    "body",
    [
        "[" * 100_000,  # RecursionError in a plain json.loads
        '{"id": "task-unified-1", "status": "completed", "credits": ' + "9" * 400 + "}",
        '{"id": "task-unified-1", "status": "completed", "credits": 1e400}',
        "not json",
        "x" * 70_000,
    ],
)
def test_a_hostile_body_with_a_valid_capability_is_answered_400_and_changes_nothing(store, body):
    sfn, provider = FakeSfn(), FakeProvider("completed")
    before = store.require(JOB)
    answer = accept_callback(WebhookDeps(store, sfn, lambda _: provider), JOB, body)
    assert answer.status_code == 400
    assert provider.queries == 0 and sfn.sent == []
    assert store.require(JOB).model_dump(exclude={"updated_at"}) == before.model_dump(
        exclude={"updated_at"}
    )


def test_a_callback_adopts_the_task_of_a_create_whose_answer_was_lost(stored_job):
    # StartTask's create was answered 502 after the provider created the task: the claim is
    # held, no task id is recorded, and the execution waits for this callback.
    store, job_id = stored_job(creating_since=1000.0, create_uncertain="answered HTTP 502")
    sfn, provider = FakeSfn(), FakeProvider("completed")
    arm_callback(ArmCallbackDeps(store, sfn), job_id, "token-1")
    first = accept_callback(WebhookDeps(store, sfn, lambda _: provider), job_id, BODY)
    again = accept_callback(WebhookDeps(store, sfn, lambda _: provider), job_id, BODY)
    assert (first.status_code, first.message) == (200, "accepted")
    assert (again.status_code, again.message) == (200, "already handled")
    record = store.require(job_id)
    assert (record.task_id, record.status, record.creating_since) == (
        "task-unified-1",
        JobStatus.RUNNING,
        None,
    )
    assert record.task_adopted_at and record.task_created_at == 1000.0
    assert record.callback_outcome == "succeeded"
    assert sfn.sent == [("token-1", {"state": "succeeded"})]  # resumed once, to Finalize


def test_an_adopting_callback_the_provider_does_not_confirm_adopts_nothing(stored_job):
    store, job_id = stored_job(creating_since=1000.0)
    sfn, provider = FakeSfn(), FakeProvider("processing")
    answer = accept_callback(WebhookDeps(store, sfn, lambda _: provider), job_id, BODY)
    assert answer.status_code == 409
    assert store.require(job_id).task_id is None and sfn.sent == []


def test_a_late_callback_records_the_paid_task_of_a_job_that_ended_uncertain(stored_job):
    store, job_id = stored_job(
        status=JobStatus.FAILED,
        error_reason="task_creation_uncertain",
        creating_since=1000.0,
    )
    sfn, provider = FakeSfn(), FakeProvider("completed")
    answer = accept_callback(WebhookDeps(store, sfn, lambda _: provider), job_id, BODY)
    assert answer.status_code == 200 and sfn.sent == []
    record = store.require(job_id)
    assert (record.status, record.task_id, record.task_state) == (
        JobStatus.FAILED,
        "task-unified-1",
        "succeeded",
    )
    assert not record.task_may_be_running  # its slot can be given back


def test_no_task_is_adopted_by_a_job_that_sent_no_create(stored_job):
    store, job_id = stored_job()  # no claim: StartTask has not sent anything
    sfn, provider = FakeSfn(), FakeProvider("completed")
    answer = accept_callback(WebhookDeps(store, sfn, lambda _: provider), job_id, BODY)
    assert answer.status_code == 409 and provider.queries == 0
    assert store.require(job_id).task_id is None
