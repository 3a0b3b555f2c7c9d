"""Both adapters against a scripted HTTP transport: request shapes, limits, error mapping, retries."""

from __future__ import annotations

import json

import httpx
import pytest
from pydantic import SecretStr

from dropcut.errors import (
    ProviderAnswerLost,
    ProviderBadResponse,
    ProviderOutOfCredits,
    ProviderRejected,
    ProviderThrottled,
    ProviderUnauthorized,
    ProviderUnavailable,
    RequestInvalid,
)
from dropcut.providers import EditRequest, Element, ProviderSettings, TaskState, make_provider

KEY = "sk-test-secret-key-0123456789"
AIML_ID = "9177d714-9f53-4ce7-829f-b81e2223c48b:klingai/video-o1-video-to-video-edit"


class Script:
    """An httpx transport answering from a list of (status, body or exception) and recording requests."""

    def __init__(self, *answers):
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        status, body, *headers = answer
        content = body if isinstance(body, bytes) else json.dumps(body).encode()
        return httpx.Response(status, content=content, headers=(headers[0] if headers else {}))


def adapter(name: str, script: Script, **settings):
    client = httpx.Client(transport=httpx.MockTransport(script))
    defaults = {"read_backoff_base": 0.0, "read_backoff_cap": 0.0}
    config = ProviderSettings(
        base_url="https://api.example.test", api_key=SecretStr(KEY), **(defaults | settings)
    )
    return make_provider(name, config, client)


def request(**changes) -> EditRequest:
    base = {"prompt": "make it sepia", "video_url": "https://bucket.example.test/in.mp4"}
    return EditRequest(**(base | changes))


def test_aimlapi_create_sends_documented_body_and_bearer_key():
    script = Script((200, {"id": AIML_ID, "status": "queued"}))
    task = adapter("aimlapi", script).create_task(
        request(image_urls=("https://img.example.test/a.png",), keep_audio=True)
    )
    sent = script.requests[0]
    assert sent.method == "POST" and sent.url.path == "/v2/video/generations"
    assert sent.headers["Authorization"] == f"Bearer {KEY}"
    assert json.loads(sent.content) == {
        "model": "klingai/video-o1-video-to-video-edit",
        "prompt": "make it sepia",
        "video_url": "https://bucket.example.test/in.mp4",
        "keep_audio": True,
        "image_list": ["https://img.example.test/a.png"],
    }
    assert task.task_id == AIML_ID and task.state is TaskState.QUEUED


def test_aimlapi_create_sends_elements_as_documented():
    script = Script((200, {"id": AIML_ID, "status": "queued"}))
    element = Element(
        frontal_image_url="https://img.example.test/face.png",
        reference_image_urls=("https://img.example.test/side.png",),
    )
    adapter("aimlapi", script).create_task(request(elements=(element,)))
    assert json.loads(script.requests[0].content)["elements"] == [
        {
            "frontal_image_url": "https://img.example.test/face.png",
            "reference_image_urls": ["https://img.example.test/side.png"],
        }
    ]


def test_aimlapi_generation_id_is_url_encoded_in_the_query():
    script = Script(
        (
            200,
            {
                "id": AIML_ID,
                "status": "completed",
                "video": {"url": "https://cdn.example.test/out.mp4"},
                "meta": {"usage": {"credits_used": 120}},
            },
        )
    )
    task = adapter("aimlapi", script).get_task(AIML_ID)
    raw_query = script.requests[0].url.query.decode()
    assert "generation_id=9177d714-9f53-4ce7-829f-b81e2223c48b%3Aklingai%2Fvideo-o1" in raw_query
    assert script.requests[0].url.params["generation_id"] == AIML_ID
    assert task.state is TaskState.SUCCEEDED
    assert task.result_url == "https://cdn.example.test/out.mp4"
    assert task.credits == 120


def test_aimlapi_error_status_maps_to_failed_with_name_and_message():
    body = {"id": AIML_ID, "status": "error", "error": {"name": "ContentPolicy", "message": "no"}}
    task = adapter("aimlapi", Script((200, body))).get_task(AIML_ID)
    assert (task.state, task.error_code, task.error_message) == (
        TaskState.FAILED,
        "ContentPolicy",
        "no",
    )


def test_evolink_create_and_query_map_onto_the_normalized_task():
    created = {
        "id": "task-unified-1757169743-7cvnl5zw",
        "object": "video.generation.task",
        "status": "pending",
        "progress": 0,
        "task_info": {"can_cancel": True, "estimated_time": 240, "video_duration": 5},
        "usage": {"billing_rule": "per_second", "credits_reserved": 7, "user_group": "default"},
    }
    done = created | {
        "status": "completed",
        "progress": 100,
        "results": ["https://cdn.example.test/r.mp4"],
    }
    script = Script((200, created), (200, done))
    evolink = adapter("evolink", script)
    task = evolink.create_task(
        request(aspect_ratio="1:1", callback_url="https://hooks.example.test/cb?t=x")
    )
    body = json.loads(script.requests[0].content)
    assert body["video_urls"] == ["https://bucket.example.test/in.mp4"]
    assert body["aspect_ratio"] == "1:1" and body["keep_original_sound"] is False
    assert body["callback_url"] == "https://hooks.example.test/cb?t=x"
    assert (task.state, task.estimated_seconds, task.credits) == (TaskState.QUEUED, 240, 7)
    finished = evolink.get_task(task.task_id)
    assert script.requests[1].url.path == "/v1/tasks/task-unified-1757169743-7cvnl5zw"
    assert (finished.state, finished.progress, finished.result_url) == (
        TaskState.SUCCEEDED,
        100,
        "https://cdn.example.test/r.mp4",
    )


def test_evolink_rejects_foreign_task_ids_without_a_request():
    script = Script()
    with pytest.raises(ProviderRejected) as caught:
        adapter("evolink", script).get_task(AIML_ID)
    assert caught.value.code == "invalid_task_id" and script.requests == []


@pytest.mark.parametrize(
    ("name", "changes", "fields"),
    [
        ("aimlapi", {"prompt": "x" * 2501}, ["prompt"]),
        ("evolink", {"prompt": "x" * 5001}, ["prompt"]),
        ("evolink", {"prompt": "   "}, ["prompt"]),
        ("aimlapi", {"aspect_ratio": "16:9"}, ["aspect_ratio"]),
        ("aimlapi", {"callback_url": "https://hooks.example.test/cb"}, ["callback_url"]),
        (
            "evolink",
            {"image_urls": tuple(f"https://i.test/{i}.png" for i in range(5))},
            ["image_urls"],
        ),
        (
            "aimlapi",
            {"image_urls": tuple(f"https://i.test/{i}.png" for i in range(8))},
            ["image_urls"],
        ),
        (
            "aimlapi",  # aimlapi's schema takes 7 images; the model takes 4 with a video
            {"image_urls": tuple(f"https://i.test/{i}.png" for i in range(5))},
            ["image_urls"],
        ),
        (
            "aimlapi",
            {
                "image_urls": tuple(f"https://i.test/{i}.png" for i in range(3)),
                "elements": tuple(
                    Element(
                        frontal_image_url=f"https://i.test/f{i}.png",
                        reference_image_urls=(f"https://i.test/r{i}.png",),
                    )
                    for i in range(2)
                ),
            },
            ["elements"],
        ),
        (
            "evolink",
            {
                "elements": (
                    Element(
                        frontal_image_url="https://i.test/f.png",
                        reference_image_urls=("https://i.test/r.png",),
                    ),
                )
            },
            ["elements"],
        ),
        ("evolink", {"image_urls": ("https://i.test/a.gif",)}, ["image_urls[0]"]),
        ("evolink", {"callback_url": "http://hooks.example.test/cb"}, ["callback_url"]),
        ("evolink", {"callback_url": "https://127.0.0.1/cb"}, ["callback_url"]),
        ("evolink", {"callback_url": "https://10.1.2.3/cb"}, ["callback_url"]),
        ("evolink", {"callback_url": "https://h.test/" + "a" * 2048}, ["callback_url"]),
        ("evolink", {"video_url": "http://bucket.example.test/in.mp4"}, ["video_url"]),
        # Every broken limit is reported, not only the first.
        (
            "evolink",
            {"prompt": "x" * 5001, "callback_url": "http://x.test/"},
            ["prompt", "callback_url"],
        ),
    ],
)
def test_documented_limits_are_checked_before_any_http_call(name, changes, fields):
    script = Script()
    with pytest.raises(RequestInvalid) as caught:
        adapter(name, script).create_task(request(**changes))
    assert [p.field for p in caught.value.problems] == fields
    assert all(p.message for p in caught.value.problems)
    assert script.requests == []


def test_local_mode_allows_loopback_http_urls():
    created = {"id": "task-unified-1-abcdefgh", "status": "pending"}
    script = Script((200, created))
    adapter("evolink", script, allow_insecure_urls=True).create_task(
        request(video_url="http://127.0.0.1:5000/in.mp4", callback_url="http://127.0.0.1:9/cb")
    )
    assert len(script.requests) == 1


@pytest.mark.parametrize(
    ("answer", "error", "code"),
    [
        (
            (
                429,
                {
                    "error": {
                        "code": 429,
                        "message": "Rate limit exceeded",
                        "type": "rate_limit_error",
                    }
                },
                {"Retry-After": "60"},
            ),
            ProviderThrottled,
            "429",
        ),
        (
            (401, {"error": {"code": 401, "message": "Invalid or expired token"}}),
            ProviderUnauthorized,
            "401",
        ),
        (
            (402, {"error": {"code": 402, "message": "Insufficient quota"}}),
            ProviderOutOfCredits,
            "402",
        ),
        (
            (400, {"error": {"code": 400, "message": "Invalid request parameter"}}),
            ProviderRejected,
            "400",
        ),
        ((403, {"error": {"code": 403, "message": "Access denied"}}), ProviderRejected, "403"),
        (
            (404, {"error": {"code": 404, "message": "Specified model not found"}}),
            ProviderRejected,
            "404",
        ),
        ((422, b"unprocessable"), ProviderRejected, None),
        (
            (500, {"error": {"code": 500, "message": "Internal server error"}}),
            ProviderUnavailable,
            "500",
        ),
        ((503, b"<html>down</html>"), ProviderUnavailable, None),
        ((200, b"{not json"), ProviderBadResponse, None),
        ((200, {"unexpected": True}), ProviderBadResponse, None),
        (httpx.ConnectError("refused"), ProviderUnavailable, None),
        (httpx.ReadTimeout("slow"), ProviderAnswerLost, None),
        (httpx.RemoteProtocolError("reset"), ProviderAnswerLost, None),
    ],
)
def test_create_errors_map_to_named_exceptions_and_are_never_retried(answer, error, code):
    script = Script(answer)
    with pytest.raises(error) as caught:
        adapter("evolink", script).create_task(request())
    assert type(caught.value) is error
    assert len(script.requests) == 1  # a retried POST could pay twice
    assert caught.value.code == code
    assert KEY not in str(caught.value)
    if error is ProviderThrottled:
        assert caught.value.retry_after == 60
    if isinstance(answer, tuple) and answer[0] == 200 and isinstance(answer[1], bytes):
        assert "{not json" in str(caught.value)  # the body's first bytes, not a KeyError


def test_reads_retry_transient_errors_a_bounded_number_of_times():
    body = {"id": "task-unified-1-abcdefgh", "status": "processing", "progress": 40}
    script = Script((503, b"busy"), httpx.ReadTimeout("slow"), (200, body))
    task = adapter("evolink", script, read_attempts=3).get_task("task-unified-1-abcdefgh")
    assert task.progress == 40 and len(script.requests) == 3

    script = Script((502, b"x"), (502, b"x"), (502, b"x"), (200, body))
    with pytest.raises(ProviderUnavailable):
        adapter("evolink", script, read_attempts=3).get_task("task-unified-1-abcdefgh")
    assert len(script.requests) == 3


def test_reads_do_not_sleep_through_long_retry_after():
    script = Script((429, {"error": {"message": "slow down"}}, {"Retry-After": "60"}))
    with pytest.raises(ProviderThrottled):
        adapter("evolink", script, read_backoff_cap=4.0).get_task("task-unified-1-abcdefgh")
    assert len(script.requests) == 1


def test_the_api_key_never_shows_in_repr_or_settings_dump():
    evolink = adapter("evolink", Script())
    assert KEY not in repr(evolink)
    assert KEY not in repr(evolink.settings)
    assert KEY not in str(evolink.settings.model_dump())


def test_unknown_provider_name_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown provider 'kling'"):
        adapter("kling", Script())


def test_provider_error_messages_never_carry_a_presigned_signature():
    signed = (
        "https://media.s3.amazonaws.com/inbox/a.mp4?X-Amz-Credential=AK%2F&X-Amz-Signature=abc123"
    )
    body = {"error": {"code": 400, "message": f"cannot fetch video_urls[0]: {signed}"}}
    with pytest.raises(ProviderRejected) as caught:
        adapter("evolink", Script((400, body))).create_task(request())
    assert "X-Amz-Signature" not in str(caught.value)
    assert "https://media.s3.amazonaws.com/inbox/a.mp4?<redacted>" in str(caught.value)


@pytest.mark.parametrize(
    ("answer", "refused"),
    [
        # Never reached the provider's application, or refused by it: nothing was created.
        (httpx.ConnectError("refused"), True),
        (httpx.ConnectTimeout("no route"), True),
        ((429, {"error": {"code": "rate_limit", "message": "slow down"}}), True),
        ((400, {"error": {"code": "invalid_request", "message": "bad"}}), True),
        ((401, {"error": {"code": "unauthorized", "message": "key"}}), True),
        ((402, {"error": {"code": "insufficient_quota", "message": "top up"}}), True),
        ((403, {"error": {"code": "forbidden", "message": "no"}}), True),
        ((404, {"error": {"code": "model_not_found", "message": "no"}}), True),
        ((422, b"unprocessable"), True),
        # May have followed a created task: a gateway's answer, a lost or unusable answer.
        ((500, {"error": {"code": 500, "message": "Internal server error"}}), False),
        ((502, b"<html>Bad Gateway</html>"), False),
        ((503, {"error": {"code": "unavailable", "message": "retry after 30 seconds"}}), False),
        ((504, b"<html>Gateway Time-out</html>"), False),
        ((408, b"<html>Request Timeout</html>"), False),
        ((409, {"error": {"code": "conflict", "message": "undocumented"}}), False),
        ((200, b'{"id": "task-unified-'), False),
        ((200, {"unexpected": True}), False),
        ((201, b"<html>ok</html>"), False),
        (httpx.ReadTimeout("slow"), False),
        (httpx.RemoteProtocolError("reset"), False),
        (httpx.WriteError("broken pipe"), False),
    ],
)
def test_create_refused_is_true_only_when_no_task_can_exist(answer, refused):
    """The create rule (docs/exactly-once.md, "The create rule"): release the claim only when the create
    provably created nothing."""
    from dropcut.providers.base import create_refused

    for name in ("evolink", "aimlapi"):
        with pytest.raises(Exception) as caught:
            adapter(name, Script(answer)).create_task(request())
        assert create_refused(caught.value) is refused, (name, answer, caught.value)


def test_create_refused_for_dropcuts_own_checks_and_not_for_a_bug_after_the_post():
    from dropcut.providers.base import create_refused

    script = Script()
    with pytest.raises(RequestInvalid) as caught:
        adapter("evolink", script).create_task(request(prompt=""))
    assert script.requests == [] and create_refused(caught.value)
    assert not create_refused(KeyError("id"))
