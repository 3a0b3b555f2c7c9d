"""Never a second paid task, on the real local stack: a provider that creates the task and then
answers through its gateway with a 5xx, a 408 or a cut-off 2xx gets exactly one task per job.
With callbacks (evolink) the callback names the task and the job adopts it, is stored and is
charged once; without them (aimlapi: test_paid_once_polled.py) the job ends
`task_creation_uncertain`."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from devstack.local_app import LocalApp, local_app
from dropcut.jobs import job_id_for
from tests.e2e.conftest import code_root

pytestmark = [pytest.mark.own_app]

#: The simulator's credits per task second and the stack's estimate price: a budget large
#: enough for every job here, so the spend shows what each job was charged.
BUDGET = {"DailyCreditBudget": "1000", "CreditsPerBilledSecond": "1", "JobDeadlineSeconds": "30"}
GATEWAY_ANSWERS = [502, 503, 504, 408, 200]


@pytest.fixture(scope="module")
def evolink_app() -> Iterator[LocalApp]:
    with local_app("evolink", BUDGET, code_root=code_root()) as running:
        yield running


def drop_behind_a_gateway(app: LocalApp, key: str, clip: bytes, status: int) -> str:
    app.simulator.configure(
        task_seconds=1.0,
        queue_seconds=0.1,
        faults=[{"api": "*", "op": "create", "kind": "accept_then_error", "status": status}],
    )
    put = app.put(key, clip, metadata={"prompt": "sepia"})
    return job_id_for(app.bucket, key, put["VersionId"])


@pytest.mark.parametrize("status", GATEWAY_ANSWERS)
def test_evolink_adopts_the_task_its_gateway_hid_and_pays_once(
    evolink_app: LocalApp, clip: bytes, status: int
):
    app = evolink_app
    spent_before = app.slot_pool().spent()
    tasks_before = app.simulator.stats()["tasks_created"]
    key = f"inbox/paid-once/gateway-{status}.mp4"
    drop_behind_a_gateway(app, key, clip, status)
    ending = app.wait_for_ending(key, timeout=120)
    assert ending.succeeded, ending.error
    stats = app.simulator.stats()
    assert stats["faults_applied"] >= 1 and stats["tasks_created"] - tasks_before == 1
    job = app.job(key)
    assert job is not None
    task = next(t for t in stats["tasks"] if t["id"] == job["task_id"])  # the one paid task
    assert job["task_adopted_at"] and job["create_uncertain"]
    # Charged once, the provider's own figure for the one task.
    assert app.slot_pool().spent() - spent_before == pytest.approx(float(task["credits"]))
