"""The backlog (dropcut.aws.backlog) and its admission (SlotPool.dispatch): queued jobs start no
execution until a slot is free; folders take turns; priority passes within a folder; a cancelled
queued job never starts; an admission takes its slot, its reservation and its record's flip in
one transaction."""

from __future__ import annotations

import pytest

from dropcut.aws.backlog import Backlog, Queued
from dropcut.aws.job_store import JobStore
from dropcut.aws.slots import SlotPool
from dropcut.model.budget import DailyBudget
from dropcut.model.jobs import JobRecord, JobSpec, JobStatus, Priority, job_id_for
from dropcut.model.layout import ROOT_FOLDER, BucketLayout
from dropcut.model.phases import JobPhase


def queued_job(
    store: JobStore, key: str, created_at: float, priority: Priority = "normal", weight: int = 1
) -> JobRecord:
    record = JobRecord(
        job_id=job_id_for("media", key, "v1"),
        status=JobStatus.QUEUED,
        phase=JobPhase.QUEUED,
        bucket="media",
        key=key,
        version="v1",
        spec=JobSpec(prompt="sepia", priority=priority, turn_weight=weight),
        provider="evolink",
        media={"duration_seconds": 5.0},
        created_at=created_at,
    )
    assert store.create(record)
    return record


@pytest.fixture
def store(jobs_table) -> JobStore:
    return JobStore(jobs_table)


def admit_one_at_a_time(pool: SlotPool, store: JobStore, count: int) -> list[str]:
    """Let `count` admissions happen, one slot at a time: each admitted job gives its slot back
    (as its Finalize would), which admits the next. The keys' file names, in admission order."""
    order: list[str] = []
    for _ in range(count):
        [holder] = pool.holders()
        order.append(store.require(holder).key.rsplit("/", 1)[-1])
        pool.release(holder)
    return order


def _budgeted(pool: SlotPool, *, limit: int, daily_credits: float) -> SlotPool:
    """`pool` (its table, tokens and backlog) with `limit` slots and a daily budget of
    `daily_credits` at 2 credits a second."""
    return SlotPool(
        pool.table,
        pool.sfn,
        pool.pool,
        limit=limit,
        budget=DailyBudget(limit=daily_credits, credits_per_second=2),
        admission=pool.admission,
    )


def test_a_queued_job_waits_without_an_execution_until_a_slot_is_free(pool, store, tokens):
    pool.limit = 1
    first = queued_job(store, "inbox/a/1.mp4", 1.0)
    second = queued_job(store, "inbox/a/2.mp4", 2.0)

    assert pool.queue(first) == [first.job_id]
    assert pool.queue(second) == []  # the slot is taken: nothing runs, nothing is paid

    assert tokens.started == [first.job_id]
    assert store.require(first.job_id).status is JobStatus.RECEIVED
    assert store.require(first.job_id).phase is JobPhase.RECEIVED
    assert store.require(second.job_id).status is JobStatus.QUEUED
    assert pool.waiters() == []  # no execution waits in the slot line

    pool.release(first.job_id)
    assert tokens.started == [first.job_id, second.job_id]
    assert set(pool.holders()) == {second.job_id}


def test_queueing_again_starts_nothing_twice(pool, store, tokens):
    pool.limit = 1
    record = queued_job(store, "inbox/a/1.mp4", 1.0)
    pool.queue(record)
    pool.queue(record)  # a redelivered upload event
    pool.queue(store.require(record.job_id))  # its record says received now: stale, skipped
    pool.release(record.job_id)
    assert tokens.started == [record.job_id]
    assert pool.admission is not None
    assert pool.admission.backlog.turns() == {}  # the folder left the rotation, empty


def test_folders_take_turns_so_a_backfill_does_not_hold_back_a_small_folder(pool, store):
    pool.limit = 1
    for n in range(20):
        pool.queue(queued_job(store, f"inbox/archive/{n:02d}.mp4", 100.0 + n))
    for n in range(3):
        pool.queue(queued_job(store, f"inbox/news/n{n}.mp4", 200.0 + n))
        pool.queue(queued_job(store, f"inbox/promo/p{n}.mp4", 300.0 + n))

    order = admit_one_at_a_time(pool, store, 12)

    # The archive's first clip took the only slot on arrival; then the folders take turns.
    assert order[:10] == ["00.mp4", "n0.mp4", "p0.mp4", "01.mp4", "n1.mp4", "p1.mp4", "02.mp4",
                          "n2.mp4", "p2.mp4", "03.mp4"]  # fmt: skip
    assert order[10:] == ["04.mp4", "05.mp4"]  # the small folders are done: the archive runs on


def test_a_folder_back_from_an_idle_spell_does_not_claim_the_turns_it_missed(pool, store):
    pool.limit = 1
    for n in range(8):
        pool.queue(queued_job(store, f"inbox/archive/{n}.mp4", 100.0 + n))
    admit_one_at_a_time(pool, store, 5)  # the archive alone took 5 turns
    for n in range(3):
        pool.queue(queued_job(store, f"inbox/news/n{n}.mp4", 200.0 + n))

    order = admit_one_at_a_time(pool, store, 4)

    assert order == ["5.mp4", "n0.mp4", "6.mp4", "n1.mp4"]  # level, not 5 turns in a row


def test_a_weighted_folder_takes_its_share_of_turns(pool, store):
    pool.limit = 1
    for n in range(12):
        pool.queue(queued_job(store, f"inbox/big/{n:02d}.mp4", 100.0 + n, weight=2))
    for n in range(12):
        pool.queue(queued_job(store, f"inbox/small/s{n:02d}.mp4", 200.0 + n))

    order = admit_one_at_a_time(pool, store, 13)[1:]  # after the first arrival's own slot

    assert sum(name.startswith("s") for name in order) == 4  # 2 : 1
    assert sum(not name.startswith("s") for name in order) == 8


def test_a_high_priority_clip_passes_its_folders_backlog(pool, store):
    pool.limit = 1
    for n in range(10):
        pool.queue(queued_job(store, f"inbox/archive/{n}.mp4", 100.0 + n))
    urgent = queued_job(store, "inbox/archive/urgent.mp4", 500.0, priority="high")
    pool.queue(urgent)
    pool.queue(queued_job(store, "inbox/archive/later.mp4", 50.0, priority="low"))
    eta = pool.eta(urgent)
    assert eta is not None and eta.place.ahead == 0  # its place counts the priority

    order = admit_one_at_a_time(pool, store, 12)

    assert order[:2] == ["0.mp4", "urgent.mp4"]  # the next admission, though uploaded last
    assert order[-1] == "later.mp4"  # low waits for the rest, though uploaded first


def test_a_cancelled_queued_job_never_starts(pool, store, tokens, settings):
    pool.limit = 1
    running = queued_job(store, "inbox/a/1.mp4", 1.0)
    cancelled = queued_job(store, "inbox/a/2.mp4", 2.0)
    left = queued_job(store, "inbox/a/3.mp4", 3.0)
    for record in (running, cancelled, left):
        pool.queue(record)
    # Its ending claimed first (as cancel's end_job_once does), its entry not yet removed.
    assert store.update(
        cancelled.job_id,
        {"status": JobStatus.FAILED.value, "phase": JobPhase.CANCELLED.value},
        condition="#status = :queued",
        condition_names={"#status": "status"},
        condition_values={":queued": JobStatus.QUEUED.value},
    )

    pool.release(running.job_id)

    assert tokens.started == [running.job_id, left.job_id]
    assert store.require(cancelled.job_id).status is JobStatus.FAILED
    pool.leave_backlog(store.require(cancelled.job_id))  # and cancel's own removal is harmless


def test_an_admission_reserves_the_first_parts_estimate_with_its_slot(
    slots_table, jobs_table, tokens, settings, pool, store
):
    budgeted = _budgeted(pool, limit=1, daily_credits=100)
    record = queued_job(store, "inbox/a/1.mp4", 1.0)
    budgeted.queue(record)
    reservation = budgeted.reservation(record.job_id)
    assert reservation is not None and float(reservation["reserved"]) == 10.0  # 5 s at 2 a second


def test_the_daily_budget_holds_the_backlog_and_starts_nothing(slots_table, tokens, pool, store):
    budgeted = _budgeted(pool, limit=2, daily_credits=12)
    first = queued_job(store, "inbox/a/1.mp4", 1.0)
    second = queued_job(store, "inbox/a/2.mp4", 2.0)
    assert budgeted.queue(first) == [first.job_id]
    assert budgeted.queue(second) == []  # a slot is free, today's budget is not
    assert tokens.started == [first.job_id]
    assert store.require(second.job_id).status is JobStatus.QUEUED
    state = budgeted.backlog_state()
    assert state.budget_wait_since is not None and state.queued == 1

    budgeted.charge(first.job_id, 0.0, task=0)  # the provider billed nothing: room again
    budgeted.release(first.job_id)
    assert tokens.started == [first.job_id, second.job_id]
    assert budgeted.backlog_state().budget_wait_since is None


def test_a_split_job_is_admitted_with_a_slot_for_its_first_part(pool, store, tokens):
    from dropcut.model.plan import PartPlan, Plan, PlanKind

    plan = Plan(
        kind=PlanKind.SPLIT,
        parts=[PartPlan(index=0, start_seconds=0, end_seconds=9), PartPlan(index=1, start_seconds=9, end_seconds=18)],
    )  # fmt: skip
    record = queued_job(store, "inbox/a/long.mp4", 1.0)
    record = record.model_copy(update={"plan": plan.model_dump(mode="json")})
    pool.queue(record)
    assert set(pool.holders()) == {f"{record.job_id}-p00"}
    assert tokens.started == [record.job_id]


def test_a_folder_retired_while_a_job_arrives_is_put_back(slots_table):
    backlog = Backlog(slots_table, "evolink")
    layout = BucketLayout("media")
    record = JobRecord(
        job_id=job_id_for("media", "inbox/a/1.mp4", "v1"),
        status=JobStatus.QUEUED,
        bucket="media",
        key="inbox/a/1.mp4",
        version="v1",
        created_at=1.0,
    )
    queued = Queued.of(record, layout, 0.0)
    backlog.enqueue(queued, 1)
    # An admission found the folder empty just before this entry landed, and retires it now.
    backlog.retire("a", 1)
    assert set(backlog.turns()) == {"a"}  # it looked again, found the entry, put it back
    assert backlog.head("a") == queued


def test_a_key_at_the_inbox_root_has_a_folder_of_its_own():
    layout = BucketLayout("media")
    assert layout.folder_of("inbox/clip.mp4") == ROOT_FOLDER
    assert layout.folder_of("inbox/news/a/b.mp4") == "news"


class Statuses:
    """Executions as the reconciler reads them: each job's status, set by the test."""

    def __init__(self) -> None:
        self.of: dict[str, str] = {}

    def status(self, job_id: str) -> str | None:
        return self.of.get(job_id)

    def start(self, job_id: str) -> None:
        self.of.setdefault(job_id, "RUNNING")


def test_the_reconciler_keeps_a_first_parts_slot_while_its_job_prepares(
    pool, store, media_bucket, settings
):
    from dropcut.aws.job_events import NO_JOB_EVENTS
    from dropcut.model.plan import PartPlan, Plan, PlanKind
    from dropcut.steps.reconcile import ReconcileDeps, reconcile

    plan = Plan(
        kind=PlanKind.SPLIT,
        parts=[PartPlan(index=0, start_seconds=0, end_seconds=9), PartPlan(index=1, start_seconds=9, end_seconds=18)],
    )  # fmt: skip
    record = queued_job(store, "inbox/a/long.mp4", 1.0)
    store.update(record.job_id, {"plan": plan.model_dump(mode="json")})
    pool.queue(store.require(record.job_id))
    first_part = f"{record.job_id}-p00"
    executions = Statuses()
    executions.of[record.job_id] = "RUNNING"  # Prepare runs: no part record yet
    deps = ReconcileDeps(
        s3=media_bucket,
        store=store,
        layout=settings.layout,
        executions=executions,  # type: ignore[arg-type]
        slots=pool,
        manifest_wait_seconds=600,
        lost_task_hold_seconds=60,
        events=NO_JOB_EVENTS,
        batches=None,
        inbox=None,
    )

    assert reconcile(deps).slots_reclaimed == []
    assert set(pool.holders()) == {first_part}

    executions.of[record.job_id] = "FAILED"  # Prepare failed before writing the parts
    assert reconcile(deps).slots_reclaimed == [first_part]
    assert pool.holders() == {}


def test_admissions_before_counts_the_other_folders_turns_up_to_what_they_have():
    from dropcut.model.eta import FolderBacklog, admissions_before, start_in_seconds

    # 4 before it in its folder: 5 turns of its folder, as many of each other folder (at most
    # what each has queued), twice as many of a folder of twice the weight.
    others = [FolderBacklog(queued=10, weight=1), FolderBacklog(queued=2, weight=1)]
    assert admissions_before(4, 1, others) == 4 + 5 + 2
    assert admissions_before(4, 1, [FolderBacklog(queued=100, weight=2)]) == 4 + 10
    assert admissions_before(0, 2, [FolderBacklog(queued=100, weight=1)]) == 1
    assert start_in_seconds(9, limit=3, hold_seconds=60.0) == 190.0


def test_a_queued_jobs_place_and_start_follow_the_backlog(pool, store):
    from dropcut.aws.slot_pace import HOLDS_RING, hold_pace

    pool.limit = 1
    first = queued_job(store, "inbox/a/0.mp4", 1.0)
    pool.queue(first)  # admitted: holds the slot
    for n in range(1, 4):
        pool.queue(queued_job(store, f"inbox/a/{n}.mp4", 1.0 + n))
    for n in range(5):
        pool.queue(queued_job(store, f"inbox/b/{n}.mp4", 10.0 + n))
    third = store.require(job_id_for("media", "inbox/a/3.mp4", "v1"))

    eta = pool.eta(third)
    assert eta is not None and eta.start_in is None  # no slot given back yet: no pace
    assert (eta.place.ahead, eta.place.queued) == (2, 8)
    assert eta.place.admissions_before == 2 + 3  # 2 of a/, 3 turns of b/ meanwhile

    pace = hold_pace(pool.table, pool.pool, pool.limit)
    pace.record(HOLDS_RING, 100.0)  # the slot's first hold: a cold start
    pace.record(HOLDS_RING, 30.0)
    eta = pool.eta(third)
    assert eta is not None and eta.start_in is None, "no pace from fewer than 2 x limit + 1"
    pace.record(HOLDS_RING, 30.0)
    eta = pool.eta(third)
    assert eta is not None and eta.start_in == (5 + 0.5) * 30.0, "the median: not the cold one"

    pool.release(first.job_id)  # b/ takes its turn
    eta = pool.eta(third)
    assert eta is not None and (eta.place.ahead, eta.place.admissions_before) == (2, 2 + 3)
    [holder] = pool.holders()
    pool.release(holder)  # a/1 admitted: one less before it
    eta = pool.eta(third)
    assert eta is not None and (eta.place.ahead, eta.place.queued) == (1, 6)
    assert pool.eta(first) is None  # not queued


def test_a_slot_given_back_records_how_long_it_was_held(pool, store):
    from dropcut.aws.slot_pace import HOLDS_RING, hold_pace

    record = queued_job(store, "inbox/a/0.mp4", 1.0)
    pool.queue(record)
    pool.release(record.job_id)
    [held] = hold_pace(pool.table, pool.pool, pool.limit).recent(HOLDS_RING)
    assert 0 <= held < 60


def test_a_job_over_the_whole_daily_budget_does_not_hold_the_backlog(
    slots_table, tokens, pool, store
):
    budgeted = _budgeted(pool, limit=2, daily_credits=12)
    huge = queued_job(store, "inbox/a/huge.mp4", 1.0).model_copy(
        update={"media": {"duration_seconds": 10.0}}  # 20 credits: more than the whole budget
    )
    store.update(huge.job_id, {"media": huge.media})
    after = queued_job(store, "inbox/a/after.mp4", 2.0)
    budgeted.queue(huge)
    budgeted.queue(after)
    # Started without a slot (its AcquireSlot ends it: over_daily_budget, unpaid); the next
    # job is admitted behind it.
    assert tokens.started == [huge.job_id, after.job_id]
    assert set(budgeted.holders()) == {after.job_id}
    assert store.require(huge.job_id).status is JobStatus.RECEIVED


def test_jobs_queued_before_the_pace_was_known_get_their_expected_start_later(pool, store):
    """Submit records no start for a job queued before min_holds(limit) holds were measured;
    the reconciler's pass gives those jobs one (oldest first), and leaves the others alone."""
    from dropcut.aws.slot_pace import HOLDS_RING, hold_pace, min_holds
    from dropcut.services.estimates import estimate_unestimated, record_eta

    pool.limit = 1
    first = queued_job(store, "inbox/a/0.mp4", 1.0)
    pool.queue(first)  # admitted
    early = [queued_job(store, f"inbox/a/{n}.mp4", 1.0 + n) for n in range(1, 4)]
    for record in early:
        pool.queue(record)
        assert record_eta(store, pool, record, 100.0).starts_at is None  # as Submit finds it
    assert estimate_unestimated(store, pool, lambda: 100.0) == [], "still no pace: nothing to give"

    for _ in range(min_holds(pool.limit)):
        hold_pace(pool.table, pool.pool, pool.limit).record(HOLDS_RING, 20.0)
    late = queued_job(store, "inbox/a/9.mp4", 50.0)
    pool.queue(late)
    given_at_submit = record_eta(store, pool, late, 150.0)

    assert estimate_unestimated(store, pool, lambda: 200.0) == [r.job_id for r in early]
    for n, record in enumerate(early):
        eta = store.require(record.job_id).eta
        assert eta is not None and eta.estimated_at == 200.0
        assert eta.starts_at == 200.0 + (n + 0.5) * 20.0
    assert store.require(late.job_id).eta == given_at_submit, "an estimated job keeps its own"
    assert estimate_unestimated(store, pool, lambda: 250.0) == [], "once"
