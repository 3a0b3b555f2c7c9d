"""The daily credit budget's ledger on the real local stack, for a split job whose part's task
fails once: every task the provider billed is charged, the failed one included, and the part's
new task took a reservation of its own. The ledger's day then holds exactly what the provider
billed (the simulator's credits_spent), at a price the provider sets above the stack's estimate."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from devstack.local_app import LocalApp, local_app
from devstack.media_samples import make_colour_clip
from devstack.simulator import SimConfig
from tests.e2e.conftest import code_root

pytestmark = [pytest.mark.own_app, pytest.mark.long_running(90)]

#: The stack's price of a billed second (CreditsPerBilledSecond) and the provider's own: each
#: task's figure is twice its estimate, so a charge that lands on the wrong reservation shows.
STACK_PRICE, PROVIDER_PRICE = 1.0, 2.0


@pytest.fixture(scope="module")
def app() -> Iterator[LocalApp]:
    parameters = {
        "JobDeadlineSeconds": "60",
        "MaxPartsPerJob": "4",
        "DailyCreditBudget": "1000",
        "CreditsPerBilledSecond": str(STACK_PRICE),
    }
    config = SimConfig(
        task_seconds=1.0, queue_seconds=0.2, strict=True, credits_per_second=PROVIDER_PRICE
    )
    with local_app("evolink", parameters, config, code_root=code_root()) as running:
        yield running


@pytest.fixture(scope="module")
def long_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_colour_clip(tmp_path_factory.mktemp("ledger") / "long.mp4", seconds=31.0, fps=24)


def test_a_retried_part_is_charged_for_both_its_tasks_each_on_its_own_reservation(
    app: LocalApp, long_clip: Path
) -> None:
    app.simulator.add_fault(fail_task_when_input_contains="prepared/p02", times=1)
    key = "inbox/long/retried.mp4"
    app.put(key, long_clip.read_bytes(), metadata={"prompt": "mirror"})
    ending = app.wait_for_ending(key, timeout=600)
    assert ending.succeeded, ending.error
    stats = app.simulator.stats()
    assert stats["tasks_created"] == 5  # four parts, one of them twice
    job = app.job(key)
    assert job is not None
    (part,) = [p for p in app.parts(job["job_id"]) if p["part_index"] == 2]
    [failed] = part["failed_tasks"]
    billed = {task["id"]: float(task["credits"]) for task in stats["tasks"]}
    pool = app.slot_pool()
    first, second = pool.reservation(part["job_id"], 0), pool.reservation(part["job_id"], 1)
    assert first is not None and second is not None
    # The failed task is charged its figure; the new task reserved its own estimate (at the
    # stack's price, half the provider's figure) and was charged the provider's figure.
    assert float(first["charged"]) == pytest.approx(billed[failed["task_id"]])
    assert float(second["charged"]) == pytest.approx(billed[part["task_id"]])
    assert float(second["reserved"]) == pytest.approx(billed[part["task_id"]] / 2, rel=0.01)
    # The day's spend is what the provider billed, every task included.
    assert pool.spent() == pytest.approx(stats["credits_spent"])
    assert pool.spent() == pytest.approx(sum(billed.values()))
