"""`dropcut batches`, `dropcut watch --batch ID` and `dropcut cancel --batch ID`: the batches
of a stack (dropcut.model.batches), read from its batches table."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Annotated, Any, NoReturn

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from dropcut.aws.batch_store import BatchStore
from dropcut.model.batches import BATCH_ID_PATTERN, Batch, BatchMember, BatchState
from dropcut.model.jobs import JobStatus
from dropcut_cli import context
from dropcut_cli.connection import Stack
from dropcut_cli.context import Exit
from dropcut_cli.display import err, out, print_json, styled, when
from dropcut_cli.jobs import JobReader

BATCHES_EXAMPLES = (
    "Examples:\n\n"
    "  dropcut --local batches\n\n"
    "  dropcut batches --completed 50 --json | jq -r '.batches[].summary_key'"
)
#: How often `watch --batch` reads the batch (one read of its header).
POLL_SECONDS = 2.0
#: How often it works out again when the batch's last queued job starts (reads its members).
ETA_SECONDS = 60.0
#: How long `watch --batch` waits for a batch just submitted to appear (Submit takes its first
#: upload; the inbox queue may hold a burst for a while).
FIRST_UPLOAD_WAIT_SECONDS = 120.0
#: Jobs that have not started: nothing was paid for them, and a cancel stops them for good.
NOT_STARTED = frozenset({JobStatus.QUEUED, JobStatus.WAITING_FOR_MANIFEST})


class BatchReader:
    """The batches of one stack, read the way the pipeline writes them."""

    def __init__(self, stack: Stack) -> None:
        self.store = BatchStore(stack.table(stack.batches_table_name))
        self.jobs = JobReader(stack)

    def listing(self, completed: int) -> list[Batch]:
        """The batches not completed yet (oldest first), then the `completed` newest ones."""
        running = [
            batch
            for state in (BatchState.OPEN, BatchState.SUMMARIZING)
            for batch in self.store.in_state(state)
        ]
        done = list(self.store.in_state(BatchState.COMPLETED, newest_first=True, limit=completed))
        return [*running, *done]

    def find(
        self, ref: str, *, wait_seconds: float = 0.0, sleep: Callable[[float], None] = time.sleep
    ) -> Batch:
        """A batch by its id or the start of it (`b-20261207T1201`); exit 1 when none or
        several match. A whole id not found yet is waited for up to `wait_seconds` (a batch
        exists once Submit has taken its first upload)."""
        deadline = time.monotonic() + wait_seconds
        while True:
            batch = self.store.get(ref)
            if batch is not None:
                return batch
            if not BATCH_ID_PATTERN.match(ref) or time.monotonic() >= deadline:
                break
            sleep(POLL_SECONDS)
        matches = [b for b in self.listing(completed=1000) if b.batch_id.startswith(ref)]
        if len(matches) != 1:
            err.print(f"no batch found for {ref!r}" if not matches else f"{ref!r} names several")
            raise typer.Exit(Exit.FAILED)
        return matches[0]

    def waiting(self, batch: Batch) -> list[BatchMember]:
        """Its members that have not ended, in the order they joined."""
        members = self.store.members(batch.batch_id, unended_only=True)
        return sorted(members, key=lambda member: member.joined_at)

    def last_start(self, batch: Batch) -> str:
        """When its last queued job starts, as the backlog says now (`` when none is queued)."""
        for member in reversed(self.waiting(batch)):
            record = self.jobs.get(member.job_id)
            if record is not None and record.status is JobStatus.QUEUED:
                return f"its last queued job: {self.jobs.queue_detail(record)}"
        return ""


def _progress(batch: Batch) -> str:
    total = max(batch.jobs, batch.expected or 0)
    return f"{batch.ended:,} of {total:,}"


def _endings(batch: Batch) -> str:
    return f"{batch.succeeded:,} done, {batch.failed:,} failed, {batch.cancelled:,} cancelled"


def _batch_json(batch: Batch) -> dict[str, Any]:
    return batch.model_dump(mode="json")


def batches(
    ctx: typer.Context,
    completed: Annotated[
        int, typer.Option(metavar="N", min=0, help="How many completed batches to list.")
    ] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
) -> None:
    """List batches: those still running (oldest first: jobs ended of all, endings, credits),
    then the newest completed ones with their summary. A batch is one `dropcut submit` run, or
    the uploads to one folder until it is quiet for BatchQuietSeconds."""
    reader = BatchReader(context.stack(ctx))
    with context.aws_errors():
        found = reader.listing(completed)
    if as_json:
        print_json({"batches": [_batch_json(batch) for batch in found]})
        return
    if not found:
        out.print("no batches")
        return
    table = Table()
    table.add_column("batch", no_wrap=True)
    table.add_column("folder", overflow="fold")
    table.add_column("ended", justify="right", no_wrap=True)
    table.add_column("endings", overflow="fold")
    table.add_column("credits", justify="right")
    table.add_column("state", no_wrap=True)
    table.add_column("summary", overflow="fold")
    for batch in found:
        state = (
            f"completed {when(batch.completed_at)}"
            if batch.state is BatchState.COMPLETED
            else batch.state.value
        )
        table.add_row(
            batch.batch_id,
            batch.folder,
            _progress(batch),
            _endings(batch),
            f"{batch.credits_spent:g}",
            state,
            batch.page_key or "",
        )
    out.print(table)


def watch_batch(
    stack: Stack,
    ref: str,
    *,
    timeout: float | None,
    as_json: bool,
    sleep: Callable[[float], None] = time.sleep,
) -> NoReturn:
    """Follow one batch until it completes: a progress bar of its jobs ended (the time left
    measured from how fast they end), its endings, and when its last queued job starts.
    Exit 0 when it completed with every job done; 1 otherwise (a job failed or was cancelled,
    or the timeout came first)."""
    reader = BatchReader(stack)
    deadline = time.monotonic() + timeout if timeout else None
    with context.aws_errors():
        batch = reader.find(ref, wait_seconds=FIRST_UPLOAD_WAIT_SECONDS, sleep=sleep)
        columns = (
            TextColumn("{task.description}", markup=False),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            TextColumn("{task.fields[endings]}", markup=False),
        )
        with Progress(*columns, console=err, disable=as_json) as bars:
            task = bars.add_task(batch.batch_id, total=None, endings="")
            eta_at = 0.0
            while True:
                if not as_json and batch.state is BatchState.OPEN and time.monotonic() >= eta_at:
                    eta_at = time.monotonic() + ETA_SECONDS
                    if line := reader.last_start(batch):
                        bars.console.print(line, soft_wrap=True)
                total = max(batch.jobs, batch.expected or 0)
                bars.update(task, total=total, completed=batch.ended, endings=_endings(batch))
                over = deadline is not None and time.monotonic() > deadline
                if batch.state is BatchState.COMPLETED or over:
                    break
                sleep(POLL_SECONDS)
                batch = reader.store.get(batch.batch_id) or batch
    complete = batch.state is BatchState.COMPLETED
    if as_json:
        print_json({"batch": _batch_json(batch)})
    elif complete:
        out.print(styled("completed", "green", f"  batch {batch.batch_id}: {_endings(batch)}"))
        out.print(f"        summary s3://{stack.bucket}/{batch.page_key}", soft_wrap=True)
    else:
        out.print(
            styled("still running", "yellow", f"  batch {batch.batch_id}: {_progress(batch)} ended")
        )
    ok = complete and batch.succeeded == batch.jobs
    raise typer.Exit(Exit.OK if ok else Exit.FAILED)


def cancel_batch(
    stack: Stack,
    ref: str,
    *,
    yes: bool,
    as_json: bool,
    cancel_one: Callable[[str], dict[str, Any]],
) -> NoReturn:
    """Cancel every job of a batch that has not started (queued, or waiting for its manifest:
    nothing was paid for them); jobs already at work keep going. Without --yes it only says
    what it would cancel (exit 2). Exit 0 when every such job was cancelled; 1 otherwise."""
    reader = BatchReader(stack)
    with context.aws_errors():
        batch = reader.find(ref)
        waiting = [reader.jobs.get(member.job_id) for member in reader.waiting(batch)]
        idle = [record for record in waiting if record is not None and record.status in NOT_STARTED]
        started = len(waiting) - len(idle)
        unrecorded = max(0, (batch.expected or 0) - batch.jobs)
        later = (
            f" {unrecorded:,} of its uploads have no job yet: run it again once they do."
            if unrecorded
            else ""
        )
        if not yes:
            what = (
                f"cancel --batch would cancel {len(idle):,} job(s) of batch {batch.batch_id} that "
                f"have not started (nothing was paid for them); {started:,} already at work keep "
                f"going.{later} Add --yes to go ahead."
            )
            print_json(
                {"cancel": {"batch_id": batch.batch_id, "would_cancel": len(idle)}}
            ) if as_json else out.print(what, soft_wrap=True)
            raise typer.Exit(Exit.USAGE)
        outcomes = {record.job_id: cancel_one(record.job_id).get("outcome") for record in idle}
    cancelled = sum(1 for outcome in outcomes.values() if outcome == "cancelled")
    if as_json:
        print_json({"cancel": {"batch_id": batch.batch_id, "outcomes": outcomes}})
    else:
        out.print(
            styled("cancelled", "yellow", f"  {cancelled:,} job(s) of batch {batch.batch_id}")
            + f"; {len(idle) - cancelled:,} had moved on meanwhile, {started:,} kept going."
            + later
        )
    raise typer.Exit(Exit.OK if cancelled == len(idle) else Exit.FAILED)
