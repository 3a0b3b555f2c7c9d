"""Reading jobs as the pipeline writes them: records from the jobs table (its `by_status`
index), the slot line (SlotsTable, through dropcut.aws.slots), error reports and result manifests."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from dropcut.aws.backlog import Backlog
from dropcut.aws.job_store import JobStore
from dropcut.aws.slot_pace import queue_eta
from dropcut.aws.slots import SlotPool, Waiter
from dropcut.errors import JobCancelled
from dropcut.model.deadlines import wait_seconds
from dropcut.model.jobs import BASE_JOB_ID_CHARS, JobRecord, JobStatus, is_job_id
from dropcut.model.layout import BucketLayout
from dropcut.model.phases import JobPhase
from dropcut.model.plan import Plan
from dropcut_cli.connection import Stack

ENDED = frozenset({JobStatus.SUCCEEDED, JobStatus.FAILED})
NOT_ENDED = tuple(status for status in JobStatus if status not in ENDED)
#: The largest JSON document (report, result manifest) the command line reads.
MAX_DOCUMENT_BYTES = 1024 * 1024


@dataclass(frozen=True)
class Phase:
    """Where a job is, for people: a short name and one line of detail."""

    name: str
    detail: str = ""
    ended: bool = False
    ok: bool = False


class Line(list[str]):
    """Job ids waiting for a provider slot, first in line first; `for_budget`: those the daily
    credit budget holds back (a free slot was refused them: dropcut.aws.slots marks them)."""

    def __init__(self, waiters: Iterable[Waiter] = ()) -> None:
        waiters = list(waiters)
        super().__init__(waiter.job_id for waiter in waiters)
        self.for_budget = frozenset(w.job_id for w in waiters if w.budget_wait_since is not None)


def inbox_key(ref: str, layout: BucketLayout) -> str:
    """`team/clip.mp4` or `inbox/team/clip.mp4` -> `inbox/team/clip.mp4`."""
    ref = ref.lstrip("/")
    return ref if ref.startswith(layout.inbox) else layout.inbox + ref


class JobReader:
    """Jobs of one stack, read the way the pipeline's own code reads them."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.layout = BucketLayout(stack.bucket)
        self.table = stack.table(stack.jobs_table_name)
        self.store = JobStore(self.table)
        self._documents: dict[str, dict[str, Any] | None] = {}

    def get(self, job_id: str) -> JobRecord | None:
        return self.store.get(job_id)

    def listing(
        self,
        statuses: tuple[JobStatus, ...] = tuple(JobStatus),
        since: float | None = None,
        prefix: str | None = None,
    ) -> list[JobRecord]:
        """Jobs in these statuses (newest first), created after `since`, with inputs under
        `prefix` (relative to the inbox): one query of the `by_status` index per status."""
        wanted = inbox_key(prefix, self.layout) if prefix else self.layout.inbox
        found: list[JobRecord] = []
        for status in statuses:
            for record in self.store.in_status(status, created_after=since):
                # A split job's parts are shown with their job (dropcut show), not as jobs.
                if record.key.startswith(wanted) and not record.part_of:
                    found.append(record)
        return sorted(found, key=lambda record: record.created_at, reverse=True)

    def find(self, ref: str) -> JobRecord | None:
        """A job by its id, the start of its id (`job-3f2a`), or its input key (the newest
        job of that key: a re-upload is a new job)."""
        if is_job_id(ref):
            return self.get(ref)
        jobs = self.listing()
        if ref.startswith("job-"):
            matches = [record for record in jobs if _names(ref, record.job_id)]
            return matches[0] if len(matches) == 1 else None
        key = inbox_key(ref, self.layout)
        return next((record for record in jobs if record.key == key), None)

    def line(self) -> Line:
        """Job ids waiting for a provider slot (or the daily budget), first in line first
        (empty when unknown)."""
        name, provider = self.stack.slots_table_name, self.stack.provider
        if not name or not provider:
            return Line()
        pool = SlotPool(self.stack.table(name), self.stack.sfn, provider, 0)
        try:
            return Line(pool.waiters())
        except (BotoCoreError, ClientError):
            return Line()

    def document(self, key: str | None) -> dict[str, Any] | None:
        """A JSON document of the bucket (report, result manifest); None when absent."""
        if not key:
            return None
        if key not in self._documents:
            try:
                body = self.stack.s3.get_object(Bucket=self.stack.bucket, Key=key)["Body"]
                loaded = json.loads(body.read(MAX_DOCUMENT_BYTES))
            except (ClientError, ValueError):
                loaded = None
            self._documents[key] = loaded if isinstance(loaded, dict) else None
        return self._documents[key]

    def phase(self, record: JobRecord | None, line: list[str], *, advice: bool = True) -> Phase:
        """Where the job is: its stored phase (dropcut.model.phases, as `dropcut ls --status` takes
        it), with one line of detail: its place in line, the provider's progress, a failure's
        advice (unless `advice` is False). A record from before phases were stored: worked out
        from its fields."""
        found = self._worked_out(record, line, advice=advice)
        if record is None or record.phase is None:
            return found
        phase = record.phase
        if phase is JobPhase.CANCELLED or phase is JobPhase.FAILED:
            return Phase(ending_word(record), found.detail, ended=True)
        return Phase(phase.label, found.detail, ended=phase.ended, ok=phase is JobPhase.DONE)

    def _worked_out(self, record: JobRecord | None, line: list[str], *, advice: bool) -> Phase:
        if record is None:
            return Phase("uploaded", "waiting for Submit to pick it up")
        if record.status is JobStatus.SUCCEEDED:
            return Phase("done", record.output_key or "", ended=True, ok=True)
        if record.status is JobStatus.FAILED:
            report = (self.document(record.error_report_key) or {}) if advice else {}
            word = ending_word(record)
            reason = record.error_reason if record.error_reason != word else ""
            detail = f"{reason or ''}: {report.get('advice') or ''}".strip(": ")
            return Phase(word, detail, ended=True)
        if record.status in (JobStatus.WAITING_FOR_MANIFEST, JobStatus.QUEUED):
            return self._waiting(record)
        plan = Plan.model_validate(record.plan) if record.plan else None
        if record.part_ids is None and plan is not None and plan.needs_prepare:
            made = f"{len(plan.parts)} parts" if len(plan.parts) > 1 else "one video"
            return Phase("preparing", f"{plan.kind.value}: making {made} within the model's limits")
        if record.part_ids and record.part_ids != [record.job_id]:
            return self._split_phase(record, line)
        if record.edited_key:
            return Phase("stitching", "making the output and its before/after picture")
        if record.job_id in line:
            place = line.index(record.job_id) + 1
            if isinstance(line, Line) and record.job_id in line.for_budget:
                return Phase(
                    "in line",
                    f"waiting for budget: today's credit budget is spent; {place} of {len(line)}",
                )
            return Phase("in line", f"for a provider slot: {place} of {len(line)}")
        if record.status is JobStatus.RECEIVED:
            return Phase("starting", "getting a slot and creating the provider task")
        if record.task_finished_seen_at is not None or record.callback_outcome is not None:
            return Phase("storing", "copying the edited video into the bucket")
        progress = f" {record.progress}%" if record.progress is not None else ""
        state = record.task_state or "queued"
        return Phase("at provider", f"{record.provider} {state}{progress}")

    def _waiting(self, record: JobRecord) -> Phase:
        """A job that has not started: waiting for its manifest, or queued in the backlog (its
        place and expected start, as they are now)."""
        if record.status is JobStatus.QUEUED:
            return Phase("queued", self.queue_detail(record))
        manifest = BucketLayout.manifest_name(record.key)
        return Phase("waiting for manifest", f"upload {manifest} with a prompt")

    def queue_detail(self, record: JobRecord) -> str:
        """`412 before it of 9,870 queued, starts in about 3 h` (dropcut.aws.slot_pace.queue_eta)."""
        name, provider = self.stack.slots_table_name, self.stack.provider
        found = None
        if name and provider:
            backlog = Backlog(self.stack.table(name), provider)
            try:
                found = queue_eta(backlog, self.layout, self.stack.concurrency, record)
            except (BotoCoreError, ClientError):
                found = None
        if found is None:
            return "in the backlog for a provider slot (folders take turns)"
        place = f"{found.place.admissions_before:,} before it of {found.place.queued:,} queued"
        if found.place.budget_wait_since is not None:
            return f"waiting for budget: today's credit budget is spent; {place}"
        if found.start_in is None:
            return f"{place}; no start time until this stack has measured its pace"
        return f"{place}, starts in about {about(found.start_in)}"

    def _split_phase(self, record: JobRecord, line: list[str]) -> Phase:
        """A split job's phase from its parts: how many are edited, at the provider, in line."""
        part_ids = record.part_ids or []
        parts = [self.store.part(part_id) for part_id in part_ids]
        edited = sum(1 for part in parts if part is not None and part.edited_key)
        if edited == len(part_ids):
            return Phase("stitching", f"joining {len(part_ids)} edited parts")
        queued = sum(1 for part_id in part_ids if part_id in line)
        running = sum(
            1 for part in parts if part is not None and part.task_id and not part.edited_key
        )
        detail = f"{edited} of {len(part_ids)} parts edited, {running} at the provider"
        if queued:
            detail += f", {queued} in line for a slot"
        return Phase("at provider" if running else "in line", detail)


def _names(ref: str, job_id: str) -> bool:
    """Whether `ref` (`job-3f2a`, `job-3f2a-r2`) names the job: the start of its first run's
    id, and the same attempt (a first run's prefix never names its retries)."""
    start, marker, attempt = ref.partition("-r")
    suffix = marker + attempt
    return job_id[:BASE_JOB_ID_CHARS].startswith(start) and job_id[BASE_JOB_ID_CHARS:] == suffix


def about(seconds: float) -> str:
    """A wait as people say it: `40 s`, `12 min`, `3 h`, `2 days`."""
    if seconds < 90:
        return f"{max(1, round(seconds))} s"
    if seconds < 90 * 60:
        return f"{round(seconds / 60)} min"
    if seconds < 48 * 3600:
        return f"{round(seconds / 3600)} h"
    return f"{round(seconds / 86400)} days"


def ending_word(record: JobRecord) -> str:
    """Its status in one word, `cancelled` for a job someone cancelled (status failed)."""
    return "cancelled" if record.error_reason == JobCancelled.reason else record.status.value


def parse_since(text: str) -> float:
    """`90s`, `15m`, `2h`, `3d` (dropcut.model.deadlines.wait_seconds) -> the epoch time that
    long ago."""
    seconds = wait_seconds(text)
    if seconds is None:
        raise ValueError(f"{text.strip().lower()!r} is not a duration like 90s, 15m, 2h or 3d")
    return time.time() - seconds
