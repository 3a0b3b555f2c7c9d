"""AcquireSlot: put the job in line for a provider slot; its execution waits (for free) until
the slot is handed over, by this call or by whichever job gives one back (dropcut.aws.slots). With a
daily credit budget, the hand-over also reserves the job's estimated credits (dropcut.model.budget)."""

from __future__ import annotations

from dataclasses import dataclass

from dropcut.aws.job_store import JobStore
from dropcut.aws.ledger import BudgetLedger
from dropcut.aws.slots import SlotPool
from dropcut.model.jobs import PartRecord
from dropcut.model.phases import JobPhase
from dropcut.providers import PROVIDERS, TaskState


@dataclass(frozen=True)
class AcquireSlotDeps:
    store: JobStore
    slots: SlotPool
    #: QueueWaitSeconds: how long a job may wait in line before it ends with a report.
    max_wait_seconds: int


def acquire_slot(deps: AcquireSlotDeps, part_id: str, task_token: str) -> bool:
    """Join the line with this wait's token; True when the job holds a slot now (its wait was
    resumed already). Raises SlotWaitTimedOut (BudgetWaitTimedOut when the daily budget held
    it back) after max_wait_seconds in line, OverDailyBudget when the job alone passes the
    daily budget. A part that re-uses a retried job's finished, paid work (its edited video, or
    a task the provider reported succeeded: dropcut.services.parts.carry_paid_results) needs no slot:
    its wait is resumed at once."""
    record = deps.store.require_part(part_id)
    deps.store.move_phase(part_id, JobPhase.IN_LINE)
    if record.carried_from and (record.edited_key or record.task_state == TaskState.SUCCEEDED):
        deps.slots.resume_without_slot(task_token, part_id)
        return True
    estimate = job_estimate(deps.slots, record)
    return deps.slots.acquire(
        part_id, record.created_at, task_token, deps.max_wait_seconds, estimate
    )


def job_estimate(slots: SlotPool | BudgetLedger, record: PartRecord) -> float:
    """The job's (or part's) estimated credits for one task (0 without a budget): its
    provider's billing rule on the probed duration (DailyBudget.estimate)."""
    if not slots.budget.enabled:
        return 0.0
    provider = PROVIDERS[record.provider or slots.pool]
    seconds = (record.media or {}).get("duration_seconds")
    return slots.budget.estimate(provider, float(seconds) if seconds is not None else None)
