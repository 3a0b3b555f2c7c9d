"""`dropcut ls`, `show`, `fetch` and `watch`: the jobs of a stack, read from its jobs table."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from dropcut.model.jobs import JobRecord, JobStatus
from dropcut.model.phases import JobPhase, parse_phase
from dropcut.model.plan import Plan
from dropcut_cli import context
from dropcut_cli.cmd_batches import watch_batch
from dropcut_cli.context import Exit
from dropcut_cli.display import (
    err,
    jobs_table,
    media_line,
    out,
    plan_line,
    print_json,
    record_json,
    when,
)
from dropcut_cli.follow import follow
from dropcut_cli.jobs import NOT_ENDED, JobReader, parse_since
from dropcut_cli.outcomes import outcome_json, save_output, show_failure, show_outcomes

LS_EXAMPLES = (
    "Examples:\n\n"
    "  dropcut --local ls\n\n"
    "  dropcut ls team/ --status failed --since 2h\n\n"
    "  dropcut ls --json | jq -r '.jobs[].job_id'"
)
SHOW_EXAMPLES = (
    "Examples:\n\n"
    "  dropcut show team/clip.mp4      (the newest job of that input)\n\n"
    "  dropcut show job-3f2a9c1d0b7e   (a job id, or its first digits)"
)
FETCH_EXAMPLES = (
    "Examples:\n\n"
    "  dropcut fetch team/clip.mp4 -o out/\n\n"
    "  dropcut fetch team/ -o out/     (every output of the folder)"
)
WATCH_EXAMPLES = (
    "Examples:\n\n  dropcut --local watch\n\n  dropcut watch team/ --timeout 600\n\n"
    "  dropcut watch --batch b-20261207T120501-3fa9c1"
)

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]


def ls(
    ctx: typer.Context,
    prefix: Annotated[
        str | None, typer.Argument(help="Only inputs under this folder of inbox/.")
    ] = None,
    status: Annotated[
        str | None,
        typer.Option(
            metavar="PHASE",
            help="Only jobs in this phase, as ls shows it: "
            + ", ".join(phase.label for phase in JobPhase),
        ),
    ] = None,
    since: Annotated[
        str | None,
        typer.Option(metavar="AGE", help="Only jobs created in the last 90s, 15m, 2h, 3d."),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """List jobs, newest first (the jobs table's by_status index), with their phase."""
    try:
        after = parse_since(since) if since else None
        wanted = parse_phase(status) if status else None
    except ValueError as exc:
        raise context.usage(str(exc)) from None
    reader = JobReader(context.stack(ctx))
    with context.aws_errors():
        jobs = reader.listing(tuple(JobStatus), after, prefix)
        line = reader.line()
    phases = [reader.phase(record, line, advice=False) for record in jobs]
    if wanted is not None:
        kept = [i for i, phase in enumerate(phases) if phase.name == wanted.label]
        jobs, phases = [jobs[i] for i in kept], [phases[i] for i in kept]
    if as_json:
        rows_json = [
            {**record_json(record), "phase": phase.name}
            for record, phase in zip(jobs, phases, strict=True)
        ]
        print_json({"jobs": rows_json})
        return
    rows = [(r.key, r.job_id, phase) for r, phase in zip(jobs, phases, strict=True)]
    table = jobs_table(rows, created=[when(record.created_at) for record in jobs])
    out.print(table if jobs else "no jobs")


def show(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(metavar="KEY|JOB_ID", help="An input key or a job id.")],
    as_json: JsonOption = False,
) -> None:
    """Show one job: its record, its error report (advice, problems) or its result manifest."""
    reader = JobReader(context.stack(ctx))
    with context.aws_errors():
        record = reader.find(ref)
        if record is None:
            err.print(f"no job found for {ref!r}")
            raise typer.Exit(Exit.FAILED)
        report = reader.document(record.error_report_key)
        result = reader.document(record.result_manifest_key)
        phase = reader.phase(record, reader.line())
    if as_json:
        print_json({"job": record_json(record), "error_report": report, "result": result})
    else:
        _show_record(record, phase.name, phase.detail)
        if record.status is JobStatus.FAILED:
            show_failure(reader, record, record.key)
        elif result is not None:
            bucket = reader.stack.bucket
            out.print(f"output    s3://{bucket}/{record.output_key}", soft_wrap=True)
            out.print(f"result    s3://{bucket}/{record.result_manifest_key}", soft_wrap=True)
            if record.contact_sheet_key:
                out.print(f"picture   s3://{bucket}/{record.contact_sheet_key}", soft_wrap=True)
    raise typer.Exit(Exit.FAILED if record.status is JobStatus.FAILED else Exit.OK)


def fetch(
    ctx: typer.Context,
    ref: Annotated[
        str, typer.Argument(metavar="KEY|PREFIX", help="An input key, job id or folder.")
    ],
    output: Annotated[
        Path, typer.Option("-o", "--output", file_okay=False, help="Directory.")
    ] = Path("."),
    as_json: JsonOption = False,
) -> None:
    """Download the edited videos of an input, a job, or every input under a folder, each with
    its before/after picture."""
    reader = JobReader(context.stack(ctx))
    with context.aws_errors():
        found = reader.find(ref)
        jobs = [found] if found else _latest_per_key(reader.listing(prefix=ref))
        if not jobs:
            err.print(f"no job found for {ref!r}")
            raise typer.Exit(Exit.FAILED)
        saved: dict[str, str] = {}
        for record in jobs:
            if record.status is JobStatus.SUCCEEDED and record.output_key:
                relative = record.output_key.removeprefix(reader.layout.outbox)
                saved[record.job_id] = str(
                    save_output(reader.stack, record.output_key, output, relative)
                )
                if record.contact_sheet_key:  # the before/after picture, beside it
                    picture = record.contact_sheet_key.removeprefix(reader.layout.outbox)
                    save_output(reader.stack, record.contact_sheet_key, output, picture)
    if as_json:
        print_json({"jobs": [{**record_json(r), "saved_to": saved.get(r.job_id)} for r in jobs]})
    else:
        for record in jobs:
            where = saved.get(record.job_id)
            out.print(
                f"{record.key}: "
                + (f"saved to {where}" if where else f"not saved ({record.status.value})")
            )
    raise typer.Exit(Exit.OK if len(saved) == len(jobs) else Exit.FAILED)


def watch(
    ctx: typer.Context,
    prefix: Annotated[
        str | None, typer.Argument(help="Only inputs under this folder of inbox/.")
    ] = None,
    timeout: Annotated[
        float | None, typer.Option(metavar="SECONDS", help="Stop after this long.")
    ] = None,
    batch: Annotated[
        str | None,
        typer.Option(
            "--batch",
            metavar="BATCH_ID",
            help="Follow one batch instead (dropcut batches): a progress bar and its ETA.",
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Follow every job not yet ended, live, until each has ended; or, with --batch, one batch
    until it completes (exit 0 when every one of its jobs is done)."""
    if batch is not None:
        watch_batch(context.stack(ctx), batch, timeout=timeout, as_json=as_json)
    reader = JobReader(context.stack(ctx))
    with context.aws_errors():
        jobs = reader.listing(NOT_ENDED, prefix=prefix)
        if not jobs:
            out.print("no job is running") if not as_json else print_json({"jobs": []})
            raise typer.Exit(Exit.OK)
        followed = follow(
            reader, {r.job_id: r.key for r in jobs}, live=not as_json, timeout=timeout
        )
    if as_json:
        print_json({"jobs": [outcome_json(reader, followed, r.job_id, {}) for r in jobs]})
    else:
        show_outcomes(reader, followed, {})
    ok = followed.ended and all(phase.ok for phase in followed.phases.values())
    raise typer.Exit(Exit.OK if ok else Exit.FAILED)


def _latest_per_key(jobs: list[JobRecord]) -> list[JobRecord]:
    """The newest job of each input (jobs come newest first)."""
    latest: dict[str, JobRecord] = {}
    for record in jobs:
        latest.setdefault(record.key, record)
    return list(latest.values())


def _plan_line(record: JobRecord) -> str:
    """The plan in one line: kind, parts and their spans, why (dropcut.model.plan.Plan)."""
    if not record.plan:
        return ""
    plan = Plan.model_validate(record.plan)
    spans = ", ".join(f"{p.start_seconds:g}-{p.end_seconds:g} s" for p in plan.parts)
    line = f"{plan.kind.value.replace('_', ' ')} ({len(plan.parts)} part(s): {spans})"
    if plan.reasons:
        line += ": " + "; ".join(plan.reasons)
    return line


def _show_record(record: JobRecord, phase: str, detail: str) -> None:
    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column(style="bold", no_wrap=True)
    table.add_column(overflow="fold")
    rows = [
        ("job", record.job_id),
        ("input", f"s3://{record.bucket}/{record.key} (version {record.version})"),
        ("status", f"{phase}: {detail}" if detail else phase),
        ("prompt", record.spec.prompt if record.spec else ""),
        ("options from", record.spec_source or ""),
        ("provider", f"{record.provider or ''} {record.task_id or ''}".strip()),
        ("progress", f"{record.progress}%" if record.progress is not None else ""),
        ("credits", f"{record.credits:g}" if record.credits is not None else ""),
        ("media", media_line(record.media) if record.media else ""),
        ("plan", _plan_line(record)),
        ("notices", "; ".join(record.notices)),
        ("plan", plan_line(record.plan)),
        ("created", when(record.created_at)),
        ("stored", when(record.stored_at)),
        ("retry of", record.retry_of or ""),
        ("retried as", record.retried_by or ""),
        ("cancelled", _cancelled_by(record)),
    ]
    for name, value in rows:
        if value:
            table.add_row(name, value)
    out.print(table)


def _cancelled_by(record: JobRecord) -> str:
    if not record.cancel_requested_by:
        return ""
    # The caller's ARN as recorded: an IAM path may hold "[...]", which Rich would read as markup.
    return f"by {escape(record.cancel_requested_by)} at {when(record.cancel_requested_at)}"
