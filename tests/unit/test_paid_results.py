"""A retry re-uses what was paid: each part of the retried job whose edited video is kept, or
whose task completed (or may have) while its result link lives, is taken over by the retry's
part; only parts with no paid result get a new task (dropcut.services.parts)."""

from __future__ import annotations

import time

import pytest

from dropcut.aws.job_store import JobStore
from dropcut.model.jobs import JobRecord, JobSpec, JobStatus, job_id_for
from dropcut.services.parts import carry_paid_results, reusable_result, reusable_results

OLD = job_id_for("media", "inbox/long.mp4", "v1")
NEW = OLD + "-r2"
SPANS = [
    {"index": 1, "start_seconds": 0.0, "duration_seconds": 10.0},
    {"index": 2, "start_seconds": 10.0, "duration_seconds": 10.0},
    {"index": 3, "start_seconds": 20.0, "duration_seconds": 10.0},
]
NOW = time.time()


def _job(store: JobStore, job_id: str, prompt: str = "sepia", **fields) -> JobRecord:
    record = JobRecord(
        job_id=job_id,
        status=JobStatus.FAILED,
        bucket="media",
        key="inbox/long.mp4",
        version="v1",
        spec=JobSpec(prompt=prompt),
        provider="evolink",
        plan={"kind": "split"},
        prepared=SPANS,
        units=[f"{job_id}-p0{n}" for n in (1, 2, 3)],
        **fields,
    )
    store.create(record)
    return record


def _part(store: JobStore, job_id: str, index: int, **fields) -> None:
    store.create(
        JobRecord(
            job_id=f"{job_id}-p0{index}",
            status=fields.pop("status", JobStatus.FAILED),
            bucket="media",
            key="inbox/long.mp4",
            version="v1",
            spec=JobSpec(prompt="sepia"),
            provider="evolink",
            part_of=job_id,
            part_index=index,
            **fields,
        )
    )


@pytest.fixture
def old_job(jobs_table) -> JobStore:
    """A split job cancelled with part 1 stored, part 2's task completed (its result not
    stored: the execution was stopped) and part 3's task failed."""
    store = JobStore(jobs_table)
    _job(store, OLD, error_reason="cancelled")
    _part(
        store,
        OLD,
        1,
        task_id="task-unified-1",
        task_state="succeeded",
        credits=10.0,
        edited_key=f"work/{OLD}/edited/{OLD}-p01.mp4",
        stored_at=NOW - 600,
    )
    _part(
        store,
        OLD,
        2,
        task_id="task-unified-2",
        task_state="running",
        task_created_at=NOW - 300,
        credits=10.0,
    )
    _part(store, OLD, 3, task_id="task-unified-3", task_state="failed", credits=0.0)
    return store


def test_a_retry_takes_over_every_paid_part_and_pays_only_for_the_rest(old_job: JobStore):
    store = old_job
    assert reusable_results(store, store.require(OLD)) == {1: "stored", 2: "task"}
    _job(store, NEW, retry_of=OLD)
    for index in (1, 2, 3):
        _part(store, NEW, index, status=JobStatus.RECEIVED)

    carried = carry_paid_results(store, store.require(NEW))

    assert carried == [f"{NEW}-p01", f"{NEW}-p02"]
    stored, task, fresh = (store.require(f"{NEW}-p0{n}") for n in (1, 2, 3))
    assert (stored.status, stored.edited_key, stored.carried_from) == (
        JobStatus.SUCCEEDED,
        f"work/{OLD}/edited/{OLD}-p01.mp4",
        f"{OLD}-p01",
    )
    assert (task.status, task.task_id, task.edited_key) == (
        JobStatus.RUNNING,
        "task-unified-2",
        None,
    )
    assert fresh.task_id is None and fresh.carried_from is None  # gets a new task
    assert carry_paid_results(store, store.require(NEW)) == []  # once


def test_nothing_is_re_used_for_other_options_or_other_parts(old_job: JobStore):
    store = old_job
    _job(store, NEW, prompt="watercolour", retry_of=OLD)
    for index in (1, 2, 3):
        _part(store, NEW, index, status=JobStatus.RECEIVED)
    assert carry_paid_results(store, store.require(NEW)) == []


def test_a_dead_link_or_an_expired_work_copy_is_not_re_used():
    base = {"job_id": OLD, "bucket": "b", "key": "k", "version": "v", "provider": "evolink"}
    dead = JobRecord(
        **base,
        status=JobStatus.FAILED,
        task_id="task-unified-1",
        task_state="succeeded",
        result_link_expires_at=NOW + 60,  # dies before a retry reaches the copy
    )
    assert reusable_result(dead, NOW) is None
    alive = dead.model_copy(update={"result_link_expires_at": NOW + 3600})
    assert reusable_result(alive, NOW) == "task"
    old_copy = alive.model_copy(
        update={"edited_key": "work/x.mp4", "stored_at": NOW - 7 * 86400, "task_state": "failed"}
    )
    assert reusable_result(old_copy, NOW) is None
    never_paid = JobRecord(**base, status=JobStatus.FAILED)
    assert reusable_result(never_paid, NOW) is None
