"""Contract: both dropcut adapters against the provider simulator, through every documented status
path and every fault the simulator injects. What the adapters promise is what the state machine
matches: named errors, no retried POST, bounded retried reads."""

from __future__ import annotations

import http.server
import json
import threading
import time

import boto3
import pytest
from moto import mock_aws
from pydantic import SecretStr

from dropcut.aws.result_copy import ResultLimits, copy_result_to_s3
from dropcut.errors import (
    ProviderAnswerLost,
    ProviderBadResponse,
    ProviderOutOfCredits,
    ProviderRejected,
    ProviderThrottled,
    ProviderUnauthorized,
    ProviderUnavailable,
    ResultUnavailable,
)
from dropcut.providers import EditRequest, ProviderSettings, TaskState, make_provider
from dropcut.providers.http import make_client

APIS = ["aimlapi", "evolink"]


def adapter(simulator, api, *, key="sim-key", read_timeout=5.0, **settings):
    config = ProviderSettings(
        base_url=simulator.url,
        api_key=SecretStr(key),
        allow_insecure_urls=True,
        read_timeout=read_timeout,
        read_backoff_base=0.05,
        read_backoff_cap=0.2,
        **settings,
    )
    return make_provider(api, config, make_client(read_timeout=read_timeout))


def wait_until_finished(provider, task_id, timeout=20.0):
    seen = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        task = provider.get_task(task_id)
        if not seen or seen[-1] != task.provider_status:
            seen.append(task.provider_status)
        if task.finished:
            return task, seen
        time.sleep(0.05)
    raise AssertionError(f"task {task_id} did not finish; statuses seen {seen}")


@pytest.mark.parametrize(
    ("api", "statuses"),
    [
        ("aimlapi", ["queued", "generating", "completed"]),
        ("evolink", ["pending", "processing", "completed"]),
    ],
)
def test_success_path_goes_through_every_documented_status(simulator, sample_video, api, statuses):
    provider = adapter(simulator, api)
    created = provider.create_task(EditRequest(prompt="monochrome", video_url=sample_video.url))
    assert created.state is TaskState.QUEUED
    task, seen = wait_until_finished(provider, created.task_id)
    assert seen[-1] == "completed" and set(seen) <= set(statuses) and seen[0] == statuses[0]
    assert task.state is TaskState.SUCCEEDED and task.result_url.startswith(simulator.url)
    assert task.credits and task.credits > 0
    assert simulator.stats()["tasks_created"] == 1
    if api == "evolink":
        assert created.estimated_seconds and created.estimated_seconds > 0
        assert task.progress == 100


@pytest.mark.parametrize(
    ("api", "code"), [("aimlapi", "GenerationError"), ("evolink", "generation_failed")]
)
def test_failed_task_maps_to_failed_with_the_providers_code(simulator, sample_video, api, code):
    provider = adapter(simulator, api)
    created = provider.create_task(EditRequest(prompt="x [sim:fail]", video_url=sample_video.url))
    task, _ = wait_until_finished(provider, created.task_id)
    assert (task.state, task.error_code) == (TaskState.FAILED, code)
    assert task.error_message and task.result_url is None


@pytest.mark.parametrize("api", APIS)
def test_a_task_that_never_finishes_stays_running(simulator, sample_video, api):
    provider = adapter(simulator, api)
    created = provider.create_task(EditRequest(prompt="x [sim:never]", video_url=sample_video.url))
    time.sleep(1.0)
    assert provider.get_task(created.task_id).state is TaskState.RUNNING


@pytest.mark.parametrize("api", APIS)
def test_input_the_provider_cannot_fetch_fails_the_task(simulator, file_server, api):
    provider = adapter(simulator, api)
    created = provider.create_task(
        EditRequest(prompt="x", video_url=file_server.url("missing.mp4"))
    )
    task, _ = wait_until_finished(provider, created.task_id)
    assert task.state is TaskState.FAILED and "download" in (task.error_code or "").lower()


@pytest.mark.parametrize("api", APIS)
def test_account_errors(simulator, sample_video, api):
    request = EditRequest(prompt="x", video_url=sample_video.url)
    with pytest.raises(ProviderUnauthorized):
        adapter(simulator, api, key="wrong-key").create_task(request)
    with pytest.raises(ProviderRejected):
        adapter(simulator, api, model="no-such-model").create_task(request)
    simulator.configure(credits=0)
    with pytest.raises(ProviderOutOfCredits):
        adapter(simulator, api).create_task(request)
    assert simulator.stats()["tasks_created"] == 0


@pytest.mark.parametrize("api", APIS)
def test_concurrency_limit_answers_throttled(simulator, sample_video, api):
    simulator.configure(concurrency_limit=1)
    provider = adapter(simulator, api)
    provider.create_task(EditRequest(prompt="x [sim:never]", video_url=sample_video.url))
    with pytest.raises(ProviderThrottled):
        provider.create_task(EditRequest(prompt="y", video_url=sample_video.url))
    assert simulator.stats()["tasks_created"] == 1


def test_unknown_task_ids(simulator):
    with pytest.raises(ProviderRejected) as caught:
        adapter(simulator, "evolink").get_task("task-unified-1-nosuchid")
    assert caught.value.status == 404
    with pytest.raises(ProviderRejected):
        adapter(simulator, "aimlapi").get_task("nope:klingai/video-o1-video-to-video-edit")


CREATE_FAULTS = [
    ({"kind": "throttle", "retry_after": 7}, ProviderThrottled, 0),
    ({"kind": "unavailable", "status": 500}, ProviderUnavailable, 0),
    ({"kind": "unavailable", "status": 502}, ProviderUnavailable, 0),
    ({"kind": "unavailable", "status": 503}, ProviderUnavailable, 0),
    ({"kind": "slow", "delay": 3}, ProviderAnswerLost, 0),
    ({"kind": "reset"}, ProviderAnswerLost, 0),
    ({"kind": "malformed"}, ProviderBadResponse, 0),
    # The provider accepted the task but the answer was lost: exactly why creates are not retried.
    ({"kind": "accept_then_slow", "delay": 3}, ProviderAnswerLost, 1),
]


@pytest.mark.parametrize("api", APIS)
@pytest.mark.parametrize(("fault", "error", "created"), CREATE_FAULTS)
def test_create_faults_raise_named_errors_and_are_sent_once(
    simulator, sample_video, api, fault, error, created
):
    simulator.add_fault(api=api, op="create", **fault)
    provider = adapter(simulator, api, read_timeout=1.0)
    with pytest.raises(error) as caught:
        provider.create_task(EditRequest(prompt="x", video_url=sample_video.url))
    assert type(caught.value) is error
    stats = simulator.stats()
    assert stats["requests"][f"{api}.create"] == 1
    assert stats["tasks_created"] == created
    if fault["kind"] == "throttle":
        assert caught.value.retry_after == 7


QUERY_FAULTS = [
    {"kind": "throttle", "retry_after": 0},
    {"kind": "unavailable", "status": 503},
    {"kind": "slow", "delay": 2},
    {"kind": "reset"},
    {"kind": "malformed"},
]


@pytest.mark.parametrize("api", APIS)
@pytest.mark.parametrize("fault", QUERY_FAULTS, ids=lambda f: f["kind"])
def test_query_faults_are_retried_a_bounded_number_of_times(simulator, sample_video, api, fault):
    provider = adapter(simulator, api, read_timeout=1.0, read_attempts=3)
    created = provider.create_task(EditRequest(prompt="x", video_url=sample_video.url))
    simulator.add_fault(api=api, op="query", times=2, **fault)
    task = provider.get_task(created.task_id)  # two faults, third attempt answers
    assert task.task_id == created.task_id
    assert simulator.stats()["requests"][f"{api}.query"] == 3

    simulator.add_fault(api=api, op="query", times=-1, **fault)
    with pytest.raises((ProviderUnavailable, ProviderThrottled, ProviderBadResponse)):
        provider.get_task(created.task_id)
    assert simulator.stats()["requests"][f"{api}.query"] == 6


@pytest.fixture
def s3_bucket():
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="media")
        yield s3


@pytest.mark.parametrize("api", APIS)
def test_result_links_stream_into_s3_and_expire(simulator, sample_video, s3_bucket, api):
    simulator.configure(result_url_ttl_seconds=1)
    provider = adapter(simulator, api)
    created = provider.create_task(EditRequest(prompt="sepia", video_url=sample_video.url))
    task, _ = wait_until_finished(provider, created.task_id)
    client = make_client()
    limits = ResultLimits(max_bytes=1 << 30)
    size = copy_result_to_s3(
        client, s3_bucket, task.result_url, "media", "outbox/a.mp4", limits, allow_insecure=True
    )
    stored = s3_bucket.get_object(Bucket="media", Key="outbox/a.mp4")["Body"].read()
    assert size == len(stored) > 1000 and stored[4:8] == b"ftyp"
    time.sleep(1.3)
    with pytest.raises(ResultUnavailable):
        copy_result_to_s3(
            client, s3_bucket, task.result_url, "media", "outbox/b.mp4", limits, allow_insecure=True
        )
    assert "Contents" not in s3_bucket.list_objects_v2(Bucket="media", Prefix="outbox/b")


class CallbackReceiver:
    """A local webhook that records bodies (what the pipeline's webhook Lambda will receive)."""

    def __init__(self):
        self.bodies = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers["Content-Length"])
                outer.bodies.append(json.loads(self.rfile.read(length)))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/callback"

    def wait_for(self, count, timeout=15.0):
        deadline = time.monotonic() + timeout
        while len(self.bodies) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.bodies


@pytest.fixture
def receiver():
    rx = CallbackReceiver()
    yield rx
    rx.server.shutdown()


def test_evolink_callback_bodies_parse_like_query_answers(simulator, sample_video, receiver):
    simulator.configure(allow_insecure_callbacks=True)
    provider = adapter(simulator, "evolink")
    created = provider.create_task(
        EditRequest(prompt="mirror", video_url=sample_video.url, callback_url=receiver.url)
    )
    (body,) = receiver.wait_for(1)
    from_callback = provider.parse_task(body)
    assert from_callback == provider.get_task(created.task_id)
    assert from_callback.state is TaskState.SUCCEEDED


def test_evolink_duplicate_and_out_of_order_callbacks_are_visible_to_the_receiver(
    simulator, sample_video, receiver
):
    simulator.configure(allow_insecure_callbacks=True)
    simulator.add_fault(api="evolink", op="callback", kind="duplicate_callback", count=3)
    provider = adapter(simulator, "evolink")
    provider.create_task(
        EditRequest(prompt="x", video_url=sample_video.url, callback_url=receiver.url)
    )
    bodies = receiver.wait_for(3)
    assert [provider.parse_task(b).state for b in bodies] == [TaskState.SUCCEEDED] * 3

    simulator.add_fault(api="evolink", op="callback", kind="out_of_order_callback")
    provider.create_task(
        EditRequest(prompt="y", video_url=sample_video.url, callback_url=receiver.url)
    )
    bodies = receiver.wait_for(5)
    # A stale 'processing' body arrives after the final one: receivers must query, not trust order.
    assert [provider.parse_task(b).state for b in bodies[3:]] == [
        TaskState.SUCCEEDED,
        TaskState.RUNNING,
    ]


def test_evolink_refuses_loopback_callbacks_unless_the_simulator_allows_them(
    simulator, sample_video
):
    request = EditRequest(
        prompt="x", video_url=sample_video.url, callback_url="http://127.0.0.1:9/cb"
    )
    with pytest.raises(ProviderRejected):
        adapter(simulator, "evolink").create_task(request)
