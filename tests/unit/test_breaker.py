"""The provider breaker (dropcut.aws.breaker): a run of outage answers pauses admission for a
while (longer each time it trips again soon), StartTask sends no create while it is paused, and
everything resumes by itself."""

from __future__ import annotations

import time

import pytest

from dropcut.aws.breaker import (
    MAX_PAUSE_SECONDS,
    PAUSE_SECONDS,
    TRIP_OUTAGES,
    WINDOW_SECONDS,
    Breaker,
    is_outage,
)
from dropcut.aws.job_store import JobStore
from dropcut.errors import (
    ProviderOutOfCredits,
    ProviderRejected,
    ProviderThrottled,
    ProviderUnavailable,
)
from dropcut.model.jobs import JobStatus
from dropcut.steps.start_task import StartTaskDeps, start_task
from dropcut.wiring import presigning_s3_client
from tests.unit.test_backlog import queued_job
from tests.unit.test_start_task import CREATED, PLAN, FakeProvider

T = 1_800_000_000.0
DOWN = ProviderUnavailable("503 Service Unavailable", status=503)


@pytest.mark.parametrize(
    ("error", "outage"),
    [
        (DOWN, True),
        (ProviderUnavailable("500", status=500), True),
        (ProviderUnavailable("connection refused", delivered=False), True),
        (ProviderThrottled("429", status=429), True),
        (ProviderOutOfCredits("402", status=402), True),
        (ProviderRejected("400 bad prompt", status=400), False),
        (ProviderRejected("404", status=404), False),
        (ValueError("a bug"), False),
    ],
)
def test_what_counts_as_an_outage(error, outage):
    assert is_outage(error) is outage


@pytest.fixture
def breaker(slots_table) -> Breaker:
    return Breaker(slots_table, "evolink")


def test_a_run_of_outages_within_the_window_pauses_admission(breaker):
    assert not any(breaker.record(DOWN, T + i) for i in range(TRIP_OUTAGES - 1))
    assert breaker.paused_until() is None
    assert not breaker.record(ProviderRejected("400", status=400), T + 4)  # not an outage
    assert breaker.record(DOWN, T + 5)
    assert breaker.paused_until() == T + 5 + PAUSE_SECONDS
    assert not breaker.record(DOWN, T + 5.5)  # a new window starts at the trip


def test_outages_further_apart_than_the_window_never_trip(breaker):
    spaced = [breaker.record(DOWN, T + i * (WINDOW_SECONDS / 2 + 1)) for i in range(20)]
    assert not any(spaced)
    assert breaker.paused_until() is None


def test_tripping_again_soon_after_doubles_the_pause_up_to_its_cap(breaker):
    now, pauses = T, []
    for _ in range(6):
        for _ in range(TRIP_OUTAGES):
            tripped = breaker.record(DOWN, now)
        assert tripped
        until = breaker.paused_until()
        assert until is not None
        pauses.append(until - now)
        now = until + 1  # the provider is still down when the pause ends
    assert pauses == [15.0, 30.0, 60.0, 120.0, 120.0, 120.0]
    assert max(pauses) == MAX_PAUSE_SECONDS
    # Much later, a new outage starts again from the first pause.
    later = now + 3600
    assert [breaker.record(DOWN, later) for _ in range(TRIP_OUTAGES)][-1]
    assert breaker.paused_until() == later + PAUSE_SECONDS


def test_while_paused_nothing_is_admitted_and_then_the_backlog_goes_on(
    pool, jobs_table, slots_table, tokens
):
    store = JobStore(jobs_table)
    breaker = Breaker(slots_table, pool.pool)
    now = time.time()
    for _ in range(TRIP_OUTAGES):
        breaker.record(DOWN, now)
    first = queued_job(store, "inbox/a/1.mp4", 1.0)
    assert pool.queue(first) == []  # paused: queued, not admitted, nothing started
    assert tokens.started == []
    assert pool.backlog_state().paused_until == breaker.paused_until()
    pool.dispatch()
    assert tokens.started == []
    _end_pause(slots_table, breaker)
    assert pool.dispatch() == [first.job_id]
    assert tokens.started == [first.job_id]


def _end_pause(slots_table, breaker: Breaker) -> None:
    """The pause is over (as if its time had passed)."""
    from decimal import Decimal

    slots_table.update_item(
        Key=breaker.turns_key,
        UpdateExpression="SET paused_until = :past",
        ExpressionAttributeValues={":past": Decimal(str(time.time() - 1))},
    )


def _start_task_deps(
    store: JobStore, provider: FakeProvider, breaker: Breaker, name: str
) -> StartTaskDeps:
    """StartTask's dependencies with `provider` and `breaker` (polled, no callbacks, no pace)."""
    return StartTaskDeps(
        s3=presigning_s3_client(),
        store=store,
        provider_for=lambda _: provider,
        default_provider=name,
        plan=PLAN,
        presign_seconds=3600,
        callback_url_for=None,
        pace=None,
        breaker=breaker,
    )


def test_start_task_sends_no_create_while_paused(uploaded_job, slots_table, settings):
    store, job_id = uploaded_job()
    breaker = Breaker(slots_table, settings.provider)
    provider = FakeProvider(CREATED)
    deps = _start_task_deps(store, provider, breaker, settings.provider)
    now = time.time()
    for _ in range(TRIP_OUTAGES):
        breaker.record(DOWN, now)
    with pytest.raises(ProviderUnavailable) as held:
        start_task(deps, job_id)
    assert held.value.delivered is False  # retried by the state machine: nothing was sent
    assert provider.requests == []
    record = store.require(job_id)
    assert record.creating_since is None and record.status is JobStatus.RECEIVED
    _end_pause(slots_table, breaker)
    assert start_task(deps, job_id).task_id == CREATED.task_id
    assert len(provider.requests) == 1


def test_start_task_counts_an_outage_answer_to_a_create(uploaded_job, slots_table, settings):
    store, job_id = uploaded_job()
    breaker = Breaker(slots_table, settings.provider)
    for _ in range(TRIP_OUTAGES - 1):
        breaker.record(DOWN, time.time())
    throttled = FakeProvider(ProviderThrottled("429", status=429, retry_after=1))
    deps = _start_task_deps(store, throttled, breaker, settings.provider)
    with pytest.raises(ProviderThrottled):
        start_task(deps, job_id)
    assert breaker.paused_until() is not None  # the fifth outage answer tripped it
