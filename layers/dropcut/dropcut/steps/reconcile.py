"""The scheduled reconciler: drives jobs that can no longer move on their own to an ending.

- A video that waited longer than the manifest wait for its manifest ends with a report.
- A queued job still queued at its start deadline (not_after) ends with a report, unpaid.
- A received job whose execution never started (Submit crashed between record and start) is
  started; a received or running job whose execution is over without an ending (cancelled,
  timed out, crashed) ends with a report; a part whose job has ended (made after a cancel,
  while Prepare ran) is ended too.
- Slots held by jobs that ended without giving them back are given back (those whose task may
  still be running keep them for the lost-task hold); waiters whose execution is gone leave the
  line; free slots go to the oldest waiters (with a daily budget, as far as today's budget
  allows: a new UTC day lets waiting jobs go on the first pass).
- Batches whose folder went quiet after their last ending are completed (summary, event);
  a batch whose endings were not all counted (a crash) is recounted; a half-written summary is
  written again (dropcut.services.batches).
- Queued jobs queued before the stack knew its pace get their first expected start
  (dropcut.services.estimates).
- Inbox events that Submit failed on until they were dead-lettered are sent back to the inbox
  queue, later each time; the last time, their upload ends with a report
  (dropcut.services.dead_letters).
- The in-flight gauges (slots in use, jobs in line, jobs queued in the backlog, jobs waiting for
  budget, credits spent today) are published.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from dropcut.aws.executions import Executions
from dropcut.aws.inbox_queue import InboxQueues
from dropcut.aws.job_events import JobEvents, JobEventType
from dropcut.aws.job_store import JobStore
from dropcut.aws.slots import SlotPool, settle_slot
from dropcut.errors import ExecutionEnded, Failure, ManifestTimedOut, Problem, StartDeadlinePassed
from dropcut.model.jobs import JobRecord, JobStatus, job_of
from dropcut.model.layout import BucketLayout
from dropcut.observability import logger, metrics
from dropcut.services.batches import Batches
from dropcut.services.dead_letters import DeadLetterDeps, handle_dead_letters
from dropcut.services.error_reports import count_failure, end_job_once
from dropcut.services.estimates import estimate_unestimated
from dropcut.services.parts import end_part, end_parts

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


@dataclass(frozen=True)
class ReconcileDeps:
    s3: S3Client
    store: JobStore
    layout: BucketLayout
    executions: Executions
    slots: SlotPool
    #: ManifestWaitSeconds: how long a video without options waits for its manifest.
    manifest_wait_seconds: int
    #: How long a slot stays held for a task that may still be running (s).
    lost_task_hold_seconds: int
    #: Job events (failed, cancelled): best effort, never fails the pass.
    events: JobEvents
    #: The batches whose summary is due (quiet window over), stuck or half-written (None: none).
    batches: Batches | None
    #: The inbox queue and its dead letters (None: not read).
    inbox: InboxQueues | None


def expire_manifest_waits(deps: ReconcileDeps, now: float) -> list[str]:
    """End every job still waiting for its manifest after manifest_wait_seconds; their ids."""
    wait_seconds = deps.manifest_wait_seconds
    expired: list[str] = []
    for record in _records_in(
        deps.store, JobStatus.WAITING_FOR_MANIFEST, created_before=now - wait_seconds
    ):
        manifest_name = BucketLayout.manifest_name(record.key)
        failure = Failure(
            ManifestTimedOut.reason,
            ManifestTimedOut.__name__,
            f"no manifest arrived within {wait_seconds} s of the video "
            f"(waited {now - record.created_at:.0f} s), and the video has no 'prompt' metadata",
            f"Upload {manifest_name} beside the video: the job starts when it arrives.",
            (
                Problem(
                    "manifest",
                    f"{manifest_name} did not arrive",
                    f"within {wait_seconds} s (ManifestWaitSeconds)",
                    "Upload the manifest before or together with the video.",
                ),
            ),
        )
        # Conditional: a manifest that arrives at this very moment wins or loses, never both.
        ended = _end_once(deps, record, failure)
        if not ended:
            continue
        logger.warning("manifest never came", extra={"job_id": record.job_id, "key": record.key})
        expired.append(record.job_id)
    return expired


def expire_start_deadlines(deps: ReconcileDeps, now: float) -> list[str]:
    """End every queued job whose start deadline (its not_after) passed, unpaid, with a report,
    and take it out of the backlog; their ids."""
    expired: list[str] = []
    for job_id in deps.slots.overdue(now):
        record = deps.store.get(job_id)
        if record is None:
            continue
        if record.status is JobStatus.QUEUED and record.start_deadline is not None:
            moment = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(record.start_deadline))
            given = record.spec.not_after if record.spec is not None else None
            failure = Failure.of(
                StartDeadlinePassed(
                    f"the job was still queued at its start deadline, {moment} (not_after "
                    f"{given!r}); nothing was sent to the provider and nothing was paid"
                )
            )
            # Conditional on `queued`: an admission at this very moment wins or loses, never both.
            if _end_once(deps, record, failure):
                logger.warning("start deadline passed", extra={"job_id": job_id, "key": record.key})
                expired.append(job_id)
        deps.slots.leave_backlog(record)
    return expired


def _records_in(store: JobStore, status: JobStatus, created_before: float) -> list[JobRecord]:
    return list(store.in_status(status, created_before=created_before))


#: Jobs younger than this are still on their way (Submit records, then starts the execution).
SETTLE_SECONDS = 60
#: An execution in one of these is over. A waiter's or holder's execution that reads as missing
#: has just started (DescribeExecution is eventually consistent, or this very pass started it
#: after reading): its entry proves it exists. Only an execution that is over loses its entry.
EXECUTION_OVER = frozenset({"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"})


@dataclass
class ReconcileReport:
    manifest_timeouts: list[str] = field(default_factory=list)
    #: Queued jobs ended at their start deadline (not_after), unpaid.
    start_deadlines: list[str] = field(default_factory=list)
    restarted: list[str] = field(default_factory=list)
    ended: list[str] = field(default_factory=list)
    #: Parts left unended by a job that ended before they were made (a cancel while Prepare ran).
    parts_ended: list[str] = field(default_factory=list)
    slots_reclaimed: list[str] = field(default_factory=list)
    waiters_dropped: list[str] = field(default_factory=list)
    slots_handed_over: list[str] = field(default_factory=list)
    slots_in_use: int = 0
    jobs_in_line: int = 0
    #: Jobs in the backlog (JobsQueued): no execution yet.
    jobs_queued: int = 0
    #: Jobs in line that the daily credit budget holds back (JobsWaitingForBudget).
    jobs_waiting_for_budget: int = 0
    #: Credits reserved or charged today, UTC (BudgetCreditsToday).
    credits_today: float = 0.0
    #: A provider outage pauses admission now (AdmissionPaused; dropcut.aws.breaker).
    admission_paused: bool = False
    #: Batches this pass completed (their summary written, their event sent).
    batches_completed: list[str] = field(default_factory=list)
    #: Queued jobs given their first expected start (queued before the pace was known).
    estimated: list[str] = field(default_factory=list)
    #: Dead-lettered inbox events sent back to the inbox queue, and jobs ended `not_accepted`.
    inbox_events_sent_back: int = 0
    not_accepted: list[str] = field(default_factory=list)


def reconcile(deps: ReconcileDeps, now: float | None = None) -> ReconcileReport:
    """One pass of every rule (see the module docstring); safe to run concurrently with jobs.
    `now` (epoch seconds) defaults to the clock."""
    now = now or time.time()
    store, executions, slots = deps.store, deps.executions, deps.slots
    report = ReconcileReport(
        manifest_timeouts=expire_manifest_waits(deps, now),
        start_deadlines=expire_start_deadlines(deps, now),
    )
    seen: dict[str, str | None] = {}

    def execution_status(part_id: str) -> str | None:
        # Waiters and holders are jobs (or parts of jobs: their job's execution) the first loop
        # may have described already: once a pass.
        job_id = job_of(part_id)
        if job_id not in seen:
            seen[job_id] = executions.status(job_id)
        return seen[job_id]

    _drive_unfinished(deps, report, execution_status, now)
    report.slots_reclaimed = _reclaim_slots(
        store, execution_status, slots, deps.lost_task_hold_seconds, now
    )
    for waiter in slots.waiters():
        if execution_status(waiter.job_id) in EXECUTION_OVER:
            slots.leave_line(waiter)
            report.waiters_dropped.append(waiter.job_id)
    report.slots_handed_over = slots.dispatch()
    report.estimated = estimate_unestimated(store, slots)
    _measure_in_flight(slots, report)
    if deps.batches is not None:
        report.batches_completed = deps.batches.sweep(now)
    _handle_dead_letters(deps, report)

    _publish_gauges(report)
    return report


def _handle_dead_letters(deps: ReconcileDeps, report: ReconcileReport) -> None:
    """Dead-lettered inbox events: sent back, or their uploads ended (services.dead_letters)."""
    if deps.inbox is None:
        return
    dead = handle_dead_letters(
        DeadLetterDeps(deps.inbox, deps.s3, deps.store, deps.layout, deps.events, deps.batches)
    )
    report.inbox_events_sent_back, report.not_accepted = dead.sent_back, dead.not_accepted


def _measure_in_flight(slots: SlotPool, report: ReconcileReport) -> None:
    """The in-flight gauges: slots in use, jobs in line, waiting for budget, queued."""
    report.slots_in_use = len(slots.holders())
    line = slots.waiters()
    report.jobs_in_line = len(line)
    report.credits_today = slots.spent() if slots.budget.enabled else 0.0
    # A mark stays until the job gets its slot: one the budget would take now waits for a slot.
    room = slots.budget.limit - report.credits_today
    report.jobs_waiting_for_budget = sum(
        1
        for waiter in line
        if slots.budget.enabled and waiter.budget_wait_since is not None and waiter.estimate > room
    )
    backlog = slots.backlog_state()
    report.jobs_queued = backlog.queued
    report.admission_paused = (
        backlog.paused_until is not None and time.time() < backlog.paused_until
    )
    if backlog.budget_wait_since is not None:
        report.jobs_waiting_for_budget += backlog.queued


def _publish_gauges(report: ReconcileReport) -> None:
    """The in-flight gauges and this pass's counts, as metrics."""
    metrics.add_metric(name="SlotsInUse", unit="Count", value=report.slots_in_use)
    metrics.add_metric(name="JobsInLine", unit="Count", value=report.jobs_in_line)
    metrics.add_metric(name="JobsQueued", unit="Count", value=report.jobs_queued)
    metrics.add_metric(name="AdmissionPaused", unit="Count", value=int(report.admission_paused))
    metrics.add_metric(
        name="JobsWaitingForBudget", unit="Count", value=report.jobs_waiting_for_budget
    )
    metrics.add_metric(name="BudgetCreditsToday", unit="Count", value=report.credits_today)
    stuck = len(report.restarted) + len(report.ended)
    metrics.add_metric(name="StuckJobs", unit="Count", value=stuck)
    metrics.add_metric(name="SlotsReclaimed", unit="Count", value=len(report.slots_reclaimed))


def _end_once(
    deps: ReconcileDeps,
    record: JobRecord,
    failure: Failure,
    kind: JobEventType = JobEventType.FAILED,
) -> bool:
    """End the job with an error report unless it moved on since `record` was read; False
    then. The status flip is the claim: one ending."""
    report_key = end_job_once(deps.s3, deps.store, deps.layout, deps.events, record, failure, kind)
    if report_key is not None:
        end_parts(deps.store, deps.slots, record, deps.lost_task_hold_seconds)
        count_failure(failure.reason)
    return report_key is not None


def _drive_unfinished(
    deps: ReconcileDeps,
    report: ReconcileReport,
    execution_status: Callable[[str], str | None],
    now: float,
) -> None:
    """Received and running jobs whose execution is not running: started when it never was,
    ended otherwise; parts whose job ended, ended."""
    store = deps.store
    ended_jobs: dict[str, bool] = {}
    for status in (JobStatus.RECEIVED, JobStatus.RUNNING):
        for record in _records_in(store, status, created_before=now - SETTLE_SECONDS):
            if record.part_of:
                # A part ends with its job (below, or the job's own RecordFailure); one made
                # after its job ended (a cancel while Prepare ran) is ended here.
                if _job_ended(store, record.part_of, ended_jobs):
                    end_part(store, deps.slots, record, deps.lost_task_hold_seconds)
                    report.parts_ended.append(record.job_id)
                continue
            execution = execution_status(record.job_id)
            if execution == "RUNNING":
                continue
            if execution is None and status is JobStatus.RECEIVED:
                deps.executions.start(record.job_id)
                report.restarted.append(record.job_id)
                logger.warning("job had no execution: started", extra={"job_id": record.job_id})
            elif _end_abandoned(deps, record, execution or "missing"):
                report.ended.append(record.job_id)


def _job_ended(store: JobStore, job_id: str, seen: dict[str, bool]) -> bool:
    """Whether the job has ended (read once a pass: `seen`)."""
    if job_id not in seen:
        job = store.get(job_id)
        seen[job_id] = job is not None and job.status in (JobStatus.SUCCEEDED, JobStatus.FAILED)
    return seen[job_id]


def _end_abandoned(deps: ReconcileDeps, record: JobRecord, execution: str) -> bool:
    """End a job whose execution is over (or gone) without having ended it; False if it moved."""
    how = {"ABORTED": "was cancelled", "TIMED_OUT": "timed out"}.get(execution, "ended")
    ended = _end_once(
        deps,
        record,
        Failure.of(ExecutionEnded(f"the job's execution {how} ({execution}) before the job ended")),
        JobEventType.CANCELLED if execution == "ABORTED" else JobEventType.FAILED,
    )
    if ended:
        logger.warning(
            "abandoned job ended", extra={"job_id": record.job_id, "execution": execution}
        )
    return ended


def _over(record: JobRecord, execution_status: Callable[[str], str | None]) -> bool:
    """Whether the job (or part) ended, or its job's execution is over."""
    return record.status in (JobStatus.SUCCEEDED, JobStatus.FAILED) or (
        execution_status(record.job_id) in EXECUTION_OVER
    )


def _reclaim_slots(
    store: JobStore,
    execution_status: Callable[[str], str | None],
    slots: SlotPool,
    hold_seconds: int,
    now: float,
) -> list[str]:
    reclaimed: list[str] = []
    for holder in slots.holders().values():
        if holder.until is not None:
            if holder.until <= now and slots.release(holder.job_id):
                reclaimed.append(holder.job_id)
            continue
        record = store.get(holder.job_id)
        if record is None and job_of(holder.job_id) != holder.job_id:
            # A split job's first part, admitted with its slot before Prepare wrote its record:
            # kept while its job runs; given back unpaid (no task without a record) if it ended.
            job = store.get(job_of(holder.job_id))
            if job is not None and not _over(job, execution_status):
                continue
            slots.charge(holder.job_id, 0.0, task=0)
            given_back = slots.release(holder.job_id)
        elif record is None:
            given_back = slots.release(holder.job_id)
        elif _over(record, execution_status):
            given_back = settle_slot(slots, record, hold_seconds)
        else:
            continue
        # False when its own ending gave it back meanwhile: then nothing leaked.
        if given_back:
            reclaimed.append(holder.job_id)
    if reclaimed:
        logger.warning("slots given back for jobs that ended", extra={"jobs": reclaimed})
    return reclaimed
