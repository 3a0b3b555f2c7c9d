"""The opt-in start deadline (`not_after`, dropcut.model.deadlines): a wait or a moment, checked
at Submit; a queued job past it is never admitted, and the reconciler ends it unpaid with a
report; a job admitted in time leaves no deadline behind. Without it, a job waits for ever."""

from __future__ import annotations

import time

import pytest

from dropcut.aws.job_events import NO_JOB_EVENTS
from dropcut.aws.job_store import JobStore
from dropcut.errors import InputInvalid, StartDeadlinePassed
from dropcut.model.deadlines import start_deadline
from dropcut.model.jobs import JobStatus, parse_job_spec
from dropcut.model.phases import JobPhase
from dropcut.steps.reconcile import ReconcileDeps, reconcile
from tests.unit.test_backlog import Statuses, queued_job

T = 1_800_000_000.0


@pytest.mark.parametrize(
    ("not_after", "deadline"),
    [
        ("90s", T + 90),
        ("45m", T + 2700),
        ("6h", T + 21600),
        ("1.5d", T + 129600),
        ("2027-01-15T08:00:00Z", 1_800_000_000.0),
        ("2027-01-15T09:00:00+01:00", 1_800_000_000.0),
    ],
)
def test_not_after_is_a_wait_from_the_arrival_or_a_moment(not_after, deadline):
    assert start_deadline(not_after, T) == deadline


@pytest.mark.parametrize(
    "not_after", ["soon", "2 weeks", "0s", "400d", "2027-01-15T08:00:00", "tomorrow 6am"]
)
def test_anything_else_is_a_problem_of_the_manifest(not_after):
    with pytest.raises(InputInvalid) as refused:
        parse_job_spec({"prompt": "sepia", "not_after": not_after})
    [problem] = refused.value.problems
    assert problem.field == "not_after"
    assert problem.message.startswith("Value error, must be a")
    assert any(word in problem.message for word in ("wait", "UTC offset"))


def _reconcile_deps(pool, store, media_bucket, settings) -> ReconcileDeps:
    return ReconcileDeps(
        s3=media_bucket,
        store=store,
        layout=settings.layout,
        executions=Statuses(),  # type: ignore[arg-type]
        slots=pool,
        manifest_wait_seconds=600,
        lost_task_hold_seconds=60,
        events=NO_JOB_EVENTS,
        batches=None,
        inbox=None,
    )


def test_a_job_still_queued_at_its_deadline_never_starts_and_ends_unpaid_with_a_report(
    pool, jobs_table, tokens, media_bucket, settings
):
    store = JobStore(jobs_table)
    pool.limit = 1
    now = time.time()
    running = queued_job(store, "inbox/a/1.mp4", now - 10)
    late = queued_job(store, "inbox/a/2.mp4", now - 9)
    store.update(late.job_id, {"start_deadline": now + 0.5})
    after = queued_job(store, "inbox/a/3.mp4", now - 8)
    for record in (running, store.require(late.job_id), after):
        pool.queue(record)
    assert pool.overdue(now) == []  # not yet

    time.sleep(0.6)
    pool.release(running.job_id)  # its turn came after its deadline: passed over

    assert tokens.started == [running.job_id, after.job_id]
    assert store.require(late.job_id).status is JobStatus.QUEUED
    assert pool.backlog_state().queued == 0  # set aside: no longer counted in the backlog
    assert pool.overdue(time.time()) == [late.job_id]

    report = reconcile(_reconcile_deps(pool, store, media_bucket, settings))

    assert report.start_deadlines == [late.job_id]
    ended = store.require(late.job_id)
    assert (ended.status, ended.phase) == (JobStatus.FAILED, JobPhase.FAILED)
    assert ended.error_reason == StartDeadlinePassed.reason
    assert ended.task_id is None and late.job_id not in tokens.started
    body = media_bucket.get_object(Bucket=settings.bucket, Key=str(ended.error_report_key))
    assert b"nothing was paid" in body["Body"].read()
    assert pool.overdue(time.time()) == []
    assert reconcile(_reconcile_deps(pool, store, media_bucket, settings)).start_deadlines == []


def test_a_job_admitted_in_time_leaves_no_deadline_and_one_without_waits_for_ever(
    pool, jobs_table, tokens
):
    store = JobStore(jobs_table)
    pool.limit = 1
    now = time.time()
    first = queued_job(store, "inbox/a/1.mp4", now - 10)
    store.update(first.job_id, {"start_deadline": now + 3600})
    patient = queued_job(store, "inbox/a/2.mp4", now - 1_000_000)  # queued for 11 days
    pool.queue(store.require(first.job_id))
    pool.queue(patient)
    assert tokens.started == [first.job_id]
    assert pool.overdue(now + 7200) == []  # admitted: its deadline went with its entry
    pool.release(first.job_id)
    assert tokens.started == [first.job_id, patient.job_id]


def test_a_cancelled_queued_job_leaves_its_deadline_and_its_count(pool, jobs_table):
    store = JobStore(jobs_table)
    pool.limit = 1
    now = time.time()
    running = queued_job(store, "inbox/a/1.mp4", now - 10)
    waiting = queued_job(store, "inbox/a/2.mp4", now - 9)
    store.update(waiting.job_id, {"start_deadline": now + 60})
    pool.queue(running)
    pool.queue(store.require(waiting.job_id))
    assert pool.backlog_state().queued == 1
    pool.leave_backlog(store.require(waiting.job_id))
    pool.leave_backlog(store.require(waiting.job_id))  # a repeat counts nothing twice
    assert pool.backlog_state().queued == 0
    assert pool.overdue(now + 120) == []


def test_submit_refuses_a_deadline_already_past_before_anything_is_paid(
    submit_deps_of, settings, jobs_table
):
    import json

    from dropcut.steps.submit import Outcome, submit_object

    deps = submit_deps_of()
    key = "inbox/a/late.mp4"
    deps.s3.put_object(
        Bucket=settings.bucket,
        Key=f"{key}.json",
        Body=json.dumps({"prompt": "sepia", "not_after": "2020-01-01T00:00:00Z"}).encode(),
    )
    put = deps.s3.put_object(Bucket=settings.bucket, Key=key, Body=b"\x00" * 20_000)
    result = submit_object(deps, settings.bucket, key, put["VersionId"])
    assert result.outcome is Outcome.REFUSED
    record = JobStore(jobs_table).require(str(result.job_id))
    assert "not_after" in {problem["field"] for problem in record.problems}
    assert deps.slots.backlog_state().queued == 0
