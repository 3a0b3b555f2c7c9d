"""Never a second paid task, never a paid result thrown away, on the real local stack.

- A provider that creates the task and then answers through its gateway with a 5xx, a 408 or a
  cut-off 2xx gets exactly one task per job. With callbacks (evolink) the callback names the task
  and the job adopts it, is stored and is charged once; without them (aimlapi:
  test_paid_once_polled.py) the job ends `task_creation_uncertain`.
- A result link that answers 404 for a while after the task completed is copied once it answers;
  one dead for good ends `result_copy_failed` (the task and its link's expiry in the report), and
  `dropcut retry` copies it from the recorded task with no new task.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from typer.testing import CliRunner

from devstack.local_app import LocalApp, local_app
from dropcut.model.jobs import job_id_for
from dropcut_cli.app import app as cli
from tests.e2e.conftest import code_root

pytestmark = [pytest.mark.own_app, pytest.mark.usefixtures("wide_console")]

#: The simulator's credits per task second and the stack's estimate price: a budget large
#: enough for every job here, so the spend shows what each job was charged.
BUDGET = {"DailyCreditBudget": "1000", "CreditsPerBilledSecond": "1", "JobDeadlineSeconds": "30"}
#: How long Finalize keeps trying a ready result's copy here (the stack's default is an hour).
COPY_WINDOW_SECONDS = 20
GATEWAY_ANSWERS = [502, 503, 504, 408, 200]


@pytest.fixture(scope="module")
def evolink_app() -> Iterator[LocalApp]:
    parameters = {**BUDGET, "ResultCopyWindowSeconds": str(COPY_WINDOW_SECONDS)}
    with local_app("evolink", parameters, code_root=code_root()) as running:
        yield running


def drop_behind_a_gateway(app: LocalApp, key: str, clip: bytes, status: int) -> str:
    app.simulator.configure(
        task_seconds=1.0,
        queue_seconds=0.1,
        faults=[{"api": "*", "op": "create", "kind": "accept_then_error", "status": status}],
    )
    put = app.put(key, clip, metadata={"prompt": "sepia"})
    return job_id_for(app.bucket, key, put["VersionId"])


def test_evolink_adopts_every_task_its_gateway_hid_and_pays_once(
    evolink_app: LocalApp, clip: bytes
):
    """One clip per gateway answer, dropped together: the simulator's rules are used in order,
    one create each (a 502, a 503, a 504, a 408 and a cut-off 200), and each create made a task."""
    app = evolink_app
    spent_before = app.slot_pool().spent()
    tasks_before = app.simulator.stats()["tasks_created"]
    app.simulator.configure(
        task_seconds=1.0,
        queue_seconds=0.1,
        faults=[
            {"api": "*", "op": "create", "kind": "accept_then_error", "status": status}
            for status in GATEWAY_ANSWERS
        ],
    )
    keys = [f"inbox/paid-once/gateway-{n}.mp4" for n in range(len(GATEWAY_ANSWERS))]
    for key in keys:
        app.put(key, clip, metadata={"prompt": "sepia"})
    for key in keys:
        ending = app.wait_for_ending(key, timeout=180)
        assert ending.succeeded, ending.error
    stats = app.simulator.stats()
    assert all(rule["times"] == 0 for rule in stats["faults_pending"])  # every answer was hidden
    assert stats["tasks_created"] - tasks_before == len(keys)  # one task per job, none more
    charged = 0.0
    for key in keys:
        job = app.job(key)
        assert job is not None and job["task_adopted_at"] and job["create_uncertain"], job
        task = next(t for t in stats["tasks"] if t["id"] == job["task_id"])  # its one paid task
        charged += float(task["credits"])
    # Charged once each: the provider's own figure for each one task.
    assert app.slot_pool().spent() - spent_before == pytest.approx(charged)


def test_a_result_link_that_answers_404_for_a_while_is_copied_once_it_answers(
    evolink_app: LocalApp, clip: bytes
):
    app = evolink_app
    app.simulator.configure(
        task_seconds=1.0,
        queue_seconds=0.1,
        faults=[{"op": "result", "kind": "gone", "status": 404, "times": -1, "for_seconds": 8}],
    )
    before = app.simulator.stats()
    key = "inbox/paid-once/cdn-late.mp4"
    job_id = job_id_for(
        app.bucket, key, app.put(key, clip, metadata={"prompt": "sepia"})["VersionId"]
    )
    ending = app.wait_for_ending(key, timeout=120)
    assert ending.succeeded, ending.error
    job = app.job(key)
    assert job is not None and job["job_id"] == job_id
    assert job["result_copy_attempts"] >= 1 and "404" in job["result_copy_error"]
    after = app.simulator.stats()
    assert after["requests"]["evolink.result"] - before["requests"].get("evolink.result", 0) >= 2
    assert after["tasks_created"] - before["tasks_created"] == 1


def test_a_dead_link_ends_result_copy_failed_and_a_retry_copies_it_without_a_new_task(
    evolink_app: LocalApp, clip: bytes
):
    app = evolink_app
    app.simulator.configure(
        task_seconds=1.0,
        queue_seconds=0.1,
        faults=[{"op": "result", "kind": "gone", "status": 403, "times": -1}],
    )
    tasks_before = app.simulator.stats()["tasks_created"]
    key = "inbox/paid-once/cdn-dead.mp4"
    job_id = job_id_for(
        app.bucket, key, app.put(key, clip, metadata={"prompt": "sepia"})["VersionId"]
    )
    ending = app.wait_for_ending(key, timeout=COPY_WINDOW_SECONDS + 120)
    assert not ending.succeeded
    report = ending.error
    assert report["reason"] == "result_copy_failed", report
    job = _record(app, job_id)
    assert job["task_id"] in report["message"] and "its link lives until" in report["message"]
    [paid] = report["paid"]["tasks"]
    assert (paid["task_id"], paid["state"], paid["result_stored"]) == (
        job["task_id"],
        "succeeded",
        False,
    )
    assert paid["result_link_expires_at"] > job["task_finished_seen_at"]
    assert "without a new task" in report["advice"]

    app.simulator.configure(faults=[])  # the link answers again
    retried = CliRunner().invoke(
        cli, ["--endpoint-url", app.stack.endpoint_url, "retry", job_id, "--yes"]
    )
    assert retried.exit_code == 0, retried.output
    new_job = f"{job_id}-r2"
    record = _wait_for_status(app, new_job, "succeeded", timeout=120)
    assert record["carried_from"] == job_id and record["task_id"] == job["task_id"]
    assert app.simulator.stats()["tasks_created"] == tasks_before + 1  # the first run's task only
    assert app.keys("outbox/paid-once/cdn-dead.edited.mp4") == [
        "outbox/paid-once/cdn-dead.edited.mp4"
    ]


def _record(app: LocalApp, job_id: str) -> dict[str, Any]:
    [found] = [job for job in app.jobs() if job["job_id"] == job_id]
    return found


def _wait_for_status(app: LocalApp, job_id: str, status: str, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = app.record(job_id)
        if found and found["status"] in (status, "failed"):
            assert found["status"] == status, found
            return found
        time.sleep(0.5)
    raise TimeoutError(f"{job_id} was not {status} within {timeout} s")
