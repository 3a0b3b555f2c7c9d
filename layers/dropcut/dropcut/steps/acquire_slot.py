"""AcquireSlot: put the job in line for a provider slot; its execution waits (for free) until
the slot is handed over, by this call or by whichever job gives one back (dropcut.slots)."""

from __future__ import annotations

from dataclasses import dataclass

from dropcut.jobs import JobStore
from dropcut.slots import SlotPool


@dataclass(frozen=True)
class AcquireSlotDeps:
    store: JobStore
    slots: SlotPool
    #: QueueWaitSeconds: how long a job may wait in line before it ends with a report.
    max_wait_seconds: int


def acquire_slot(deps: AcquireSlotDeps, job_id: str, task_token: str) -> bool:
    """Join the line with this wait's token; True when the job holds a slot now (its wait was
    resumed already). Raises SlotWaitTimedOut after max_wait_seconds in line."""
    record = deps.store.require(job_id)
    return deps.slots.acquire(job_id, record.created_at, task_token, deps.max_wait_seconds)
