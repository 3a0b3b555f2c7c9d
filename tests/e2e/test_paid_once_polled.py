"""Never a second paid task with a provider that cannot call back (aimlapi): a create the
provider accepted and answered through its gateway with a 502 ends the job
`task_creation_uncertain` after exactly one create; the report says the task may have run, the
estimate stays charged once and the slot stays held (it may still run)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from devstack.local_app import LocalApp, local_app
from tests.e2e.conftest import code_root
from tests.e2e.test_paid_once import BUDGET, drop_behind_a_gateway

pytestmark = [pytest.mark.own_app]


@pytest.fixture(scope="module")
def aiml_app() -> Iterator[LocalApp]:
    with local_app("aimlapi", BUDGET, code_root=code_root()) as running:
        yield running


def test_aimlapi_ends_uncertain_after_one_create_and_says_the_task_may_have_run(
    aiml_app: LocalApp, clip: bytes
):
    app = aiml_app
    key = "inbox/paid-once/aiml-502.mp4"
    job_id = drop_behind_a_gateway(app, key, clip, 502)
    ending = app.wait_for_ending(key, timeout=120)
    assert not ending.succeeded
    assert ending.error is not None and ending.error["reason"] == "task_creation_uncertain"
    assert "may have created" in ending.error["message"]
    assert "may have created (and billed)" in ending.error["advice"]
    stats = app.simulator.stats()
    assert stats["tasks_created"] == 1
    assert stats["requests"]["aimlapi.create"] == 1  # never a second create
    # The estimate stays charged (the task may have run), once; the slot stays held.
    reservation = app.slot_pool().reservation(job_id)
    assert reservation is not None
    assert app.slot_pool().spent() == pytest.approx(float(reservation["reserved"]))
    assert job_id in app.slot_holders()
