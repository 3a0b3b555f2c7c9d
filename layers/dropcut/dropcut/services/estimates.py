"""A queued job's estimate on its record: its place in the backlog and its expected start
(dropcut.model.eta), written when Submit queues it, and by the reconciler for the jobs queued
before this stack knew its pace (dropcut.aws.slot_pace.min_holds): their record gets its first
expected start as soon as there is one. `dropcut ls`/`show`/`watch` work the current one out on
every read (dropcut.aws.slot_pace.queue_eta).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from dropcut.aws.job_store import JobStore
from dropcut.aws.slots import SlotPool
from dropcut.model.eta import QueueEta
from dropcut.model.jobs import JobRecord, JobStatus

#: Queued jobs the reconciler estimates per pass at most (reads: 5 a job, docs/backlog.md).
PER_PASS = 2_000
#: It stops after this many queued jobs in a row that have an expected start: jobs are queued
#: oldest first, and the ones without are those queued before the pace was known.
STOP_AFTER_ESTIMATED = 50


def record_eta(store: JobStore, slots: SlotPool, queued: JobRecord, now: float) -> QueueEta | None:
    """Estimate a queued job and write the estimate on its record; the estimate, or None when
    the job is no longer queued (admitted meanwhile)."""
    found = slots.eta(queued)
    if found is None:
        return None
    eta = QueueEta(
        before=found.place.admissions_before,
        backlog=found.place.queued,
        starts_at=now + found.start_in if found.start_in is not None else None,
        estimated_at=now,
    )
    store.update(queued.job_id, {"eta": eta.model_dump(mode="json")})
    return eta


def estimate_unestimated(
    store: JobStore, slots: SlotPool, clock: Callable[[], float] = time.time
) -> list[str]:
    """Give each queued job with no expected start one, oldest first, once the pace allows
    (at most PER_PASS; it stops at STOP_AFTER_ESTIMATED estimated jobs in a row); the ids of
    the jobs that got one. Each is estimated at its own `clock()` moment: the backlog moves
    while a long pass runs (a pass started 60 s ago would date a job's place too early)."""
    given: list[str] = []
    estimated_in_a_row = 0
    for seen, record in enumerate(store.in_status(JobStatus.QUEUED)):
        if seen >= PER_PASS or estimated_in_a_row >= STOP_AFTER_ESTIMATED:
            break
        if record.part_of is not None:
            continue
        if record.eta is not None and record.eta.starts_at is not None:
            estimated_in_a_row += 1
            continue
        estimated_in_a_row = 0
        eta = record_eta(store, slots, record, clock())
        if eta is None:
            continue  # admitted meanwhile
        if eta.starts_at is None:
            break  # no pace yet: nor for the jobs after it
        given.append(record.job_id)
    return given
