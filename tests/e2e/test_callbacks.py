"""Callback mode end to end: simulator callbacks -> local HTTP API -> webhook Lambda -> the
waiting execution, with the status check as the safety net."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest

from devstack.local_app import LocalApp
from dropcut.model.jobs import job_id_for


def states_entered(app: LocalApp, job_id: str) -> list[str]:
    execution = next(e for e in app.stack.executions("JobStateMachine") if e["name"] == job_id)
    history = app.stack.history(execution["executionArn"])
    return [
        e["stateEnteredEventDetails"]["name"] for e in history if "stateEnteredEventDetails" in e
    ]


def history_of(app: LocalApp, job_id: str) -> list[dict[str, Any]]:
    execution = next(e for e in app.stack.executions("JobStateMachine") if e["name"] == job_id)
    return app.stack.history(execution["executionArn"])


def start(app: LocalApp, key: str, clip: bytes, prompt: str) -> str:
    put = app.put(key, clip, metadata={"prompt": prompt})
    return job_id_for(app.bucket, key, put["VersionId"])


def simulator_task(app: LocalApp, task_id: str) -> dict[str, Any]:
    return next(t for t in app.simulator.stats()["tasks"] if t["id"] == task_id)


def test_a_callback_resumes_the_job_without_status_polls(app: LocalApp, clip):
    # An estimate of 25 s: the first silence trusted (2 x 25 s) outlasts the callback even on
    # 2 busy cores (the default, the task's 4 s, let the safety net check first under load).
    app.simulator.configure(estimated_time=25)
    key = "inbox/cb/success.mp4"
    job_id = start(app, key, clip, "monochrome")
    ending = app.wait_for_ending(key)
    assert ending.succeeded, ending.error
    job = app.job(key)
    assert job is not None and job["callback_outcome"] == "succeeded"
    states = states_entered(app, job_id)
    assert "WaitForCallback" in states and "CallbackOutcome" in states
    assert "CheckStatus" not in states and "WaitForProvider" not in states
    assert states.count("Finalize") == 1
    stats = app.simulator.stats()
    assert stats["tasks_created"] == 1 and stats["callbacks_delivered"] == 1
    task = simulator_task(app, job["task_id"])
    assert [c["status"] for c in task["callbacks"]] == [200]


def test_a_callback_before_the_token_is_stored_is_not_lost(app: LocalApp, clip):
    # The estimate sets the first silence (2 x 5 s): longer than the hold below.
    app.simulator.configure(task_seconds=0.3, queue_seconds=0.0, estimated_time=5)
    key = "inbox/cb/early.mp4"
    arm = app.stack.pool("ArmCallbackFunction")
    with arm.held():
        job_id = start(app, key, clip, "sepia")
        # The provider has called back and the webhook stored the outcome; no token yet.
        job = app.wait_for_job(key, lambda j: j.get("callback_outcome") == "succeeded")
        assert "callback_token" not in job
        assert arm.held_invocations >= 1
    ending = app.wait_for_ending(key)
    assert ending.succeeded, ending.error
    states = states_entered(app, job_id)
    assert "CheckStatus" not in states, "resumed by ArmCallback, not by the safety net"
    assert app.simulator.stats()["callbacks_delivered"] == 1


def test_a_callback_repeated_three_times_finalizes_once(app: LocalApp, clip):
    app.simulator.add_fault(api="evolink", op="callback", kind="duplicate_callback", count=3)
    key = "inbox/cb/repeated.mp4"
    job_id = start(app, key, clip, "mirror")
    ending = app.wait_for_ending(key)
    assert ending.succeeded, ending.error
    job = app.job(key)
    assert job is not None
    deadline = time.monotonic() + 10
    while len(simulator_task(app, job["task_id"])["callbacks"]) < 3 and time.monotonic() < deadline:
        time.sleep(0.1)
    answers = [c["status"] for c in simulator_task(app, job["task_id"])["callbacks"]]
    assert answers == [200, 200, 200]  # the repeats are answered "already handled"
    assert states_entered(app, job_id).count("Finalize") == 1
    assert app.keys("outbox/cb/repeated") == [
        "outbox/cb/repeated.edited.mp4",
        "outbox/cb/repeated.edited.result.json",
        "outbox/cb/repeated.edited.sheet.png",
    ]
    finalized = [
        e
        for e in history_of(app, job_id)
        if e["type"] == "LambdaFunctionScheduled"
        and "Finalize" in e["lambdaFunctionScheduledEventDetails"]["resource"]
    ]
    assert len(finalized) == 1


def test_a_lost_callback_is_caught_by_the_safety_net(app: LocalApp, clip):
    app.simulator.add_fault(api="evolink", op="callback", kind="lost_callback")
    key = "inbox/cb/lost.mp4"
    job_id = start(app, key, clip, "invert")
    ending = app.wait_for_ending(key, timeout=60)
    assert ending.succeeded, ending.error
    assert app.simulator.stats()["callbacks_dropped"] == 1
    states = states_entered(app, job_id)
    assert states.index("WaitForCallback") < states.index("CheckStatus") < states.index("Finalize")
    timed_out = [e for e in history_of(app, job_id) if e["type"] == "TaskTimedOut"]
    assert timed_out, "the wait ended by its heartbeat, not by a callback"


def post(url: str, body: Any = None, raw: bytes | None = None) -> httpx.Response:
    content = raw if raw is not None else json.dumps(body).encode()
    return httpx.post(
        url, content=content, headers={"Content-Type": "application/json"}, timeout=15
    )


def test_forged_and_malformed_callbacks_change_nothing(app: LocalApp, clip, caplog):
    caplog.set_level("INFO", logger="devstack.lambda")
    key = "inbox/cb/forged.mp4"
    job_id = start(app, key, clip, "warm [sim:seconds=8]")
    job = app.wait_for_job(key, lambda j: "callback_token" in j)
    signer = app.callback_signer()
    base = signer.base_url
    other_job = job_id_for(app.bucket, "inbox/cb/other.mp4", "v1")
    claim = {
        "id": job["task_id"],
        "object": "video.generation.task",
        "status": "completed",
        "progress": 100,
        "results": ["http://127.0.0.1:9/forged.mp4"],
    }

    answers = {
        "no capability": post(f"{base}/callbacks/{job_id}", claim),
        "wrong capability": post(f"{base}/callbacks/{job_id}?cap={'0' * 64}", claim),
        "another job's capability": post(
            f"{base}/callbacks/{job_id}?cap={signer.capability(other_job)}", claim
        ),
        "unknown job": post(signer.url_for(other_job), claim),
        "not JSON": post(signer.url_for(job_id), raw=b"{not json"),
        "wrong shape": post(signer.url_for(job_id), {"status": "completed"}),
        "still running": post(signer.url_for(job_id), claim),
        "another task": post(signer.url_for(job_id), {**claim, "id": "task-unified-1-forged"}),
        "nested 100,000 deep": post(signer.url_for(job_id), raw=b"[" * 100_000),
        "a 400-digit number": post(
            signer.url_for(job_id),
            raw=json.dumps(claim).encode()[:-1] + b', "credits": ' + b"9" * 400 + b"}",
        ),
    }
    codes = {name: answer.status_code for name, answer in answers.items()}
    assert codes == {
        "no capability": 401,
        "wrong capability": 401,
        "another job's capability": 401,
        "unknown job": 404,
        "not JSON": 400,
        "wrong shape": 400,
        "still running": 409,
        "another task": 400,
        "nested 100,000 deep": 400,
        "a 400-digit number": 400,
    }
    # A 401 says nothing else, whatever the job.
    assert answers["no capability"].json() == answers["another job's capability"].json()

    after = app.job(key)
    assert after is not None
    assert after["status"] == "running" and "callback_outcome" not in after
    assert states_entered(app, job_id)[-1] == "WaitForCallback"

    # The real callback still finishes the job, once.
    ending = app.wait_for_ending(key, timeout=60)
    assert ending.succeeded, ending.error
    assert states_entered(app, job_id).count("Finalize") == 1
    assert ending.result["provider_task_id"] == job["task_id"]
    assert app.keys("outbox/cb/forged") == [
        "outbox/cb/forged.edited.mp4",
        "outbox/cb/forged.edited.result.json",
        "outbox/cb/forged.edited.sheet.png",
    ]

    logs = "\n".join(r.getMessage() for r in caplog.records)
    assert "callback answered" in logs
    assert '"CallbacksRejected"' in logs, "rejected callbacks are counted"
    assert signer.capability(job_id) not in logs
    assert signer.capability(other_job) not in logs
    assert "sim-key" not in logs


@pytest.mark.parametrize("path", ["/callbacks", "/other", "/callbacks/x/y"])
def test_other_routes_are_not_found(app: LocalApp, path):
    assert app.stack.http_api is not None
    answer = post(app.stack.http_api.url + path, {})
    assert answer.status_code == 404
