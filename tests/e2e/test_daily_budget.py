"""The daily credit budget on the real local stack: with a budget of one job's estimate, a second
job waits in the backlog (no execution, "waiting for budget" in `dropcut ls`) and the
reconciler publishes JobsWaitingForBudget, the BudgetWaitAlarm's metric; when the first job's
task ends, the provider's own figure replaces its estimate, and the room it frees lets the
waiting job go. A provider figure of -5000 credits is clamped to 0 and counted in
CreditCorrectionsClamped (CreditCorrectionsAlarm's metric): the budget still takes one job."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from devstack.local_app import LocalApp, local_app
from devstack.media import make_sample_video
from dropcut.model.plan import DEFAULT_MAX_PARTS
from dropcut.providers import EvolinkProvider
from dropcut_cli.app import app as cli
from dropcut_cli.estimate import estimate
from tests.e2e.conftest import code_root

pytestmark = [pytest.mark.own_app, pytest.mark.usefixtures("wide_console")]

#: The stack's price of a billed second (CreditsPerBilledSecond), in simulator credits.
PRICE = 1.0


@pytest.fixture(scope="module")
def clip_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return Path(make_sample_video(tmp_path_factory.mktemp("budget") / "clip.mp4", seconds=4.0))


@pytest.fixture(scope="module")
def one_job(clip_path: Path) -> float:
    """One job's estimate, by the provider's billing rule on the probed duration (what
    `dropcut estimate` prints and AcquireSlot reserves)."""
    checked = estimate(
        clip_path, EvolinkProvider, {"prompt": "sepia"}, max_parts=DEFAULT_MAX_PARTS, normalize=True
    )
    billed = checked.billed_seconds
    assert billed is not None
    return billed * PRICE


@pytest.fixture(scope="module")
def budget_app(one_job: float) -> Iterator[LocalApp]:
    parameters = {"DailyCreditBudget": str(one_job), "CreditsPerBilledSecond": str(PRICE)}
    with local_app("evolink", parameters, code_root=code_root()) as running:
        yield running


def _budget_waiters(app: LocalApp) -> list[str]:
    """The queued jobs, when the daily budget holds the backlog back (none otherwise)."""
    held = app.slot_pool().backlog_state().budget_wait_since is not None
    return app.jobs_queued() if held else []


def _until(what: str, check: Any, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        time.sleep(0.1)


def _published(logs: str, metric: str) -> list[float]:
    """The values of `metric` in the embedded-metric-format lines of a function's log."""
    values: list[float] = []
    for line in logs.splitlines():
        try:
            document = json.loads(line)
        except ValueError:
            continue
        if isinstance(document, dict) and "_aws" in document and metric in document:
            value = document[metric]
            values.extend(value if isinstance(value, list) else [value])
    return values


def _reconcile(app: LocalApp) -> tuple[dict[str, Any], str]:
    event = app.stack.event_sources.scheduled_event("ReconcileFunction")
    report, error, logs = app.stack.invoke_raw("ReconcileFunction", event)
    assert error is None, report
    return report, logs


def test_with_a_budget_of_one_jobs_estimate_the_second_job_waits_and_the_alarm_metric_is_published(
    budget_app: LocalApp, clip_path: Path, one_job: float
) -> None:
    app, clip = budget_app, clip_path.read_bytes()
    # `dropcut estimate` on the stack says what the budget will reserve for the clip.
    estimated = CliRunner().invoke(
        cli, ["--endpoint-url", app.stack.endpoint_url, "estimate", str(clip_path), "--json"]
    )
    assert estimated.exit_code == 0, estimated.output
    [checked] = json.loads(estimated.stdout)["inputs"]
    assert checked["estimated_credits"] == pytest.approx(one_job)
    # The provider bills the first job nothing (the simulator at 0 credits a second): when its
    # task ends, its correction gives its whole reservation back.
    app.simulator.configure(task_seconds=1.0, queue_seconds=0.2, credits_per_second=0.0)
    with app.stack.pool("FinalizeFunction").held():  # the first job holds its budget meanwhile
        app.put("inbox/budget/first.mp4", clip, metadata={"prompt": "sepia"})
        first = app.wait_for_job("inbox/budget/first.mp4", lambda j: j.get("task_id") is not None)
        assert app.slot_pool().spent() == pytest.approx(one_job)
        app.put("inbox/budget/second.mp4", clip, metadata={"prompt": "warm"})
        second = app.wait_for_job("inbox/budget/second.mp4", lambda j: j["status"] == "queued")
        _until(
            "the second job waits for budget", lambda: _budget_waiters(app) == [second["job_id"]]
        )
        # A slot is free (2 of 5 would be), yet no task was created for it: no cost.
        assert set(app.slot_holders()) == {first["job_id"]}
        assert app.simulator.stats()["tasks_created"] == 1

        report, logs = _reconcile(app)
        assert report["jobs_waiting_for_budget"] == 1
        assert report["credits_today"] == pytest.approx(one_job)
        assert _published(logs, "JobsWaitingForBudget") == [1]

        listed = CliRunner().invoke(
            cli, ["--endpoint-url", app.stack.endpoint_url, "ls", "budget/", "--json"]
        )
        assert listed.exit_code == 0, listed.output
        phases = {row["key"]: row["phase"] for row in json.loads(listed.stdout)["jobs"]}
        assert phases["inbox/budget/second.mp4"] == "queued"  # its stored phase
        table = CliRunner().invoke(cli, ["--endpoint-url", app.stack.endpoint_url, "ls"])
        assert "waiting for budget" in table.output  # the detail says why

    # Finalize charges the first job the provider's 0 credits, then gives its slot back: the
    # hand-over finds room for the second job.
    assert app.wait_for_ending("inbox/budget/first.mp4").succeeded
    ending = app.wait_for_ending("inbox/budget/second.mp4")
    assert ending.succeeded, ending.error
    assert app.simulator.stats()["tasks_created"] == 2
    pool = app.slot_pool()
    charged = [pool.reservation(job["job_id"]) for job in (first, second)]
    assert [float(r["charged"]) for r in charged if r] == [0.0, 0.0]
    assert pool.spent() == 0
    report, logs = _reconcile(app)
    assert report["jobs_waiting_for_budget"] == 0
    assert _published(logs, "JobsWaitingForBudget") == [0]


@contextlib.contextmanager
def _logs_of(app: LocalApp, function: str) -> Iterator[list[str]]:
    """The logs of each invocation of `function` while the block runs."""
    pool = app.stack.pool(function)
    seen: list[str] = []
    sink = pool.log_sink

    def keep(spec: Any, result: Any) -> None:
        seen.append(result.logs)
        if sink is not None:
            sink(spec, result)

    pool.log_sink = keep
    try:
        yield seen
    finally:
        pool.log_sink = sink


def test_a_credit_figure_of_minus_5000_is_clamped_to_0_alarmed_and_the_budget_still_holds(
    budget_app: LocalApp, clip_path: Path, one_job: float
) -> None:
    app, clip, pool = budget_app, clip_path.read_bytes(), budget_app.slot_pool()
    before = pool.spent()
    earlier = {task["id"] for task in app.simulator.stats()["tasks"]}
    # The provider reports credits_reserved: -5000 for the clip's task.
    app.simulator.configure(
        task_seconds=1.0, queue_seconds=0.2, credits_per_second=-5000 / (one_job / PRICE)
    )
    with _logs_of(app, "FinalizeFunction") as finalize_logs:
        app.put("inbox/clamp/negative.mp4", clip, metadata={"prompt": "sepia"})
        ending = app.wait_for_ending("inbox/clamp/negative.mp4")
    assert ending.succeeded, ending.error
    tasks = [task for task in app.simulator.stats()["tasks"] if task["id"] not in earlier]
    assert [task["credits"] for task in tasks] == [-5000]
    job = app.job("inbox/clamp/negative.mp4")
    assert job is not None
    reservation = pool.reservation(job["job_id"])
    assert reservation is not None
    assert (float(reservation["charged"]), float(reservation["reported"])) == (0.0, -5000.0)
    assert pool.spent() == pytest.approx(before)  # the task cost nothing: not -4996
    assert _published("\n".join(finalize_logs), "CreditCorrectionsClamped") == [1]

    # The day's budget still takes exactly one job's estimate: a second job in the meantime
    # waits for budget.
    app.simulator.configure(credits_per_second=0.0)
    created = app.simulator.stats()["tasks_created"]
    with app.stack.pool("FinalizeFunction").held():
        app.put("inbox/clamp/first.mp4", clip, metadata={"prompt": "sepia"})
        first = app.wait_for_job("inbox/clamp/first.mp4", lambda j: j.get("task_id") is not None)
        app.put("inbox/clamp/second.mp4", clip, metadata={"prompt": "warm"})
        second = app.wait_for_job("inbox/clamp/second.mp4", lambda j: j["status"] == "queued")
        _until(
            "the second job waits for budget", lambda: _budget_waiters(app) == [second["job_id"]]
        )
        assert app.simulator.stats()["tasks_created"] == created + 1
        assert pool.spent() == pytest.approx(before + one_job)
    assert app.wait_for_ending("inbox/clamp/first.mp4").succeeded
    assert app.wait_for_ending("inbox/clamp/second.mp4").succeeded
    assert first["job_id"] != second["job_id"]
