"""A job's units of provider work: the job itself, or the parts Prepare split it into.

Each unit has a record in the jobs table (a part's id is `<job id>-pNN`, dropcut.plan) with its
own slot, task, follow and edited video; this module reads them for the steps that look at the
whole job (Stitch, RecordFailure, the reconciler).
"""

from __future__ import annotations

import time
from typing import Any, Literal

from dropcut.jobs import JobRecord, JobStatus, JobStore
from dropcut.layout import WORK_KEEP_DAYS
from dropcut.phases import JobPhase
from dropcut.providers import PROVIDERS
from dropcut.providers.base import TaskState
from dropcut.slots import SlotPool, settle_slot

#: A paid result is re-used only if it still has this long to live (s): the retry's steps
#: take a few minutes to reach the copy.
REUSE_MARGIN_SECONDS = 15 * 60
Reusable = Literal["stored", "task"]


def unit_records(store: JobStore, job: JobRecord) -> list[JobRecord]:
    """The job's unit records in order: [job] itself when it was not split (or not yet prepared),
    else one per part. A part without a record (Prepare crashed midway) is left out."""
    if not job.units or job.units == [job.job_id]:
        return [job]
    found = (store.get(unit) for unit in job.units)
    return [record for record in found if record is not None]


def is_split(job: JobRecord) -> bool:
    """True when the job's provider work is spread over part records."""
    return bool(job.units) and job.units != [job.job_id]


def unit_state(unit: JobRecord) -> str:
    """One word for where a unit stands: edited, failed, at_provider, waiting."""
    if unit.edited_key:
        return "edited"
    if unit.task_state == "failed" or unit.error_reason:
        return "failed"
    if unit.task_id:
        return "at_provider"
    return "waiting"


def part_summary(unit: JobRecord, prepared: dict[str, Any] | None = None) -> dict[str, Any]:
    """What a report or a result manifest says of one unit: its span of the input, its state,
    its task and credits, and where its edited video is kept."""
    summary: dict[str, Any] = {
        "unit": unit.job_id,
        "index": unit.part_index if unit.part_index is not None else 0,
        "state": unit_state(unit),
        "provider_task_id": unit.task_id,
        "credits": unit.credits,
        "edited_key": unit.edited_key,
    }
    if prepared is not None:
        summary["start_seconds"] = prepared.get("start_seconds")
        summary["duration_seconds"] = prepared.get("duration_seconds")
    return summary


def parts_of(store: JobStore, job: JobRecord) -> list[dict[str, Any]]:
    """Every unit of a split job, summarized (part_summary); [] for a job that was not split."""
    if not is_split(job):
        return []
    prepared = {int(entry["index"]): entry for entry in job.prepared or []}
    return [
        part_summary(unit, prepared.get(unit.part_index or 0)) for unit in unit_records(store, job)
    ]


def paid_of(store: JobStore, job: JobRecord) -> dict[str, Any]:
    """What the job's provider work was billed, for its report: every task the provider ran
    for it (a part's failed tasks included), its state, its credits where the provider said,
    whether its result is stored and, if not, when its link dies; `uncertain_creates` counts
    creates that may have made a task dropcut never learned of.

    Shape: {"tasks": [{part, task_id, state, credits, result_stored, result_link_expires_at}],
    "credits": sum of the known credits, "uncertain_creates": int, "summary": one sentence}."""
    tasks: list[dict[str, Any]] = []
    uncertain = 0
    for unit in unit_records(store, job):
        for failed in unit.failed_tasks:
            tasks.append(
                {
                    "part": unit.job_id,
                    "task_id": failed.get("task_id"),
                    "state": "failed",
                    "credits": failed.get("credits"),
                    "result_stored": False,
                }
            )
        if unit.task_id:
            tasks.append(
                {
                    "part": unit.job_id,
                    "task_id": unit.task_id,
                    "state": unit.task_state or "unknown",
                    "credits": unit.credits,
                    "result_stored": unit.edited_key is not None,
                    "result_link_expires_at": unit.result_link_expires_at,
                }
            )
        elif unit.creating_since is not None:
            uncertain += 1
    credits = round(sum(float(task["credits"] or 0) for task in tasks), 6)
    summary = (
        f"{len(tasks)} provider task(s) ran for this job ({credits:g} credits reported)"
        if tasks
        else "no provider task ran for this job"
    )
    if uncertain:
        summary += f"; {uncertain} create(s) may have made a task dropcut never learned of"
    return {"tasks": tasks, "credits": credits, "uncertain_creates": uncertain, "summary": summary}


def end_parts(store: JobStore, slots: SlotPool, job: JobRecord, hold_seconds: float) -> None:
    """A split job has ended (failed, cancelled, abandoned): each part not yet edited is marked
    failed, leaves the slot line and gives its slot back (kept for `hold_seconds` while its task
    may still run). Nothing for a job that was not split."""
    if not is_split(job):
        return
    for unit in unit_records(store, job):
        slots.leave_line_of(unit.job_id, unit.created_at)
        settle_slot(slots, unit, hold_seconds)
        if unit.status is not JobStatus.SUCCEEDED:
            store.update(
                unit.job_id, {"status": JobStatus.FAILED.value, "phase": JobPhase.FAILED.value}
            )


def reusable_result(unit: JobRecord, now: float | None = None) -> Reusable | None:
    """What of `unit`'s paid work a retry can re-use instead of paying again: "stored" (its
    edited video is kept under work/ for WORK_KEEP_DAYS), "task" (its task completed, or may
    have, and the provider's result link still lives: Finalize copies it), or None (no task,
    a failed one, or a dead link)."""
    now = time.time() if now is None else now
    if (
        unit.edited_key
        and unit.stored_at
        and unit.stored_at + WORK_KEEP_DAYS * 86400 > now + (REUSE_MARGIN_SECONDS)
    ):
        return "stored"
    if not unit.task_id or unit.task_state == TaskState.FAILED.value or not unit.provider:
        return None
    link_seconds = PROVIDERS[unit.provider].result_link_seconds
    since = unit.task_finished_seen_at or unit.task_created_at
    expires_at = unit.result_link_expires_at or (since + link_seconds if since else None)
    if expires_at is None or expires_at <= now + REUSE_MARGIN_SECONDS:
        return None
    return "task"


def reusable_results(store: JobStore, job: JobRecord) -> dict[int, Reusable]:
    """The job's units whose paid work a retry re-uses, by part index (0: a job not split)."""
    found = {}
    for unit in unit_records(store, job):
        reuse = reusable_result(unit)
        if reuse is not None:
            found[unit.part_index or 0] = reuse
    return found


#: What a re-used unit takes over from the unit that paid for it.
_CARRIED = (
    "provider",
    "task_id",
    "task_state",
    "task_created_at",
    "task_finished_seen_at",
    "credits",
    "edited_key",
    "stored_at",
    "result_link_expires_at",
)


def carry_paid_results(store: JobStore, job: JobRecord) -> list[str]:
    """For a retry (`job.retry_of`), once Prepare made its units: each unit whose counterpart
    in the retried job has reusable paid work (reusable_result) takes it over, so its task is
    followed (or its edited video used) and no new task is paid. Only when the options and the
    parts are the same (the same prompt on the same span). Returns the re-used unit ids."""
    old = store.get(job.retry_of) if job.retry_of else None
    if old is None or old.spec != job.spec or not _same_parts(old, job):
        return []
    by_index = {unit.part_index or 0: unit for unit in unit_records(store, old)}
    carried = []
    for unit in unit_records(store, job):
        paid = by_index.get(unit.part_index or 0)
        reuse = reusable_result(paid) if paid is not None else None
        if paid is None or reuse is None or unit.task_id or unit.edited_key:
            continue
        fields: dict[str, Any] = {name: getattr(paid, name) for name in _CARRIED}
        if reuse == "task":
            fields["edited_key"] = fields["stored_at"] = None
        fields["carried_from"] = paid.job_id
        fields["status"] = (
            JobStatus.SUCCEEDED.value
            if reuse == "stored" and unit.part_of
            else JobStatus.RUNNING.value
        )
        if store.update(
            unit.job_id,
            fields,
            condition="attribute_not_exists(task_id) AND attribute_not_exists(creating_since)",
        ):
            carried.append(unit.job_id)
    return carried


def _same_parts(old: JobRecord, new: JobRecord) -> bool:
    """The two jobs split the input the same way (or neither is split)."""

    def spans(job: JobRecord) -> list[tuple[Any, Any]]:
        return [(p.get("start_seconds"), p.get("duration_seconds")) for p in job.prepared or []]

    return (old.plan or {}).get("kind") == (new.plan or {}).get("kind") and spans(old) == spans(new)
