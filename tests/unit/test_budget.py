"""The daily credit budget: a slot is given only with a reservation of the job's estimate on the
day's spend (one transaction); a job the budget cannot take waits in line, marked, with the line
behind it; the provider's credits replace the estimate once (freeing budget for the line); a new
UTC day lets waiting jobs go; waits are bounded and reported as budget waits."""

from __future__ import annotations

import math
import time

import pytest

from dropcut.aws.job_events import NO_JOB_EVENTS
from dropcut.aws.slots import SlotPool, settle_slot
from dropcut.errors import BudgetWaitTimedOut, OverDailyBudget, SlotWaitTimedOut
from dropcut.model.budget import DailyBudget, clamp_credits
from dropcut.model.jobs import JobRecord, JobStatus
from dropcut.providers import AimlapiProvider, EvolinkProvider
from dropcut.steps.acquire_slot import AcquireSlotDeps, acquire_slot
from dropcut.steps.reconcile import ReconcileDeps, reconcile

DAY = 86400.0
#: 2026-11-30 12:00 UTC.
NOON = 1_796_040_000.0


class Clock:
    def __init__(self, now: float = NOON) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def _pool(slots_table, tokens, clock, limit: float, slots: int = 2) -> SlotPool:
    budget = DailyBudget(limit=limit, credits_per_second=1.0, clock=clock)
    return SlotPool(slots_table, tokens, "evolink", limit=slots, budget=budget)


@pytest.fixture
def budget_pool(slots_table, tokens, clock) -> SlotPool:
    """2 slots, a budget of 5 credits a day: exactly one 5-credit job."""
    return _pool(slots_table, tokens, clock, limit=5)


def _budget_waiting(pool: SlotPool) -> list[str]:
    return [w.job_id for w in pool.waiters() if w.budget_wait_since is not None]


def test_the_estimate_is_the_providers_billing_rule_times_the_price():
    budget = DailyBudget(limit=100, credits_per_second=2.0)
    # evolink documents its rule: under 3 s bills 3 s, over 10 s bills 10 s.
    assert budget.estimate(EvolinkProvider, 1.2) == 6.0
    assert budget.estimate(EvolinkProvider, 12.5) == 20.0
    assert budget.estimate(EvolinkProvider, 4.25) == 8.5
    # aimlapi documents none: the clip's own seconds, at least the model's 3 s; unknown: 10 s.
    assert budget.estimate(AimlapiProvider, 4.0) == 8.0
    assert budget.estimate(AimlapiProvider, 1.0) == 6.0
    assert budget.estimate(AimlapiProvider, None) == 20.0
    assert budget.estimate(EvolinkProvider, None) == 20.0


def test_the_second_job_waits_for_budget_with_a_free_slot_and_no_resume(budget_pool, tokens):
    assert budget_pool.acquire("job-a", 1.0, "tok-a", 3600, estimate=5) is True
    assert budget_pool.acquire("job-b", 2.0, "tok-b", 3600, estimate=5) is False
    assert tokens.resumed == ["tok-a"]
    assert set(budget_pool.holders()) == {"job-a"}  # a slot is free: the budget said no
    assert _budget_waiting(budget_pool) == ["job-b"]
    assert budget_pool.spent() == 5
    reservation = budget_pool.reservation("job-a")
    assert reservation is not None
    assert (reservation["day"], float(reservation["reserved"])) == ("2026-11-30", 5.0)
    assert budget_pool.reservation("job-b") is None


def test_a_job_that_fits_the_rest_of_the_budget_goes(slots_table, tokens, clock):
    pool = _pool(slots_table, tokens, clock, limit=10)
    assert pool.acquire("job-a", 1.0, "tok-a", 3600, estimate=4) is True
    assert pool.acquire("job-b", 2.0, "tok-b", 3600, estimate=6) is True  # 4 + 6 = 10: fits
    assert pool.spent() == 10
    assert pool.waiters() == []


def test_credits_below_the_estimate_free_budget_for_the_next_job(budget_pool, tokens):
    budget_pool.acquire("job-a", 1.0, "tok-a", 3600, estimate=5)
    budget_pool.acquire("job-b", 2.0, "tok-b", 3600, estimate=5)
    # The provider billed job-a nothing (e.g. a task it failed without billing).
    assert budget_pool.charge("job-a", 0.0, task=0) is True
    assert budget_pool.spent() == 0
    budget_pool.release("job-a")
    assert tokens.resumed == ["tok-a", "tok-b"]
    assert budget_pool.spent() == 5
    assert budget_pool.waiters() == []


def test_credits_equal_to_the_estimate_keep_the_next_job_waiting(budget_pool, tokens):
    budget_pool.acquire("job-a", 1.0, "tok-a", 3600, estimate=5)
    budget_pool.acquire("job-b", 2.0, "tok-b", 3600, estimate=5)
    assert budget_pool.charge("job-a", 5.0, task=0) is True
    budget_pool.release("job-a")
    assert tokens.resumed == ["tok-a"]
    assert _budget_waiting(budget_pool) == ["job-b"]
    assert budget_pool.holders() == {}


def test_a_job_is_charged_once_and_more_credits_than_estimated_count_too(budget_pool):
    budget_pool.acquire("job-a", 1.0, "tok-a", 3600, estimate=5)
    assert budget_pool.charge("job-a", 7.5, task=0) is True
    assert budget_pool.charge("job-a", 7.5, task=0) is False  # a retried Finalize
    assert budget_pool.charge("job-a", 1.0, task=0) is False
    assert budget_pool.spent() == 7.5
    assert budget_pool.charge("job-a", None, task=0) is False
    assert budget_pool.charge("job-never-granted", 3.0, task=0) is False
    assert budget_pool.spent() == 7.5


@pytest.mark.parametrize(
    ("reported", "estimate", "counted"),
    [
        (-5000.0, 10.0, 0.0),  # nothing costs less than nothing
        (0.0, 10.0, 0.0),
        (7.5, 5.0, 7.5),
        (50.0, 5.0, 50.0),  # ten times the estimate: still counted whole
        (50.5, 5.0, 50.0),  # past it: the bound
        (1e12, 5.0, 50.0),
        (math.nan, 5.0, 5.0),  # not a number: the estimate stands
        (math.inf, 5.0, 5.0),
        (3.0, 0.0, 3.0),  # no price (CreditsPerBilledSecond 0): only the lower bound
        (-1.0, 0.0, 0.0),
    ],
)
def test_the_ledger_counts_provider_credits_within_0_and_ten_times_the_estimate(
    reported, estimate, counted
):
    assert clamp_credits(reported, estimate) == counted


def _clamped_metrics() -> list[float]:
    from dropcut.observability import metrics

    return list(metrics.metric_set.get("CreditCorrectionsClamped", {}).get("Value", []))


@pytest.fixture
def clean_metrics():
    from dropcut.observability import metrics

    metrics.clear_metrics()
    yield
    metrics.clear_metrics()


def test_a_credit_figure_of_minus_5000_is_clamped_to_0_counted_and_lets_no_extra_job_in(
    slots_table, tokens, clock, clean_metrics, caplog
):
    # 20 credits a day, 10 slots: two 10-credit jobs take the whole budget; eight more wait.
    pool = _pool(slots_table, tokens, clock, limit=20, slots=10)
    for n in range(10):
        pool.acquire(f"job-{n}", float(n), f"tok-{n}", 3600, estimate=10)
    assert tokens.resumed == ["tok-0", "tok-1"] and pool.spent() == 20
    # The provider reports credits_reserved: -5000 for job-0's task.
    assert pool.charge("job-0", -5000.0, task=0) is True
    assert pool.spent() == 10  # not -4990: job-0 cost nothing, job-1 still holds 10
    reservation = pool.reservation("job-0")
    assert reservation is not None
    assert (float(reservation["charged"]), float(reservation["reported"])) == (0.0, -5000.0)
    assert _clamped_metrics() == [1.0]
    assert "provider credits out of bounds" in caplog.text
    pool.release("job-0")
    # Room for exactly one more 10-credit job, not for nine.
    assert tokens.resumed == ["tok-0", "tok-1", "tok-2"]
    assert pool.spent() == 20
    assert len(_budget_waiting(pool)) == 1 and len(pool.waiters()) == 7
    # A repeat of the same correction changes nothing and counts nothing again.
    assert pool.charge("job-0", -5000.0, task=0) is False
    assert _clamped_metrics() == [1.0]


def test_a_figure_over_ten_times_the_estimate_counts_as_ten_times(budget_pool, clean_metrics):
    budget_pool.acquire("job-a", 1.0, "tok-a", 3600, estimate=5)
    assert budget_pool.charge("job-a", 5_000_000.0, task=0) is True
    assert budget_pool.spent() == 50
    assert _clamped_metrics() == [1.0]


def test_a_figure_within_the_bounds_is_counted_whole_and_raises_no_alarm(
    budget_pool, clean_metrics
):
    budget_pool.acquire("job-a", 1.0, "tok-a", 3600, estimate=5)
    assert budget_pool.charge("job-a", 50.0, task=0) is True
    assert budget_pool.spent() == 50
    reservation = budget_pool.reservation("job-a")
    assert reservation is not None and "reported" not in reservation
    assert _clamped_metrics() == []


def test_each_task_of_a_job_has_its_own_reservation_and_charge(slots_table, tokens, clock):
    pool = _pool(slots_table, tokens, clock, limit=20)
    pool.acquire("job-a", 1.0, "tok-a", 3600, estimate=5)
    assert pool.charge("job-a", 2.0, task=0) is True
    assert pool.reserve("job-a", 1, 5) is True
    assert pool.reserve("job-a", 1, 5) is True  # a repeat takes nothing twice
    assert pool.spent() == 7
    assert pool.charge("job-a", 3.0, task=1) is True
    assert pool.charge("job-a", 3.0, task=1) is False
    assert pool.spent() == 5
    assert pool.reserve("job-a", 2, 16) is False  # 5 + 16 would pass 20: no room
    assert pool.reservation("job-a", 2) is None and pool.spent() == 5


def test_without_a_budget_a_new_task_needs_no_reservation(pool):
    assert pool.reserve("job-a", 1, 500) is True
    assert pool.reservation("job-a", 1) is None


def test_a_new_utc_day_lets_the_waiting_job_go(budget_pool, tokens, clock):
    budget_pool.acquire("job-a", 1.0, "tok-a", 3600, estimate=5)
    budget_pool.acquire("job-b", 2.0, "tok-b", 3600, estimate=5)
    assert budget_pool.dispatch() == []  # the same day: still no room
    clock.now = NOON + DAY / 2  # 2026-12-01 00:00 UTC
    assert budget_pool.dispatch() == ["job-b"]  # what the reconciler's pass does
    assert tokens.resumed == ["tok-a", "tok-b"]
    assert budget_pool.spent("2026-11-30") == 5
    assert budget_pool.spent() == 5
    reservation = budget_pool.reservation("job-b")
    assert reservation is not None and reservation["day"] == "2026-12-01"
    # A correction counts on the day of the reservation, not on the day it arrives.
    assert budget_pool.charge("job-a", 2.0, task=0) is True
    assert (budget_pool.spent("2026-11-30"), budget_pool.spent()) == (2, 5)


def test_the_line_waits_behind_the_job_the_budget_holds_back(slots_table, tokens, clock):
    pool = _pool(slots_table, tokens, clock, limit=6, slots=3)
    pool.acquire("job-a", 1.0, "tok-a", 3600, estimate=5)
    pool.acquire("job-big", 2.0, "tok-big", 3600, estimate=5)
    # A small job that would fit joins later: oldest first, it does not pass the big one.
    assert pool.acquire("job-small", 3.0, "tok-small", 3600, estimate=1) is False
    assert [w.job_id for w in pool.waiters()] == ["job-big", "job-small"]
    assert _budget_waiting(pool) == ["job-big"]
    assert pool.charge("job-a", 0.0, task=0) is True
    pool.release("job-a")
    assert tokens.resumed == ["tok-a", "tok-big", "tok-small"]
    assert pool.spent() == 6


def test_a_job_alone_over_the_whole_budget_is_refused_at_once(budget_pool, tokens):
    with pytest.raises(OverDailyBudget, match="6 credits, more than the whole daily budget of 5"):
        budget_pool.acquire("job-huge", 1.0, "tok-huge", 3600, estimate=6)
    assert budget_pool.waiters() == [] and tokens.resumed == []


def test_a_budget_wait_past_the_queue_wait_ends_with_its_own_report(budget_pool):
    budget_pool.acquire("job-a", 1.0, "tok-a", 3600, estimate=5)
    budget_pool.acquire("job-b", 2.0, "tok-b", 3600, estimate=5)
    time.sleep(0.01)
    # The wait's heartbeat: the execution joins again, past QueueWaitSeconds.
    with pytest.raises(BudgetWaitTimedOut, match=r"DailyCreditBudget 5, 5 spent today"):
        budget_pool.acquire("job-b", 2.0, "tok-b2", 0, estimate=5)
    assert budget_pool.waiters() == []
    assert BudgetWaitTimedOut.reason == "budget_wait_timed_out"


def test_a_slot_wait_past_the_queue_wait_is_still_a_slot_wait(slots_table, tokens, clock):
    pool = _pool(slots_table, tokens, clock, limit=100, slots=1)
    pool.acquire("job-a", 1.0, "tok-a", 3600, estimate=5)
    pool.acquire("job-b", 2.0, "tok-b", 3600, estimate=5)
    time.sleep(0.01)
    with pytest.raises(SlotWaitTimedOut):
        pool.acquire("job-b", 2.0, "tok-b2", 0, estimate=5)


def test_a_repeated_grant_keeps_one_reservation(budget_pool, tokens):
    budget_pool.acquire("job-a", 1.0, "tok-a", 3600, estimate=5)
    tokens.ended.add("tok-a")
    # The same job in line again (a lost hand-over): it holds its slot and its reservation.
    assert budget_pool.acquire("job-a", 1.0, "tok-a2", 3600, estimate=5) is True
    assert budget_pool.spent() == 5


def test_without_a_budget_nothing_is_reserved_or_charged(pool, tokens):
    assert pool.acquire("job-a", 1.0, "tok-a", 3600, estimate=500) is True
    assert pool.reservation("job-a") is None
    assert pool.charge("job-a", 3.0, task=0) is False
    assert pool.spent() == 0


def _ended(**fields) -> JobRecord:
    base = {
        "job_id": "job-a",
        "status": JobStatus.FAILED,
        "bucket": "b",
        "key": "k",
        "version": "v",
    }
    return JobRecord.model_validate({**base, **fields})


@pytest.mark.parametrize(
    ("fields", "spent"),
    [
        ({}, 0.0),  # no task was created: no cost
        ({"task_id": "t", "task_finished_seen_at": 1.0, "credits": 3.5}, 3.5),
        ({"task_id": "t", "task_finished_seen_at": 1.0}, 5.0),  # no figure: the estimate
        ({"creating_since": 1.0}, 5.0),  # the create answer was lost: it may run
    ],
    ids=["no-task", "credits", "no-figure", "lost-create"],
)
def test_an_ending_corrects_the_reservation_from_the_record(budget_pool, fields, spent):
    budget_pool.acquire("job-a", 1.0, "tok-a", 3600, estimate=5)
    settle_slot(budget_pool, _ended(**fields), hold_seconds=60)
    assert budget_pool.spent() == spent


def test_an_ending_after_a_retry_corrects_the_new_tasks_reservation(budget_pool):
    budget_pool.acquire("job-a", 1.0, "tok-a", 3600, estimate=2)
    assert budget_pool.charge("job-a", 1.0, task=0) is True  # the failed task (CheckStatus)
    assert budget_pool.reserve("job-a", 1, 2) is True
    failed = [{"task_id": "t-1", "credits": 1.0}]
    ended = _ended(task_id="t-2", task_finished_seen_at=1.0, credits=0.5, failed_tasks=failed)
    settle_slot(budget_pool, ended, hold_seconds=60)
    second = budget_pool.reservation("job-a", 1)
    assert second is not None and float(second["charged"]) == 0.5
    assert budget_pool.spent() == 1.5


def test_acquire_slot_reserves_the_jobs_estimate_from_its_probed_duration(
    stored_job, slots_table, tokens, clock
):
    pool = _pool(slots_table, tokens, clock, limit=8)
    store, job_id = stored_job(media={"duration_seconds": 1.5}, provider="evolink")
    deps = AcquireSlotDeps(store=store, slots=pool, max_wait_seconds=3600)
    assert acquire_slot(deps, job_id, "tok-1") is True
    reservation = pool.reservation(job_id)
    assert reservation is not None and float(reservation["reserved"]) == 3.0  # billed as 3 s


def test_the_reconciler_counts_jobs_waiting_for_budget_and_publishes_it(
    stored_job, budget_pool, settings, clock, monkeypatch
):
    from dropcut.observability import metrics

    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "dropcut")
    store, _ = stored_job(status=JobStatus.SUCCEEDED)
    budget_pool.acquire("job-a", 1.0, "tok-a", 3600, estimate=5)
    budget_pool.acquire("job-b", 2.0, "tok-b", 3600, estimate=5)

    class Running:
        def status(self, job_id: str) -> str:
            return "RUNNING"

        def start(self, job_id: str) -> None:
            raise AssertionError("nothing to start")

    deps = ReconcileDeps(
        s3=None,  # type: ignore[arg-type]
        store=store,
        layout=settings.layout,
        executions=Running(),  # type: ignore[arg-type]
        slots=budget_pool,
        manifest_wait_seconds=600,
        lost_task_hold_seconds=60,
        events=NO_JOB_EVENTS,
        batches=None,
        inbox=None,
    )
    metrics.clear_metrics()
    report = reconcile(deps, now=clock.now)
    assert (report.jobs_waiting_for_budget, report.jobs_in_line, report.credits_today) == (1, 1, 5)
    assert metrics.metric_set["JobsWaitingForBudget"]["Value"] == [1.0]
    assert metrics.metric_set["BudgetCreditsToday"]["Value"] == [5.0]
    metrics.clear_metrics()
    clock.now += DAY
    report = reconcile(deps, now=time.time())
    assert report.slots_handed_over == ["job-b"] and report.jobs_waiting_for_budget == 0
    assert metrics.metric_set["JobsWaitingForBudget"]["Value"] == [0.0]
    metrics.clear_metrics()


def test_a_marked_job_the_budget_would_take_now_counts_as_waiting_for_a_slot(
    stored_job, slots_table, tokens, settings, clock
):
    pool = _pool(slots_table, tokens, clock, limit=5, slots=1)
    store, job_id = stored_job(status=JobStatus.SUCCEEDED)
    # job-c runs (its record says so): the reconciler leaves its slot alone.
    store.create(
        store.require(job_id).model_copy(update={"job_id": "job-c", "status": JobStatus.RUNNING})
    )
    pool.acquire("job-a", 1.0, "tok-a", 3600, estimate=5)
    pool.acquire("job-b", 2.0, "tok-b", 3600, estimate=5)
    pool.release("job-a")  # a free slot, no room: job-b is marked
    pool.acquire("job-c", 0.5, "tok-c", 3600, estimate=0)  # an older job takes the slot
    assert set(pool.holders()) == {"job-c"}
    clock.now += DAY  # room again, but no slot: job-b waits for a slot, not for budget

    class Running:
        def status(self, job_id: str) -> str:
            return "RUNNING"

        def start(self, job_id: str) -> None:
            raise AssertionError("nothing to start")

    deps = ReconcileDeps(
        s3=None,  # type: ignore[arg-type]
        store=store,
        layout=settings.layout,
        executions=Running(),  # type: ignore[arg-type]
        slots=pool,
        manifest_wait_seconds=600,
        lost_task_hold_seconds=60,
        events=NO_JOB_EVENTS,
        batches=None,
        inbox=None,
    )
    assert _budget_waiting(pool) == ["job-b"]
    report = reconcile(deps, now=time.time())
    assert (report.jobs_in_line, report.jobs_waiting_for_budget) == (1, 0)


def test_a_job_over_a_budget_lowered_while_it_waits_leaves_the_line(slots_table, tokens, clock):
    pool = _pool(slots_table, tokens, clock, limit=10, slots=1)
    pool.acquire("job-a", 1.0, "tok-a", 3600, estimate=5)
    pool.acquire("job-b", 2.0, "tok-b", 3600, estimate=8)
    lowered = _pool(slots_table, tokens, clock, limit=5, slots=1)  # a redeploy
    with pytest.raises(OverDailyBudget):
        lowered.acquire("job-b", 2.0, "tok-b2", 3600, estimate=8)
    assert lowered.waiters() == []


def test_an_estimate_over_the_whole_budget_is_never_reserved_not_even_on_a_fresh_day(
    slots_table,
):
    from dropcut.aws.ledger import BudgetLedger

    ledger = BudgetLedger(slots_table, "evolink", DailyBudget(limit=12, credits_per_second=1))
    assert ledger.reserve("job-big", 1, 20.0) is False  # the day has no spend yet
    assert ledger.spent() == 0
    assert ledger.reserve("job-fits", 1, 12.0) is True
