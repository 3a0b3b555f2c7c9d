"""A job's parts: the job itself (the one-part case), or the parts Prepare split it into.

Each part has a record in the jobs table (a part's id is `<job id>-pNN`, dropcut.model.plan) with its
own slot, task, follow and edited video; this module reads them for the steps that look at the
whole job (Stitch, RecordFailure, the reconciler).
"""

from __future__ import annotations

import time
from typing import Any, Literal

from dropcut.aws.job_store import JobStore
from dropcut.aws.slots import SlotPool, settle_slot
from dropcut.model.jobs import JobRecord, JobStatus, PartRecord
from dropcut.model.layout import WORK_KEEP_DAYS
from dropcut.model.phases import JobPhase
from dropcut.providers import PROVIDERS
from dropcut.providers.base import TaskState

#: A paid result is re-used only if it still has this long to live (s): the retry's steps
#: take a few minutes to reach the copy.
REUSE_MARGIN_SECONDS = 15 * 60
Reusable = Literal["stored", "task"]


def part_records(store: JobStore, job: JobRecord) -> list[PartRecord]:
    """The job's part records in order: [job] itself when it was not split (or not yet prepared),
    else one per part. A part without a record (Prepare crashed midway) is left out."""
    if not job.part_ids or job.part_ids == [job.job_id]:
        return [job]
    found = (store.part(part_id) for part_id in job.part_ids)
    return [record for record in found if record is not None]


def is_split(job: JobRecord) -> bool:
    """True when the job's provider work is spread over part records."""
    return bool(job.part_ids) and job.part_ids != [job.job_id]


def part_state(part: PartRecord) -> str:
    """One word for where a part stands: edited, failed, at_provider, waiting."""
    if part.edited_key:
        return "edited"
    if part.task_state == "failed" or part.error_reason:
        return "failed"
    if part.task_id:
        return "at_provider"
    return "waiting"


def part_summary(part: PartRecord, prepared: dict[str, Any] | None = None) -> dict[str, Any]:
    """What a report or a result manifest says of one part: its span of the input, its state,
    its task and credits, and where its edited video is kept."""
    summary: dict[str, Any] = {
        "part": part.job_id,
        "index": part.part_index if part.part_index is not None else 0,
        "state": part_state(part),
        "provider_task_id": part.task_id,
        "credits": part.credits,
        "edited_key": part.edited_key,
    }
    if prepared is not None:
        summary["start_seconds"] = prepared.get("start_seconds")
        summary["duration_seconds"] = prepared.get("duration_seconds")
    return summary


def parts_of(store: JobStore, job: JobRecord) -> list[dict[str, Any]]:
    """Every part of a split job, summarized (part_summary); [] for a job that was not split."""
    if not is_split(job):
        return []
    prepared = {int(entry["index"]): entry for entry in job.prepared or []}
    return [
        part_summary(part, prepared.get(part.part_index or 0)) for part in part_records(store, job)
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
    for part in part_records(store, job):
        for failed in part.failed_tasks:
            tasks.append(
                {
                    "part": part.job_id,
                    "task_id": failed.get("task_id"),
                    "state": "failed",
                    "credits": failed.get("credits"),
                    "result_stored": False,
                }
            )
        if part.task_id:
            tasks.append(
                {
                    "part": part.job_id,
                    "task_id": part.task_id,
                    "state": part.task_state or "unknown",
                    "credits": part.credits,
                    "result_stored": part.edited_key is not None,
                    "result_link_expires_at": part.result_link_expires_at,
                }
            )
        elif part.creating_since is not None:
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
    for part in part_records(store, job):
        end_part(store, slots, part, hold_seconds)


def end_part(store: JobStore, slots: SlotPool, part: PartRecord, hold_seconds: float) -> None:
    """One part of an ended job: out of the slot line, its slot given back (kept for
    `hold_seconds` while its task may still run), marked failed unless it was edited."""
    slots.leave_line_of(part.job_id, part.created_at)
    settle_slot(slots, part, hold_seconds)
    if part.status is not JobStatus.SUCCEEDED:
        store.update(
            part.job_id, {"status": JobStatus.FAILED.value, "phase": JobPhase.FAILED.value}
        )


def reusable_result(part: PartRecord, now: float | None = None) -> Reusable | None:
    """What of `part`'s paid work a retry can re-use instead of paying again: "stored" (its
    edited video is kept under work/ for WORK_KEEP_DAYS), "task" (its task completed, or may
    have, and the provider's result link still lives: Finalize copies it), or None (no task,
    a failed one, or a dead link)."""
    now = time.time() if now is None else now
    if (
        part.edited_key
        and part.stored_at
        and part.stored_at + WORK_KEEP_DAYS * 86400 > now + (REUSE_MARGIN_SECONDS)
    ):
        return "stored"
    if not part.task_id or part.task_state == TaskState.FAILED.value or not part.provider:
        return None
    link_seconds = PROVIDERS[part.provider].result_link_seconds
    since = part.task_finished_seen_at or part.task_created_at
    expires_at = part.result_link_expires_at or (since + link_seconds if since else None)
    if expires_at is None or expires_at <= now + REUSE_MARGIN_SECONDS:
        return None
    return "task"


def reusable_results(store: JobStore, job: JobRecord) -> dict[int, Reusable]:
    """The job's parts whose paid work a retry re-uses, by part index (0: a job not split)."""
    found = {}
    for part in part_records(store, job):
        reuse = reusable_result(part)
        if reuse is not None:
            found[part.part_index or 0] = reuse
    return found


#: What a re-used part takes over from the part that paid for it.
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
    """For a retry (`job.retry_of`), once Prepare made its parts: each part whose counterpart
    in the retried job has reusable paid work (reusable_result) takes it over, so its task is
    followed (or its edited video used) and no new task is paid. Only when the options and the
    parts are the same (the same prompt on the same span). Returns the re-used part ids."""
    old = store.get(job.retry_of) if job.retry_of else None
    if old is None or old.spec != job.spec or not _same_parts(old, job):
        return []
    by_index = {part.part_index or 0: part for part in part_records(store, old)}
    carried = []
    for part in part_records(store, job):
        paid = by_index.get(part.part_index or 0)
        reuse = reusable_result(paid) if paid is not None else None
        if paid is None or reuse is None or part.task_id or part.edited_key:
            continue
        fields: dict[str, Any] = {name: getattr(paid, name) for name in _CARRIED}
        if reuse == "task":
            fields["edited_key"] = fields["stored_at"] = None
        fields["carried_from"] = paid.job_id
        fields["status"] = (
            JobStatus.SUCCEEDED.value
            if reuse == "stored" and part.part_of
            else JobStatus.RUNNING.value
        )
        if store.update(
            part.job_id,
            fields,
            condition="attribute_not_exists(task_id) AND attribute_not_exists(creating_since)",
        ):
            carried.append(part.job_id)
    return carried


def _same_parts(old: JobRecord, new: JobRecord) -> bool:
    """The two jobs split the input the same way (or neither is split)."""

    def spans(job: JobRecord) -> list[tuple[Any, Any]]:
        return [(p.get("start_seconds"), p.get("duration_seconds")) for p in job.prepared or []]

    return (old.plan or {}).get("kind") == (new.plan or {}).get("kind") and spans(old) == spans(new)
