"""A poll schedule that learns: the first wait of a task with no provider estimate comes from the
durations of this stack's recent tasks (dropcut.aws.pace), never past the deadline, and falls back to
the cold-start schedule without history."""

from __future__ import annotations

import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dropcut.aws.pace import PaceBook, clip_bucket, learned_wait, pace_key
from dropcut.model.follow import PollPlan, first_progress
from dropcut.model.jobs import JobStatus
from dropcut.providers import ProviderTask, TaskState
from dropcut.steps.check_status import CheckStatusDeps, check_status
from dropcut.steps.start_task import StartTaskDeps, start_task
from dropcut.wiring import presigning_s3_client

PLAN = PollPlan(initial_seconds=15, max_seconds=60, growth_percent=150, deadline_seconds=600)
KEY = pace_key("aimlapi", "kling-o1", 4.0)


class Provider:
    """Creates a task with no estimate; answers status queries from a script."""

    supports_callback = False
    model = "kling-o1"

    def __init__(self, *states: TaskState) -> None:
        self.states = list(states)

    def create_task(self, request):
        return ProviderTask(task_id="task-1", state=TaskState.QUEUED, provider_status="queued")

    def get_task(self, task_id):
        state = self.states.pop(0)
        return ProviderTask(task_id=task_id, state=state, provider_status=state.value)


@given(
    durations=st.lists(st.floats(min_value=0, max_value=10**6), max_size=20),
    deadline=st.integers(min_value=1, max_value=10**5),
    created_ago=st.floats(min_value=0, max_value=10**5),
)
def test_the_learned_first_wait_never_goes_past_the_deadline(durations, deadline, created_ago):
    plan = PollPlan(initial_seconds=15, max_seconds=60, deadline_seconds=deadline)
    learned = learned_wait(durations, plan.initial_seconds)
    created_at = time.time() - created_ago
    progress = first_progress(
        "t", "aimlapi", TaskState.QUEUED, "poll", plan, None, created_at, learned=learned
    )
    assert 1 <= progress.wait_seconds <= max(1, deadline)
    assert progress.wait_seconds <= max(1, progress.deadline - created_at)
    assert progress.wait_seconds < progress.seconds_left  # heartbeat < timeout rule holds


def test_without_history_the_cold_start_schedule_is_kept():
    assert learned_wait([], 15) is None
    assert PLAN.waits_for(240, None, learned_wait([], 15)) == [15, 23, 35, 53, 60, 60]


def test_with_history_a_four_minute_task_is_seen_in_two_checks_at_most():
    # Tasks seen ending between 236 and 246 s: the first check comes half a step (15 s) before
    # their median, the next one step later.
    learned = learned_wait([246, 240, 238, 244], PLAN.initial_seconds)
    assert learned == 234
    for task_seconds in (200, 234, 240, 248):
        waits = PLAN.waits_for(task_seconds, None, learned)
        assert len(waits) <= 2
        assert sum(waits) - task_seconds <= 15 or len(waits) == 1
    # A provider estimate still wins over history.
    assert PLAN.first_wait(100, learned) == 100


def test_the_ring_keeps_the_latest_durations(jobs_table):
    book = PaceBook(jobs_table, ring=3)
    assert book.recent(KEY) == []
    for seconds in (10.0, 20.0, 30.0, 40.0, 50.5):
        book.record(KEY, seconds)
    assert book.recent(KEY) == [30.0, 40.0, 50.5]
    assert clip_bucket(4.0) == "3-5s" and clip_bucket(None) == "unknown"
    assert clip_bucket(12) == "10s+"


@pytest.fixture
def poll_job(uploaded_job):
    store, job_id = uploaded_job(provider="aimlapi", media={"duration_seconds": 4.0})
    return store, job_id


def test_start_task_learns_from_what_check_status_recorded(poll_job, jobs_table, settings, pool):
    store, job_id = poll_job
    book = PaceBook(jobs_table)

    def start(provider):
        deps = StartTaskDeps(
            s3=presigning_s3_client(),
            store=store,
            provider_for=lambda _: provider,
            default_provider="aimlapi",
            plan=PLAN,
            presign_seconds=3600,
            pace=book,
            callback_url_for=None,
            breaker=None,
        )
        return start_task(deps, job_id)

    cold = start(Provider())
    assert cold.wait_seconds == 15 and cold.pace_key == KEY  # no history: today's schedule
    # CheckStatus sees the task end 240 s after its creation and records it.
    seen = cold.model_copy(update={"created_at": time.time() - 240})
    checks = CheckStatusDeps(
        store=store,
        provider_for=lambda _: Provider(TaskState.SUCCEEDED),
        plan=PLAN,
        ledger=pool.ledger,
        pace=book,
        task_retries=0,
        breaker=None,
    )
    check_status(checks, job_id, seen)
    assert [round(d) for d in book.recent(KEY)] == [240]
    # The next job of the same provider, model and clip length starts from that history.
    store.update(job_id, {"task_id": None, "status": JobStatus.RECEIVED.value})
    warm = start(Provider())
    # Half a follow-up step (15 s) before the recorded 240 s (and the few ms the check took).
    assert warm.wait_seconds == learned_wait(book.recent(KEY), 15) in (232, 233)
    assert PLAN.next_interval(warm.interval_seconds) == PLAN.initial_seconds
