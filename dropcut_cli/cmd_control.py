"""`dropcut cancel` and `dropcut retry`: a person's requests about one job.

Both run in the stack (CancelFunction, RetryFunction, named by the stack's outputs), invoked
with the caller's credentials: a user needs lambda:InvokeFunction on those two functions, not
the pipeline's own permissions (stopping executions, handing slots over, writing reports).
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from botocore.exceptions import BotoCoreError, ClientError

from dropcut.jobs import JobRecord
from dropcut.steps.cancel import CancelOutcome, CancelResult
from dropcut.steps.retry import RetryOutcome, RetryResult, why_not_retried
from dropcut_cli import context
from dropcut_cli.connection import Stack
from dropcut_cli.context import Exit
from dropcut_cli.display import err, out, print_json, record_json, short_id, styled
from dropcut_cli.follow import follow
from dropcut_cli.jobs import JobReader, ending_word
from dropcut_cli.outcomes import outcome_json, show_failure, show_outcomes

CANCEL_EXAMPLES = (
    "Examples:\n\n"
    "  dropcut --local cancel team/clip.mp4     (the newest job of that input)\n\n"
    "  dropcut cancel job-3f2a9c1d0b7e --json"
)
RETRY_EXAMPLES = (
    "Examples:\n\n"
    "  dropcut --local retry team/clip.mp4      (says what it would run, asks for --yes)\n\n"
    "  dropcut retry job-3f2a9c1d0b7e --yes --wait"
)

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
Ref = Annotated[
    str, typer.Argument(metavar="KEY|JOB_ID", help="An input key (its newest job) or a job id.")
]


class FunctionFailed(Exception):
    """The stack's function answered with an error (its type and message)."""


def invoke(stack: Stack, output: str, command: str, job_id: str) -> dict[str, Any]:
    """Invoke the stack's function for `command` about `job_id`, as the caller; its answer.

    Raises FunctionFailed (the function raised), ConnectionFailed (no such output), and AWS
    errors (no permission, unreachable).
    """
    name = stack.function_name(output, command)
    payload = {"job_id": job_id, "requested_by": _caller(stack)}
    answer = stack.client("lambda").invoke(FunctionName=name, Payload=json.dumps(payload).encode())
    body = answer["Payload"].read()
    document = json.loads(body) if body else None
    if answer.get("FunctionError") or not isinstance(document, dict):
        found = document if isinstance(document, dict) else {}
        raise FunctionFailed(
            f"{name} failed: {found.get('errorType', 'error')}: {found.get('errorMessage', body)}"
        )
    return document


def _caller(stack: Stack) -> str:
    """Who asks (the caller's ARN, recorded on the job); CloudTrail records the invoker too."""
    try:
        return str(stack.client("sts").get_caller_identity()["Arn"])[:256]
    except (BotoCoreError, ClientError):
        return "unknown caller"


def _find(reader: JobReader, ref: str) -> JobRecord:
    record = reader.find(ref)
    if record is None:
        err.print(f"no job found for {ref!r}")
        raise typer.Exit(Exit.FAILED)
    return record


def _invoke(stack: Stack, output: str, command: str, job_id: str) -> dict[str, Any]:
    try:
        return invoke(stack, output, command, job_id)
    except FunctionFailed as exc:
        err.print(styled("error:", "red", f" {exc}"))
        raise typer.Exit(Exit.FAILED) from None


def cancel(ctx: typer.Context, ref: Ref, as_json: JsonOption = False) -> None:
    """Stop a job wherever it is (waiting for its manifest, in line for a slot, at the
    provider), give its slot back, and end it with a `cancelled` report.

    The report says whether the provider still bills the job: neither provider documents a way
    to cancel a task, so a task already created runs to its end and is billed, and the job's
    slot stays held until that task can have ended (JobDeadlineSeconds). Exit 0 when the job
    was cancelled; 1 when it had ended already, its result was being stored, or no job matched.
    """
    stack = context.stack(ctx)
    reader = JobReader(stack)
    with context.aws_errors():
        record = _find(reader, ref)
        result = CancelResult.model_validate(
            _invoke(stack, "CancelFunctionName", "cancel", record.job_id)
        )
        record = reader.get(record.job_id) or record
        report = reader.document(record.error_report_key)
    if as_json:
        print_json(
            {"cancel": result.model_dump(mode="json"), "job": record_json(record), "report": report}
        )
    elif result.outcome is CancelOutcome.CANCELLED:
        show_failure(reader, record, f"{record.key} (job {short_id(record.job_id)})")
    else:
        _not_cancelled(record, result)
    raise typer.Exit(Exit.OK if result.outcome is CancelOutcome.CANCELLED else Exit.FAILED)


def _not_cancelled(record: JobRecord, result: CancelResult) -> None:
    why = {
        CancelOutcome.ALREADY_ENDED: f"it had ended already ({ending_word(record)}"
        + (f": {result.reason})" if result.reason not in (None, ending_word(record)) else ")"),
        CancelOutcome.STORING: "the provider finished the task; its result is being stored",
        CancelOutcome.NOT_FOUND: "the stack has no such job",
    }[result.outcome]
    out.print(styled("not cancelled", "yellow", f"  {record.key} (job {short_id(record.job_id)})"))
    out.print(f"        {why}", soft_wrap=True)


def retry(
    ctx: typer.Context,
    ref: Ref,
    yes: Annotated[
        bool, typer.Option("--yes", help="Go ahead: the retry is a new, paid provider task.")
    ] = False,
    wait: Annotated[bool, typer.Option("--wait", help="Follow the new job live.")] = False,
    timeout: Annotated[
        float | None, typer.Option(metavar="SECONDS", help="Stop waiting after this long (exit 1).")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Run a failed or cancelled job again from the same input version, without a new upload.

    The retry is a new job (its id: the old one's with `-r2`, `-r3`, ...), linked to the old
    one both ways, and checked by Submit's own rules again (a fixed manifest counts); it
    creates a new provider task, which is paid: without --yes the command only says what it
    would run. Refused while the job runs (cancel it first), after it succeeded, and for an
    input refused for its options (uploading a fixed manifest restarts it). Exit 0 when
    the new job started (with --wait: succeeded); 1 otherwise; 2 without --yes.
    """
    stack = context.stack(ctx)
    reader = JobReader(stack)
    with context.aws_errors():
        record = _find(reader, ref)
        refusal = why_not_retried(reader.store, record)
        if refusal:
            _refused(record, refusal, as_json)
        if not yes:
            raise _ask(stack, record, as_json)
        result = RetryResult.model_validate(
            _invoke(stack, "RetryFunctionName", "retry", record.job_id)
        )
        if result.outcome not in (RetryOutcome.STARTED, RetryOutcome.REFUSED):
            _refused(record, result.detail or result.outcome.value, as_json)
        new_id = str(result.new_job_id)
        if not as_json:
            out.print(
                styled("retrying", "cyan", f"  {record.key} as job {short_id(new_id)}")
                + f" (retry of {short_id(record.job_id)}; a new task at {record.provider})"
            )
        if not wait and result.outcome is RetryOutcome.STARTED:
            if as_json:
                print_json({"retry": result.model_dump(mode="json")})
            raise typer.Exit(Exit.OK)
        followed = follow(reader, {new_id: record.key}, live=not as_json and wait, timeout=timeout)
    if as_json:
        outcome = outcome_json(reader, followed, new_id, {})
        print_json({"retry": result.model_dump(mode="json"), "job": outcome})
    else:
        show_outcomes(reader, followed, {})
    ok = followed.ended and all(phase.ok for phase in followed.phases.values())
    raise typer.Exit(Exit.OK if ok else Exit.FAILED)


def _refused(record: JobRecord, why: str, as_json: bool) -> None:
    if as_json:
        print_json({"retry": {"job_id": record.job_id, "outcome": "not_retried", "detail": why}})
    else:
        out.print(
            styled("not retried", "yellow", f"  {record.key} (job {short_id(record.job_id)})")
        )
        out.print(f"        {why}", soft_wrap=True)
    raise typer.Exit(Exit.FAILED)


def _ask(stack: Stack, record: JobRecord, as_json: bool) -> typer.Exit:
    """What a retry would run and pay for; the command then needs --yes."""
    what = (
        f"retry runs s3://{stack.bucket}/{record.key} (version {record.version}) again as a new "
        f"job, whose new provider task at {record.provider or stack.provider} is paid (the old "
        f"job ended: {record.error_reason}). Add --yes to go ahead."
    )
    if as_json:
        print_json({"retry": {"job_id": record.job_id, "outcome": "needs_yes", "detail": what}})
    else:
        err.print(styled("confirm:", "yellow", f" {what}"), soft_wrap=True)
    return typer.Exit(Exit.USAGE)
