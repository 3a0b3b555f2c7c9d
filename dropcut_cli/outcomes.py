"""How followed jobs ended: where each output is, or what the error report says to do."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from dropcut.model.jobs import JobRecord, JobStatus
from dropcut.model.layout import key_shape_problem
from dropcut_cli.connection import Stack
from dropcut_cli.context import Exit
from dropcut_cli.display import err, out, problems_table, styled
from dropcut_cli.follow import Followed
from dropcut_cli.jobs import JobReader, ending_word


def save_output(stack: Stack, key: str, directory: Path, name: str | None = None) -> Path:
    """Download `key` from the media bucket into `directory` (as `name`, a path relative to it;
    default the key's last part). The name is the bucket's, which this machine does not
    control: one that would land outside `directory` (`..`, an absolute path, a `\\` or a
    drive on Windows, a device name; dropcut.model.layout.key_shape_problem) ends the command
    with exit 1 before anything is written."""
    relative = name or key.rsplit("/", 1)[-1]
    target = directory / relative
    problem = key_shape_problem(relative)  # an absolute name has an empty first folder
    if problem is None and not target.resolve().is_relative_to(directory.resolve()):
        problem = "it leads outside the folder"  # a symbolic link on the way
    if problem is not None:
        err.print(
            styled("refused:", "red", f" not saving {key!r} under {str(directory)!r}: {problem}")
        )
        raise typer.Exit(Exit.FAILED)
    target.parent.mkdir(parents=True, exist_ok=True)
    stack.s3.download_file(stack.bucket, key, str(target))
    return target


def download(stack: Stack, followed: Followed, directory: Path) -> dict[str, Path]:
    """Save the output of every job that succeeded; the local paths by job id."""
    return {
        job_id: save_output(stack, record.output_key, directory)
        for job_id, record in followed.records.items()
        if record is not None and record.status is JobStatus.SUCCEEDED and record.output_key
    }


def outcome_json(
    reader: JobReader, followed: Followed, job_id: str, saved: dict[str, Path]
) -> dict[str, Any]:
    """One job's ending for scripts."""
    record = followed.records.get(job_id)
    phase = followed.phases[job_id]
    return {
        "job_id": job_id,
        "key": followed.labels[job_id],
        "status": record.status.value if record else None,
        "phase": phase.name,
        "detail": phase.detail,
        "output_key": record.output_key if record else None,
        "result_manifest_key": record.result_manifest_key if record else None,
        "error_report_key": record.error_report_key if record else None,
        "error_report": reader.document(record.error_report_key) if record else None,
        "saved_to": str(saved[job_id]) if job_id in saved else None,
    }


def show_outcomes(reader: JobReader, followed: Followed, saved: dict[str, Path]) -> None:
    """Per job: the output's place (and local copy), or the report's reason, advice, problems."""
    bucket = reader.stack.bucket
    for job_id, label in followed.labels.items():
        record = followed.records.get(job_id)
        phase = followed.phases[job_id]
        if record is not None and record.status is JobStatus.SUCCEEDED:
            local = f"  saved to {saved[job_id]}" if job_id in saved else ""
            output = f"s3://{bucket}/{record.output_key}"
            out.print(styled("done", "green", f"    {label} -> {output}{local}"), soft_wrap=True)
        elif record is not None and record.status is JobStatus.FAILED:
            show_failure(reader, record, label)
        else:
            out.print(styled(phase.name, "yellow", f"  {label}: {phase.detail} (still going)"))


def show_failure(reader: JobReader, record: JobRecord, label: str) -> None:
    """The error report: reason, message, advice, and every problem."""
    report = reader.document(record.error_report_key) or {}
    problems = report.get("problems") or record.problems
    word, reason = ending_word(record), report.get("reason") or record.error_reason
    out.print(styled(word, "red", f"  {label}" + (f": {reason}" if reason != word else "")))
    if not problems:  # the table says it otherwise
        out.print(f"        {report.get('message') or record.error_message or ''}", soft_wrap=True)
    if report.get("advice"):
        out.print(f"        what to do: {report['advice']}", soft_wrap=True)
    out.print(
        f"        report: s3://{reader.stack.bucket}/{record.error_report_key}", soft_wrap=True
    )
    if problems:
        out.print(problems_table(problems))
