"""A job's units of provider work: the job itself, or the parts Prepare split it into.

Each unit has a record in the jobs table (a part's id is `<job id>-pNN`, dropcut.plan) with its
own slot, task, follow and edited video; this module reads them for the steps that look at the
whole job (Stitch, RecordFailure, the reconciler).
"""

from __future__ import annotations

from typing import Any

from dropcut.jobs import JobRecord, JobStatus, JobStore
from dropcut.slots import SlotPool, settle_slot


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
            store.update(unit.job_id, {"status": JobStatus.FAILED.value})
