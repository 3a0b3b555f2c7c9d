"""The provider simulator speaks both provider APIs as documented, and injects every fault."""

from __future__ import annotations

import base64
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from devstack.media import make_sample_video
from devstack.simulator import Simulator

AIML_MODEL = "klingai/video-o1-video-to-video-edit"
EVO_MODEL = "kling-o1-video-edit"
AUTH = {"Authorization": "Bearer sim-key"}
UUID4 = r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"
REPO = Path(__file__).resolve().parents[2]


# ---- helpers ----------------------------------------------------------------------------------


def aiml_create(sim: Simulator, body: dict[str, Any], **kw: Any) -> httpx.Response:
    kw.setdefault("headers", AUTH)
    return httpx.post(f"{sim.url}/v2/video/generations", json=body, **kw)


def aiml_body(video_url: str, **extra: Any) -> dict[str, Any]:
    return {"model": AIML_MODEL, "prompt": "make it pop", "video_url": video_url, **extra}


def aiml_get(sim: Simulator, gen_id: str, **kw: Any) -> httpx.Response:
    kw.setdefault("headers", AUTH)
    q = urllib.parse.quote(gen_id, safe="")
    return httpx.get(f"{sim.url}/v2/video/generations?generation_id={q}", **kw)


def evo_create(sim: Simulator, body: dict[str, Any], **kw: Any) -> httpx.Response:
    kw.setdefault("headers", AUTH)
    return httpx.post(f"{sim.url}/v1/videos/generations", json=body, **kw)


def evo_body(video_url: str, **extra: Any) -> dict[str, Any]:
    return {"model": EVO_MODEL, "prompt": "make it pop", "video_urls": [video_url], **extra}


def evo_get(sim: Simulator, task_id: str, **kw: Any) -> httpx.Response:
    kw.setdefault("headers", AUTH)
    return httpx.get(f"{sim.url}/v1/tasks/{task_id}", **kw)


def wait_aiml(sim: Simulator, gen_id: str, timeout: float = 15) -> tuple[dict[str, Any], list[str]]:
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        data = aiml_get(sim, gen_id).json()
        if not seen or seen[-1] != data["status"]:
            seen.append(data["status"])
        if data["status"] in ("completed", "error"):
            return data, seen
        time.sleep(0.05)
    raise AssertionError(f"task {gen_id} did not finish: {seen}")


def wait_evo(sim: Simulator, task_id: str, timeout: float = 15) -> tuple[dict[str, Any], list[Any]]:
    seen: list[Any] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        data = evo_get(sim, task_id).json()
        seen.append((data["status"], data["progress"]))
        if data["status"] in ("completed", "failed"):
            return data, seen
        time.sleep(0.05)
    raise AssertionError(f"task {task_id} did not finish: {seen[-3:]}")


def wait_for(pred: Any, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


class Receiver:
    """A callback receiver: records JSON bodies, answers with scripted statuses (then 200)."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.statuses: list[int] = []
        self.script: list[int] = []
        rec = self

        class H(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                data = self.rfile.read(int(self.headers["Content-Length"]))
                status = rec.script.pop(0) if rec.script else 200
                rec.bodies.append(json.loads(data))
                rec.statuses.append(status)
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.server.shutdown()
    r.server.server_close()


# ---- aimlapi ----------------------------------------------------------------------------------


def test_aimlapi_success_path(simulator: Simulator, sample_video: Any) -> None:
    simulator.configure(queue_seconds=0.3)  # long enough for the first poll to see "queued"
    r = aiml_create(simulator, aiml_body(sample_video.url))
    assert r.status_code == 200
    created = r.json()
    assert set(created) == {"id", "status"}
    assert created["status"] == "queued"
    assert re.fullmatch(UUID4 + ":" + re.escape(AIML_MODEL), created["id"])
    data, seen = wait_aiml(simulator, created["id"])
    assert seen == ["queued", "generating", "completed"]
    assert data["id"] == created["id"]
    assert data["meta"] == {"usage": {"credits_used": 4}}
    assert "error" not in data
    url = data["video"]["url"]
    assert url.startswith(simulator.url + "/_sim/results/")
    v = httpx.get(url)
    assert v.status_code == 200
    assert v.headers["content-type"] == "video/mp4"
    assert int(v.headers["content-length"]) == len(v.content) > 1000


def test_aimlapi_generation_id_is_url_encoded(simulator: Simulator, sample_video: Any) -> None:
    gen_id = aiml_create(simulator, aiml_body(sample_video.url)).json()["id"]
    encoded = urllib.parse.quote(gen_id, safe="")
    assert "%3A" in encoded and "%2F" in encoded
    r = httpx.get(f"{simulator.url}/v2/video/generations?generation_id={encoded}", headers=AUTH)
    assert r.status_code == 200
    assert r.json()["id"] == gen_id
    # what requests/httpx do with params= works too
    r = httpx.get(
        f"{simulator.url}/v2/video/generations", params={"generation_id": gen_id}, headers=AUTH
    )
    assert r.json()["id"] == gen_id


def test_aimlapi_failed_and_never(simulator: Simulator, sample_video: Any) -> None:
    fail = aiml_create(simulator, aiml_body(sample_video.url, prompt="x [sim:fail]")).json()
    never = aiml_create(simulator, aiml_body(sample_video.url, prompt="x [sim:never]")).json()
    slow = aiml_create(simulator, aiml_body(sample_video.url, prompt="x [sim:seconds=30]")).json()
    data, seen = wait_aiml(simulator, fail["id"])
    assert seen[-1] == "error"
    assert data["status"] == "error"
    assert data["error"]["name"] == "GenerationError"
    assert data["error"]["message"]
    assert "video" not in data
    time.sleep(0.3)
    assert aiml_get(simulator, never["id"]).json() == {"id": never["id"], "status": "generating"}
    assert aiml_get(simulator, slow["id"]).json()["status"] == "generating"


def test_aimlapi_unknown_and_missing_id(simulator: Simulator) -> None:
    r = aiml_get(simulator, f"00000000-0000-4000-8000-000000000000:{AIML_MODEL}")
    assert r.status_code == 404
    assert r.json()["statusCode"] == 404
    r = httpx.get(f"{simulator.url}/v2/video/generations", headers=AUTH)
    assert r.status_code == 400


def test_aimlapi_input_failure_is_a_failed_task(
    simulator: Simulator, sample_video: Any, file_server: Any
) -> None:
    missing = aiml_create(simulator, aiml_body(file_server.url("nope.mp4"))).json()
    data, _ = wait_aiml(simulator, missing["id"])
    assert data["status"] == "error"
    assert data["error"]["name"] == "VideoDownloadFailed"


def _aiml_invalid_cases() -> list[tuple[str, Any]]:
    v = "https://example.com/v.mp4"
    ok = aiml_body(v)
    return [
        ("model wrong", {**ok, "model": "kling-o1-video-edit"}),
        ("model missing", {k: x for k, x in ok.items() if k != "model"}),
        ("prompt missing", {k: x for k, x in ok.items() if k != "prompt"}),
        ("prompt not str", {**ok, "prompt": 5}),
        ("prompt too long", {**ok, "prompt": "a" * 2501}),
        ("video_url missing", {k: x for k, x in ok.items() if k != "video_url"}),
        ("video_url http", {**ok, "video_url": "http://example.com/v.mp4"}),
        ("video_url ftp", {**ok, "video_url": "ftp://example.com/v.mp4"}),
        ("video_url not str", {**ok, "video_url": ["https://example.com/v.mp4"]}),
        ("image_list empty", {**ok, "image_list": []}),
        ("image_list 8", {**ok, "image_list": [f"https://e.com/{i}.png" for i in range(8)]}),
        ("image_list not uri", {**ok, "image_list": ["not a url"]}),
        ("elements 5", {**ok, "elements": [_element()] * 5}),
        ("element no frontal", {**ok, "elements": [{"reference_image_urls": [v]}]}),
        ("element no refs", {**ok, "elements": [{"frontal_image_url": v}]}),
        ("element 0 refs", {**ok, "elements": [_element(0)]}),
        ("element 5 refs", {**ok, "elements": [_element(5)]}),
        ("keep_audio str", {**ok, "keep_audio": "true"}),
        ("body is a list", [ok]),
    ]


def _element(refs: int = 1) -> dict[str, Any]:
    return {
        "frontal_image_url": "https://e.com/f.png",
        "reference_image_urls": [f"https://e.com/r{i}.png" for i in range(refs)],
    }


@pytest.mark.parametrize(("case", "body"), _aiml_invalid_cases(), ids=lambda x: str(x)[:20])
def test_aimlapi_validation(simulator: Simulator, case: str, body: Any) -> None:
    r = aiml_create(simulator, body)
    assert r.status_code == 400, case
    data = r.json()
    assert data["statusCode"] == 400
    assert data["error"] == "Bad Request"
    assert isinstance(data["message"], str) and data["message"]
    assert simulator.stats()["tasks_created"] == 0


def test_aimlapi_validation_accepts_limits(simulator: Simulator, sample_video: Any) -> None:
    simulator.configure(queue_seconds=60)  # stay queued: nothing is fetched for the edit
    ok = [
        aiml_body(sample_video.url, prompt="a" * 2500),
        aiml_body(sample_video.url, image_list=[f"https://e.com/{i}.png" for i in range(7)]),
        aiml_body(sample_video.url, elements=[_element(4)] * 4, keep_audio=True),
    ]
    for body in ok:
        assert aiml_create(simulator, body).status_code == 200
    data_uri = "data:video/mp4;base64," + base64.b64encode(sample_video.path.read_bytes()).decode()
    assert aiml_create(simulator, aiml_body(data_uri)).status_code == 200
    assert simulator.stats()["tasks_created"] == 4


def test_invalid_json_body(simulator: Simulator) -> None:
    r = httpx.post(f"{simulator.url}/v2/video/generations", content=b"{nope", headers=AUTH)
    assert r.status_code == 400 and r.json()["statusCode"] == 400
    r = httpx.post(f"{simulator.url}/v1/videos/generations", content=b"{nope", headers=AUTH)
    assert r.status_code == 400 and r.json()["error"]["type"] == "invalid_request_error"


# ---- auth -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": "sim-key"}]
)
def test_auth_401(simulator: Simulator, sample_video: Any, headers: dict[str, str]) -> None:
    r = aiml_create(simulator, aiml_body(sample_video.url), headers=headers)
    assert r.status_code == 401
    assert r.json() == {
        "statusCode": 401,
        "message": "Unauthorized: invalid or missing API key",
        "error": "Unauthorized",
    }
    assert aiml_get(simulator, "x", headers=headers).status_code == 401
    r = evo_create(simulator, evo_body(sample_video.url), headers=headers)
    assert r.status_code == 401
    assert r.json() == {
        "error": {
            "code": 401,
            "message": "Invalid or expired token",
            "type": "authentication_error",
        }
    }
    assert evo_get(simulator, "task-unified-1-abcdefgh", headers=headers).status_code == 401
    assert simulator.stats()["tasks_created"] == 0


def test_api_keys_configurable(simulator: Simulator, sample_video: Any) -> None:
    simulator.configure(api_keys=["k1", "k2"])
    assert aiml_create(simulator, aiml_body(sample_video.url)).status_code == 401
    r = aiml_create(simulator, aiml_body(sample_video.url), headers={"Authorization": "Bearer k2"})
    assert r.status_code == 200


# ---- evolink ----------------------------------------------------------------------------------


def test_evolink_success_path(simulator: Simulator, sample_video: Any) -> None:
    simulator.configure(queue_seconds=0.3)
    r = evo_create(simulator, evo_body(sample_video.url))
    assert r.status_code == 200
    c = r.json()
    assert re.fullmatch(r"task-unified-\d{10}-[a-z0-9]{8}", c["id"])
    assert abs(c["created"] - time.time()) < 5
    assert c == {
        "id": c["id"],
        "object": "video.generation.task",
        "created": c["created"],
        "model": EVO_MODEL,
        "status": "pending",
        "progress": 0,
        "type": "video",
        "task_info": {"can_cancel": True, "estimated_time": 1, "video_duration": 4},
        "usage": {"billing_rule": "per_second", "credits_reserved": 4, "user_group": "default"},
    }
    data, seen = wait_evo(simulator, c["id"])
    statuses = [s for s, _ in seen]
    assert statuses[0] == "pending"
    assert "processing" in statuses
    progress = [p for s, p in seen if s == "processing"]
    assert progress == sorted(progress) and 0 < progress[0] < 100
    assert data["status"] == "completed" and data["progress"] == 100
    assert data["object"] == "video.generation.task" and data["model"] == EVO_MODEL
    assert len(data["results"]) == 1 and "error" not in data
    assert httpx.get(data["results"][0]).status_code == 200


@pytest.mark.parametrize(("seconds", "billed"), [(2.0, 3), (12.0, 10)])
def test_evolink_billing(
    simulator: Simulator, file_server: Any, seconds: float, billed: int
) -> None:
    name = f"clip-{seconds}.mp4"
    make_sample_video(file_server.root / name, seconds=seconds, width=64, height=48, audio=False)
    simulator.configure(queue_seconds=60)
    c = evo_create(simulator, evo_body(file_server.url(name))).json()
    assert c["task_info"]["video_duration"] == round(seconds)
    assert c["usage"]["credits_reserved"] == billed


def test_evolink_failed(simulator: Simulator, sample_video: Any) -> None:
    c = evo_create(simulator, evo_body(sample_video.url, prompt="no [sim:fail]")).json()
    data, _ = wait_evo(simulator, c["id"])
    assert data["status"] == "failed"
    assert data["error"]["code"] == "generation_failed"
    assert isinstance(data["error"]["code"], str) and data["error"]["message"]
    assert "results" not in data


@pytest.mark.parametrize(
    ("setup", "code"),
    [
        ("missing", "video_download_failed"),
        ("text", "unsupported_video_format"),
        ("big", "video_too_large"),
    ],
)
def test_evolink_media_checks_fail_the_task(
    simulator: Simulator, sample_video: Any, file_server: Any, setup: str, code: str
) -> None:
    url = sample_video.url
    if setup == "missing":
        url = file_server.url("missing.mp4")
    elif setup == "text":
        url = file_server.put("notes.mp4", b"this is not a video\n" * 100)
    else:
        simulator.configure(max_video_bytes=10_000)
    r = evo_create(simulator, evo_body(url))
    assert r.status_code == 200
    data, _ = wait_evo(simulator, r.json()["id"])
    assert data["status"] == "failed"
    assert data["error"]["code"] == code


def test_evolink_task_ids(simulator: Simulator) -> None:
    r = evo_get(simulator, "abc123")
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "invalid_task_id"
    r = evo_get(simulator, "task-unified-1757169743-zzzzzzzz")
    assert r.status_code == 404
    assert r.json()["error"]["type"] == "not_found_error"


def _evo_invalid_cases() -> list[tuple[str, Any, str | None]]:
    ok = evo_body("https://example.com/v.mp4")
    return [
        ("prompt missing", {k: x for k, x in ok.items() if k != "prompt"}, "prompt"),
        ("prompt too long", {**ok, "prompt": "a" * 5001}, "prompt"),
        ("video_urls missing", {k: x for k, x in ok.items() if k != "video_urls"}, "video_urls"),
        ("video_urls empty", {**ok, "video_urls": []}, "video_urls"),
        ("video_urls two", {**ok, "video_urls": ["https://e.com/a.mp4"] * 2}, "video_urls"),
        ("video_urls str", {**ok, "video_urls": "https://e.com/a.mp4"}, "video_urls"),
        ("video_urls bad", {**ok, "video_urls": ["nope"]}, "video_urls"),
        (
            "image_urls 5",
            {**ok, "image_urls": [f"https://e.com/{i}.png" for i in range(5)]},
            "image_urls",
        ),
        ("image_urls empty", {**ok, "image_urls": []}, "image_urls"),
        ("image_urls gif", {**ok, "image_urls": ["https://e.com/a.gif"]}, "image_urls"),
        ("aspect 4:3", {**ok, "aspect_ratio": "4:3"}, "aspect_ratio"),
        ("sound str", {**ok, "keep_original_sound": "true"}, "keep_original_sound"),
        ("cb http", {**ok, "callback_url": "http://example.com/hook"}, "callback_url"),
        ("cb loopback", {**ok, "callback_url": "https://127.0.0.1/hook"}, "callback_url"),
        ("cb localhost", {**ok, "callback_url": "https://localhost/hook"}, "callback_url"),
        ("cb 10/8", {**ok, "callback_url": "https://10.1.2.3/hook"}, "callback_url"),
        ("cb 172.16", {**ok, "callback_url": "https://172.20.0.1/hook"}, "callback_url"),
        ("cb 192.168", {**ok, "callback_url": "https://192.168.1.10/hook"}, "callback_url"),
        ("cb link-local", {**ok, "callback_url": "https://169.254.169.254/x"}, "callback_url"),
        ("cb ipv6 loopback", {**ok, "callback_url": "https://[::1]/hook"}, "callback_url"),
        ("cb too long", {**ok, "callback_url": "https://e.com/" + "a" * 2040}, "callback_url"),
        ("body list", [ok], None),
    ]


@pytest.mark.parametrize(("case", "body", "param"), _evo_invalid_cases(), ids=lambda x: str(x)[:20])
def test_evolink_validation(simulator: Simulator, case: str, body: Any, param: str | None) -> None:
    r = evo_create(simulator, body)
    assert r.status_code == 400, case
    err = r.json()["error"]
    assert err["code"] == 400
    assert err["type"] == "invalid_request_error"
    assert err["message"]
    assert err.get("param") == param
    assert set(err) <= {"code", "message", "type", "param"}
    assert simulator.stats()["tasks_created"] == 0


def test_evolink_unknown_model_404(simulator: Simulator) -> None:
    r = evo_create(simulator, evo_body("https://example.com/v.mp4", model="kling-v9"))
    assert r.status_code == 404
    assert r.json() == {
        "error": {
            "code": 404,
            "message": "Specified model not found",
            "type": "not_found_error",
            "param": "model",
            "fallback_suggestion": "kling-o1-video-edit",
        }
    }


def test_evolink_validation_accepts_limits(simulator: Simulator, sample_video: Any) -> None:
    simulator.configure(queue_seconds=60)
    body = evo_body(sample_video.url, prompt="a" * 5000)
    del body["model"]  # the documented default
    assert evo_create(simulator, body).status_code == 200
    imgs = [
        "https://e.com/a.jpg",
        "https://e.com/b.jpeg",
        "https://e.com/c.png",
        "https://e.com/d.webp?x=1",
    ]
    for ar in ("16:9", "9:16", "1:1"):
        r = evo_create(
            simulator,
            evo_body(sample_video.url, image_urls=imgs, aspect_ratio=ar, keep_original_sound=False),
        )
        assert r.status_code == 200
    r = evo_create(
        simulator,
        evo_body(sample_video.url, callback_url="https://hooks.example.com/" + "a" * 2000),
    )
    assert r.status_code == 200
    assert simulator.stats()["tasks_created"] == 5


# ---- results, limits, credits -----------------------------------------------------------------


def test_result_url_expires(simulator: Simulator, sample_video: Any) -> None:
    simulator.configure(result_url_ttl_seconds=1)
    c = evo_create(simulator, evo_body(sample_video.url)).json()
    data, _ = wait_evo(simulator, c["id"])
    url = data["results"][0]
    assert httpx.get(url).status_code == 200
    time.sleep(1.2)
    r = httpx.get(url)
    assert r.status_code == 403
    assert "Request has expired" in r.text


def test_concurrency_limit_429(simulator: Simulator, sample_video: Any) -> None:
    simulator.configure(concurrency_limit=2)
    a = aiml_create(simulator, aiml_body(sample_video.url, prompt="[sim:never]"))
    b = evo_create(simulator, evo_body(sample_video.url, prompt="[sim:never]"))
    assert a.status_code == b.status_code == 200
    r = evo_create(simulator, evo_body(sample_video.url))
    assert r.status_code == 429
    assert r.json()["error"]["type"] == "rate_limit_error"
    assert r.json()["error"]["fallback_suggestion"] == "retry after 60 seconds"
    r = aiml_create(simulator, aiml_body(sample_video.url))
    assert r.status_code == 429 and r.json()["statusCode"] == 429
    s = simulator.stats()
    assert s["tasks_created"] == 2 and s["max_in_flight"] == 2 and s["in_flight"] == 2
    assert s["status_429"] == 2
    simulator.configure(concurrency_limit=3)
    assert evo_create(simulator, evo_body(sample_video.url)).status_code == 200


def test_credits_402(simulator: Simulator, sample_video: Any) -> None:
    simulator.configure(credits=5)
    assert evo_create(simulator, evo_body(sample_video.url)).status_code == 200  # costs 4
    r = evo_create(simulator, evo_body(sample_video.url))
    assert r.status_code == 402
    assert r.json() == {
        "error": {
            "code": 402,
            "message": "Insufficient quota",
            "type": "insufficient_quota_error",
            "fallback_suggestion": "https://ai.odkkk.com/apiv1/dashboard/billing",
        }
    }
    r = aiml_create(simulator, aiml_body(sample_video.url))
    assert r.status_code == 402 and r.json()["statusCode"] == 402
    s = simulator.stats()
    assert s["tasks_created"] == 1 and s["credits_remaining"] == 1
    simulator.configure(credits=0)
    assert evo_create(simulator, evo_body(sample_video.url)).status_code == 402


# ---- faults -----------------------------------------------------------------------------------


def test_fault_throttle(simulator: Simulator, sample_video: Any) -> None:
    simulator.configure(
        faults=[
            {"api": "evolink", "op": "create", "kind": "throttle", "times": 2, "retry_after": 7}
        ]
    )
    assert aiml_create(simulator, aiml_body(sample_video.url)).status_code == 200  # other api
    for _ in range(2):
        r = evo_create(simulator, evo_body(sample_video.url))
        assert r.status_code == 429
        assert r.headers["Retry-After"] == "7"
        assert r.json() == {
            "error": {
                "code": 429,
                "message": "Rate limit exceeded",
                "type": "rate_limit_error",
                "fallback_suggestion": "retry after 60 seconds",
            }
        }
    assert evo_create(simulator, evo_body(sample_video.url)).status_code == 200
    s = simulator.stats()
    assert s["tasks_created_by_api"] == {"aimlapi": 1, "evolink": 1}
    assert s["status_429"] == 2
    assert s["requests"]["evolink.create"] == 3


def test_fault_throttle_aimlapi_query(simulator: Simulator, sample_video: Any) -> None:
    gen_id = aiml_create(simulator, aiml_body(sample_video.url)).json()["id"]
    simulator.configure(faults=[{"api": "aimlapi", "op": "query", "kind": "throttle"}])
    r = aiml_get(simulator, gen_id)
    assert r.status_code == 429 and r.headers["Retry-After"] == "1"
    assert r.json()["statusCode"] == 429
    assert aiml_get(simulator, gen_id).status_code == 200


@pytest.mark.parametrize(
    ("status", "etype", "message", "fallback"),
    [
        (500, "internal_server_error", "Internal server error", "try again later"),
        (502, "upstream_error", "Upstream AI service unavailable", "try different model"),
        (
            503,
            "service_unavailable_error",
            "Service temporarily unavailable",
            "retry after 30 seconds",
        ),
    ],
)
def test_fault_unavailable(
    simulator: Simulator, sample_video: Any, status: int, etype: str, message: str, fallback: str
) -> None:
    simulator.configure(faults=[{"op": "*", "kind": "unavailable", "status": status, "times": 2}])
    r = evo_create(simulator, evo_body(sample_video.url))
    assert r.status_code == status
    assert r.json() == {
        "error": {
            "code": status,
            "message": message,
            "type": etype,
            "fallback_suggestion": fallback,
        }
    }
    r = aiml_create(simulator, aiml_body(sample_video.url))
    assert r.status_code == status and r.json()["statusCode"] == status
    assert simulator.stats()["tasks_created"] == 0
    assert evo_create(simulator, evo_body(sample_video.url)).status_code == 200


def test_fault_slow(simulator: Simulator, sample_video: Any) -> None:
    gen_id = aiml_create(simulator, aiml_body(sample_video.url)).json()["id"]
    simulator.configure(faults=[{"op": "query", "kind": "slow", "delay": 1.0}])
    with pytest.raises(httpx.ReadTimeout):
        aiml_get(simulator, gen_id, timeout=0.3)
    assert aiml_get(simulator, gen_id, timeout=2).status_code == 200
    # a slow create answers late (503) and creates nothing
    simulator.configure(faults=[{"op": "create", "kind": "slow", "delay": 1.0}])
    with pytest.raises(httpx.ReadTimeout):
        evo_create(simulator, evo_body(sample_video.url), timeout=0.3)
    assert simulator.stats()["tasks_created"] == 1


def test_fault_slow_answers_normally_when_waited_for(
    simulator: Simulator, sample_video: Any
) -> None:
    gen_id = aiml_create(simulator, aiml_body(sample_video.url)).json()["id"]
    simulator.configure(faults=[{"op": "query", "kind": "slow", "delay": 0.3}])
    t0 = time.monotonic()
    assert aiml_get(simulator, gen_id).status_code == 200
    assert time.monotonic() - t0 >= 0.3


def test_fault_reset(simulator: Simulator, sample_video: Any) -> None:
    simulator.configure(faults=[{"op": "create", "kind": "reset", "times": 2}])
    with pytest.raises(httpx.TransportError):
        evo_create(simulator, evo_body(sample_video.url))
    with pytest.raises(httpx.TransportError):
        aiml_create(simulator, aiml_body(sample_video.url))
    assert simulator.stats()["tasks_created"] == 0
    assert evo_create(simulator, evo_body(sample_video.url)).status_code == 200


def test_fault_malformed(simulator: Simulator, sample_video: Any) -> None:
    simulator.configure(faults=[{"kind": "malformed", "times": -1, "api": "evolink"}])
    for _ in range(3):
        r = evo_create(simulator, evo_body(sample_video.url))
        assert r.status_code == 200
        with pytest.raises(json.JSONDecodeError):
            r.json()
    assert simulator.stats()["tasks_created"] == 0
    assert simulator.stats()["faults_pending"][0]["times"] == -1


def test_fault_accept_then_slow_creates_exactly_one_task(
    simulator: Simulator, sample_video: Any
) -> None:
    simulator.configure(faults=[{"op": "create", "kind": "accept_then_slow", "delay": 1.5}])
    with pytest.raises(httpx.ReadTimeout):
        evo_create(simulator, evo_body(sample_video.url, prompt="late"), timeout=0.3)
    s = simulator.stats()
    assert s["tasks_created"] == 1
    (task,) = s["tasks"]
    assert task["prompt"] == "late"
    data, _ = wait_evo(simulator, task["id"])  # the provider did accept it
    assert data["status"] == "completed"
    assert simulator.stats()["tasks_created"] == 1


def test_fault_on_result_download(simulator: Simulator, sample_video: Any) -> None:
    c = evo_create(simulator, evo_body(sample_video.url)).json()
    data, _ = wait_evo(simulator, c["id"])
    simulator.configure(faults=[{"op": "result", "kind": "unavailable", "status": 502}])
    assert httpx.get(data["results"][0]).status_code == 502
    assert httpx.get(data["results"][0]).status_code == 200


def test_unknown_fault_kind_rejected(simulator: Simulator) -> None:
    r = httpx.post(f"{simulator.url}/_sim/config", json={"faults": [{"kind": "gremlins"}]})
    assert r.status_code == 400
    r = httpx.post(f"{simulator.url}/_sim/config", json={"no_such_field": 1})
    assert r.status_code == 400


# ---- callbacks --------------------------------------------------------------------------------


def _cb_task(sim: Simulator, video_url: str, receiver: Receiver, prompt: str = "go") -> str:
    sim.configure(allow_insecure_callbacks=True)
    r = evo_create(sim, evo_body(video_url, prompt=prompt, callback_url=receiver.url))
    assert r.status_code == 200, r.text
    return str(r.json()["id"])


def test_callback_delivered(simulator: Simulator, sample_video: Any, receiver: Receiver) -> None:
    task_id = _cb_task(simulator, sample_video.url, receiver)
    wait_for(lambda: len(receiver.bodies) == 1)
    body = receiver.bodies[0]
    assert body == evo_get(simulator, task_id).json()
    assert body["status"] == "completed" and body["results"]
    time.sleep(0.3)
    s = simulator.stats()
    assert (s["callbacks_sent"], s["callbacks_delivered"], s["callbacks_failed"]) == (1, 1, 0)


def test_callback_for_failed_task(
    simulator: Simulator, sample_video: Any, receiver: Receiver
) -> None:
    _cb_task(simulator, sample_video.url, receiver, prompt="[sim:fail]")
    wait_for(lambda: len(receiver.bodies) == 1)
    assert receiver.bodies[0]["status"] == "failed"
    assert receiver.bodies[0]["error"]["code"] == "generation_failed"


def test_callback_retried_after_500(
    simulator: Simulator, sample_video: Any, receiver: Receiver
) -> None:
    receiver.script = [500]
    _cb_task(simulator, sample_video.url, receiver)
    wait_for(lambda: len(receiver.bodies) == 2)
    assert receiver.statuses == [500, 200]
    assert receiver.bodies[0] == receiver.bodies[1]
    time.sleep(0.8)
    s = simulator.stats()
    assert (s["callbacks_sent"], s["callbacks_delivered"]) == (2, 1)


def test_callback_gives_up_after_three_retries(
    simulator: Simulator, sample_video: Any, receiver: Receiver
) -> None:
    receiver.script = [500, 502, 503, 500, 500]
    _cb_task(simulator, sample_video.url, receiver)
    wait_for(lambda: simulator.stats()["callbacks_failed"] == 1)
    assert receiver.statuses == [500, 502, 503, 500]
    assert simulator.stats()["callbacks_sent"] == 4


def test_callback_duplicate(simulator: Simulator, sample_video: Any, receiver: Receiver) -> None:
    simulator.configure(faults=[{"op": "callback", "kind": "duplicate_callback", "count": 3}])
    _cb_task(simulator, sample_video.url, receiver)
    wait_for(lambda: len(receiver.bodies) == 3)
    assert receiver.bodies[0] == receiver.bodies[1] == receiver.bodies[2]
    time.sleep(0.3)
    assert len(receiver.bodies) == 3


def test_callback_lost(simulator: Simulator, sample_video: Any, receiver: Receiver) -> None:
    simulator.configure(faults=[{"op": "callback", "kind": "lost_callback"}])
    task_id = _cb_task(simulator, sample_video.url, receiver)
    data, _ = wait_evo(simulator, task_id)
    assert data["status"] == "completed"  # polling still tells the truth
    time.sleep(0.5)
    assert receiver.bodies == []
    s = simulator.stats()
    assert s["callbacks_dropped"] == 1 and s["callbacks_sent"] == 0


def test_callback_out_of_order(simulator: Simulator, sample_video: Any, receiver: Receiver) -> None:
    simulator.configure(faults=[{"op": "callback", "kind": "out_of_order_callback"}])
    _cb_task(simulator, sample_video.url, receiver)
    wait_for(lambda: len(receiver.bodies) == 2)
    final, stale = receiver.bodies
    assert final["status"] == "completed" and final["results"]
    assert stale["status"] == "processing" and "results" not in stale
    assert stale["id"] == final["id"]


def test_callback_fault_targets_one_task(
    simulator: Simulator, sample_video: Any, receiver: Receiver
) -> None:
    simulator.configure(
        faults=[{"op": "callback", "kind": "lost_callback", "prompt_contains": "drop-me"}]
    )
    kept = _cb_task(simulator, sample_video.url, receiver, prompt="keep")
    _cb_task(simulator, sample_video.url, receiver, prompt="drop-me")

    # A callback is accounted for once delivered or dropped (delivery runs on its own thread).
    def accounted() -> int:
        stats = simulator.stats()
        return int(stats["callbacks_delivered"] + stats["callbacks_dropped"])

    wait_for(lambda: accounted() == 2)
    assert [body["id"] for body in receiver.bodies] == [kept]
    assert simulator.stats()["callbacks_dropped"] == 1


def test_insecure_callback_refused_unless_allowed(
    simulator: Simulator, sample_video: Any, receiver: Receiver
) -> None:
    r = evo_create(simulator, evo_body(sample_video.url, callback_url=receiver.url))
    assert r.status_code == 400
    assert r.json()["error"]["param"] == "callback_url"
    simulator.configure(allow_insecure_callbacks=True)
    r = evo_create(simulator, evo_body(sample_video.url, callback_url=receiver.url))
    assert r.status_code == 200


# ---- stats & control API ----------------------------------------------------------------------


def test_stats_and_control_api_over_http(simulator: Simulator, sample_video: Any) -> None:
    base = simulator.url
    r = httpx.post(f"{base}/_sim/config", json={"task_seconds": 0.2, "credits": 100})
    assert r.status_code == 200 and r.json()["task_seconds"] == 0.2
    a = aiml_create(simulator, aiml_body(sample_video.url, prompt="one")).json()
    e = evo_create(simulator, evo_body(sample_video.url, prompt="two")).json()
    e2 = evo_create(simulator, evo_body(sample_video.url, prompt="three [sim:never]")).json()
    wait_aiml(simulator, a["id"])
    wait_evo(simulator, e["id"])
    s = httpx.get(f"{base}/_sim/stats").json()
    assert s["tasks_created"] == 3
    assert s["tasks_created_by_api"] == {"aimlapi": 1, "evolink": 2}
    assert s["max_in_flight"] == 3 and s["in_flight"] == 1
    assert s["requests"]["aimlapi.create"] == 1 and s["requests"]["evolink.create"] == 2
    assert s["requests"]["aimlapi.query"] >= 2
    assert s["credits_remaining"] == 100 - 12
    tasks = {t["id"]: t for t in s["tasks"]}
    assert tasks[a["id"]]["api"] == "aimlapi" and tasks[a["id"]]["status"] == "completed"
    assert tasks[e["id"]]["prompt"] == "two"
    assert tasks[e2["id"]]["status"] == "processing"
    assert httpx.post(f"{base}/_sim/reset").json() == {"ok": True}
    s = httpx.get(f"{base}/_sim/stats").json()
    assert s["tasks_created"] == 0 and s["tasks"] == [] and s["requests"] == {}
    assert evo_get(simulator, e["id"]).status_code == 404
    httpx.post(f"{base}/_sim/config", json={"faults": [{"kind": "throttle"}]})
    simulator.reset()
    assert simulator.stats()["faults_pending"] == []
    assert httpx.get(f"{base}/_sim/config").json()["task_seconds"] == 0.2
    httpx.post(f"{base}/_sim/reset", json={"config": True})
    assert httpx.get(f"{base}/_sim/config").json()["task_seconds"] == 0.5


def test_cli_runs_and_stops_on_sigterm() -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "devstack.simulator", "--port", "0", "--task-seconds", "1"],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
        cwd=REPO,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        m = re.fullmatch(r"dropcut simulator listening on (http://127\.0\.0\.1:\d+)", line)
        assert m, line
        assert httpx.get(f"{m.group(1)}/_sim/health").json() == {"ok": True}
        assert httpx.get(f"{m.group(1)}/_sim/config").json()["task_seconds"] == 1.0
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
