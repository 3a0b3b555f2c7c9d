"""`dropcut cancel` and `dropcut retry`: a person's requests about one job.

Both run in the stack (CancelFunction, RetryFunction), behind the stack's jobs API (output
`JobsApiUrl`): `POST /jobs/<job id>/cancel` and `.../retry`, AWS_IAM routes. The request is
signed with the caller's own credentials (SigV4, service execute-api), so the stack learns who
asks from AWS; it answers 403 when that caller may not act on the job's input (dropcut.services.actors:
by default, whoever may upload the input may cancel and retry its jobs). A user needs
execute-api:Invoke on those routes, not the pipeline's own permissions.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

import httpx
import typer
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest

from dropcut.model.jobs import JobRecord
from dropcut.services.actors import action_path
from dropcut.steps.cancel import CancelOutcome, CancelResult
from dropcut.steps.retry import RetryOutcome, RetryResult, reuse_of, why_not_retried
from dropcut_cli import context
from dropcut_cli.cmd_batches import cancel_batch
from dropcut_cli.connection import ConnectionFailed, Stack
from dropcut_cli.context import Exit
from dropcut_cli.display import err, out, print_json, record_json, short_id, styled
from dropcut_cli.follow import follow
from dropcut_cli.jobs import JobReader, ending_word
from dropcut_cli.outcomes import outcome_json, show_failure, show_outcomes

CANCEL_EXAMPLES = (
    "Examples:\n\n"
    "  dropcut --local cancel team/clip.mp4     (the newest job of that input)\n\n"
    "  dropcut cancel job-3f2a9c1d0b7e --json\n\n"
    "  dropcut cancel --batch b-20261207T120501-3fa9c1 --yes"
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


#: How long a request may take (API Gateway gives up on the function after 30 s).
REQUEST_SECONDS = 40.0
#: The signing name of API Gateway's IAM authorization.
SIGNING_SERVICE = "execute-api"


class Refused(Exception):
    """The stack answered 403: this caller may not act on the job (the answer's message)."""


class RequestFailed(Exception):
    """The stack answered with an error other than 403 (its status and message)."""


def request(stack: Stack, action: str, job_id: str) -> dict[str, Any]:
    """POST the jobs API's `action` (cancel, retry) for `job_id`, signed with the caller's
    credentials; the answer's document (200, or 404 with outcome not_found).

    Raises Refused (403), RequestFailed (any other error answer), ConnectionFailed (no jobs
    API, no credentials, unreachable).
    """
    url = stack.jobs_api_url.rstrip("/") + action_path(job_id, action)
    credentials = stack.session.get_credentials()
    if credentials is None:
        raise ConnectionFailed("no AWS credentials to sign the request with")
    signed = AWSRequest(method="POST", url=url, data=b"")
    region = stack.region or "us-east-1"
    SigV4Auth(credentials.get_frozen_credentials(), SIGNING_SERVICE, region).add_auth(signed)
    try:
        answer = httpx.post(
            url, headers=dict(signed.headers.items()), content=b"", timeout=REQUEST_SECONDS
        )
    except httpx.HTTPError as exc:
        raise ConnectionFailed(f"cannot reach the jobs API at {url}: {exc}") from None
    try:
        document = answer.json()
    except ValueError:
        document = None
    found: dict[str, Any] = document if isinstance(document, dict) else {}
    message = str(found.get("message") or answer.text[:300] or answer.reason_phrase)
    if answer.status_code == 403:
        raise Refused(message)
    if answer.status_code not in (200, 404) or not found:
        raise RequestFailed(f"{action} of {job_id} answered {answer.status_code}: {message}")
    return found


def _find(reader: JobReader, ref: str) -> JobRecord:
    record = reader.find(ref)
    if record is None:
        err.print(f"no job found for {ref!r}")
        raise typer.Exit(Exit.FAILED)
    return record


def _request(stack: Stack, action: str, record: JobRecord, as_json: bool) -> dict[str, Any]:
    try:
        return request(stack, action, record.job_id)
    except Refused as exc:
        if as_json:
            print_json(
                {action: {"job_id": record.job_id, "outcome": "refused", "detail": str(exc)}}
            )
        else:
            err.print(styled("refused (403):", "red", f" {exc}"), soft_wrap=True)
            err.print(
                "        who may act on a job: the stack's ActorPrefixes (by default whoever "
                "may upload its input, s3:PutObject)",
                soft_wrap=True,
            )
        raise typer.Exit(Exit.FAILED) from None
    except RequestFailed as exc:
        err.print(styled("error:", "red", f" {exc}"))
        raise typer.Exit(Exit.FAILED) from None


def cancel(
    ctx: typer.Context,
    ref: Annotated[
        str | None,
        typer.Argument(metavar="KEY|JOB_ID", help="An input key (its newest job) or a job id."),
    ] = None,
    batch: Annotated[
        str | None,
        typer.Option(
            "--batch",
            metavar="BATCH_ID",
            help="Cancel every job of this batch that has not started (nothing paid for them).",
        ),
    ] = None,
    yes: Annotated[
        bool, typer.Option("--yes", help="With --batch: go ahead (without it: say what).")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Stop a job wherever it is (waiting for its manifest, in line for a slot, at the
    provider), give its slot back, and end it with a `cancelled` report. With --batch ID: every
    job of the batch that has not started (queued, or waiting for its manifest), after --yes;
    its jobs already at work keep going.

    The report says whether the provider still bills the job: neither provider documents a way
    to cancel a task, so a task already created runs to its end and is billed, and the job's
    slot stays held until that task can have ended (JobDeadlineSeconds). The request is signed
    with your AWS credentials; the stack refuses it (403) unless you may act on the input's
    prefix (ActorPrefixes; by default: you may upload there). Exit 0 when the job was
    cancelled; 1 when it had ended already, its result was being stored, no job matched, or
    the stack refused you.
    """
    if (ref is None) == (batch is None):
        raise context.usage("name a job (KEY|JOB_ID) or a batch (--batch ID), one of them")
    stack = context.stack(ctx)
    if batch is not None:
        cancel_batch(stack, batch, yes=yes, as_json=as_json, cancel_one=_cancel_one(stack))
    reader = JobReader(stack)
    with context.aws_errors():
        record = _find(reader, str(ref))
        result = CancelResult.model_validate(_request(stack, "cancel", record, as_json))
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


def _cancel_one(stack: Stack) -> Callable[[str], dict[str, Any]]:
    """Cancel one job of a batch: the jobs API's answer, or its refusal as an outcome."""

    def cancel_one(job_id: str) -> dict[str, Any]:
        try:
            return request(stack, "cancel", job_id)
        except Refused as exc:
            return {"job_id": job_id, "outcome": "refused", "detail": str(exc)}
        except RequestFailed as exc:
            return {"job_id": job_id, "outcome": "error", "detail": str(exc)}

    return cancel_one


def _not_cancelled(record: JobRecord, result: CancelResult) -> None:
    why = {
        CancelOutcome.ALREADY_ENDED: f"it had ended already ({ending_word(record)}"
        + (f": {result.reason})" if result.reason not in (None, ending_word(record)) else ")"),
        CancelOutcome.STORING: "the provider finished the task; its result is being stored",
        CancelOutcome.NOT_FOUND: "the stack has no such job",
        CancelOutcome.PART_ID: result.advice,
    }[result.outcome]
    out.print(styled("not cancelled", "yellow", f"  {record.key} (job {short_id(record.job_id)})"))
    out.print(f"        {why}", soft_wrap=True)


def retry(
    ctx: typer.Context,
    ref: Ref,
    yes: Annotated[
        bool,
        typer.Option(
            "--yes", help="Go ahead: parts with no paid result get a new, paid provider task."
        ),
    ] = False,
    wait: Annotated[bool, typer.Option("--wait", help="Follow the new job live.")] = False,
    timeout: Annotated[
        float | None, typer.Option(metavar="SECONDS", help="Stop waiting after this long (exit 1).")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Run a failed or cancelled job again from the same input version, without a new upload.

    The retry is a new job (its id: the old one's with `-r2`, `-r3`, ...), linked to the old
    one both ways, and checked by Submit's own rules again (a fixed manifest counts). What was
    paid is re-used (an edited part kept, a task whose result link still lives); each part with
    no paid result gets a new provider task, which is paid: without --yes the command only says
    what it would run and pay for. Refused while the job runs (cancel it first), after it succeeded, and for an
    input refused for its options (uploading a fixed manifest restarts it), and (403) when you
    may not act on the input's prefix (ActorPrefixes; by default: you may upload there). Exit 0
    when the new job started (with --wait: succeeded); 1 otherwise; 2 without --yes.
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
        result = RetryResult.model_validate(_request(stack, "retry", record, as_json))
        if result.outcome not in (RetryOutcome.STARTED, RetryOutcome.REFUSED):
            _refused(record, result.detail or result.outcome.value, as_json)
        new_id = str(result.new_job_id)
        if not as_json:
            out.print(
                styled("retrying", "cyan", f"  {record.key} as job {short_id(new_id)}")
                + f" (retry of {short_id(record.job_id)}: {result.detail})"
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
    reused, parts = reuse_of(JobReader(stack).store, record)
    provider = record.provider or stack.provider
    cost = (
        f"{reused} of its {parts} part(s) re-use what was already paid (no new task), "
        f"{parts - reused} get a new paid task at {provider}"
        if reused
        else f"{parts} new paid task(s) at {provider}"
    )
    what = (
        f"retry runs s3://{stack.bucket}/{record.key} (version {record.version}) again as a new "
        f"job: {cost} (the old job ended: {record.error_reason}). Add --yes to go ahead."
    )
    if as_json:
        print_json({"retry": {"job_id": record.job_id, "outcome": "needs_yes", "detail": what}})
    else:
        err.print(styled("confirm:", "yellow", f" {what}"), soft_wrap=True)
    return typer.Exit(Exit.USAGE)
