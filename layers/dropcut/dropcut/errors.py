"""Named exceptions. The state machine's Retry and Catch match them by class name, so keep names stable."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    """One broken rule: what was wrong, the limit, and what to do about it."""

    field: str
    message: str
    limit: str = ""
    hint: str = ""

    def as_dict(self) -> dict[str, str]:
        return {
            "field": self.field,
            "message": self.message,
            "limit": self.limit,
            "hint": self.hint,
        }


class DropcutError(Exception):
    """Base of every error dropcut raises on purpose."""

    #: Stable machine-readable reason used in error reports, metrics and job records.
    reason = "error"
    #: What a person should do next; shown in the error report.
    advice = "See the message; if it persists, contact the operator of this dropcut stack."


class InputInvalid(DropcutError):
    """The job's input or options break a documented rule; nothing was sent to the provider."""

    reason = "input_invalid"
    advice = "Fix every problem listed and upload the video (or its manifest) again."

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("; ".join(f"{p.field}: {p.message}" for p in problems))


class RequestInvalid(InputInvalid):
    """An edit request breaks the active provider's documented limits (checked before any HTTP call)."""

    reason = "request_invalid"


class AwsUnavailable(DropcutError):
    """An AWS service dropcut calls (S3, DynamoDB, Step Functions, Secrets Manager) failed in a
    way that may pass: throttled, 5xx, or unreachable, after the SDK's own retries. Every step
    is safe to repeat, so the state machine retries it with backoff."""

    reason = "aws_unavailable"
    advice = (
        "An AWS service was unavailable for longer than dropcut retries; upload the video again "
        "later, and tell the operator if it persists."
    )


class ProviderError(DropcutError):
    """The provider answered with an error, or could not be reached."""

    reason = "provider_error"

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        delivered: bool = True,
    ):
        self.status = status
        self.code = code
        #: False only when the request provably never left: the connection was not made
        #: (dropcut.providers.base.create_refused reads it).
        self.delivered = delivered
        super().__init__(message)


class ProviderThrottled(ProviderError):
    """429: too many requests or too many concurrent tasks. Retry after `retry_after` seconds."""

    reason = "provider_throttled"
    advice = "The provider is rate limiting this account; dropcut retries with backoff."

    def __init__(
        self,
        message: str,
        *,
        retry_after: float | None = None,
        status: int | None = 429,
        code: str | None = None,
    ):
        self.retry_after = retry_after
        super().__init__(message, status=status, code=code)


class ProviderUnavailable(ProviderError):
    """5xx, timeout or connection failure: transient, safe to retry for reads."""

    reason = "provider_unavailable"
    advice = "The provider was unavailable; retry later."


class ProviderRejected(ProviderError):
    """400/403/404/422: the provider refused the request. Permanent; retrying will not help."""

    reason = "provider_rejected"
    advice = "The provider refused this request; check the message, fix the input and upload again."


class ProviderUnauthorized(ProviderError):
    """401: the API key is missing, wrong or expired."""

    reason = "provider_unauthorized"
    advice = "The operator must update the provider API key secret of this stack."


class ProviderOutOfCredits(ProviderError):
    """402: the provider account has no credits left."""

    reason = "provider_out_of_credits"
    advice = "The operator must top up the provider account, then upload the video again."


class ProviderBadResponse(ProviderError):
    """The provider answered 2xx with a body that is not the documented JSON."""

    reason = "provider_bad_response"
    advice = "The provider answered with an unexpected body; retry later."


class TaskFailed(DropcutError):
    """The provider ran the task and reported failure."""

    reason = "provider_task_failed"
    advice = (
        "The provider could not edit this video; check the message, adjust the prompt or video."
    )


class MediaUnreadable(DropcutError):
    """Prepare or Stitch could not decode a video it was given (the input, or an edited part)."""

    reason = "media_unreadable"
    advice = (
        "The video could not be decoded; export it again as MP4 (H.264) and upload it again. "
        "Edited parts already stored are kept under the job's work prefix."
    )


class TaskRetried(DropcutError):
    """A part's provider task failed and the part gets a new one (TaskRetries): the state
    machine goes back to StartTask. The part keeps its slot; the parts already edited are not
    paid again."""

    reason = "task_retried"
    advice = "Nothing to do: the part is edited again."


class ResultUnavailable(DropcutError):
    """The provider's result link answered 401/403/404/410: not there yet (a CDN a moment after
    the task completed), or expired. Finalize retries it within ResultCopyWindowSeconds."""

    reason = "result_unavailable"
    advice = (
        "The provider's result link could not be read; dropcut kept trying. "
        "dropcut retry <job id> --yes copies it again from the recorded task (no new task)."
    )


class ResultCopyFailed(DropcutError):
    """A result the provider reported ready could still not be copied after
    ResultCopyWindowSeconds of retries: the task is paid, its id and link expiry are recorded."""

    reason = "result_copy_failed"
    advice = (
        "The edit was made and paid for, but its result link could not be read. While the link "
        "lives (see link_expires_at), dropcut retry <job id> --yes copies it from the recorded "
        "task without a new task; after that, a retry pays for a new one."
    )


class ResultInvalid(DropcutError):
    """The provider's result is not a video dropcut will store: a web page, the wrong status or
    content type, a file that is not an MP4/MOV, over MaxResultBytes, or too many redirects."""

    reason = "result_invalid"
    advice = (
        "The provider returned something that is not a usable video (see the message); the task "
        "may still be billed. Ask the operator to check the task at the provider, then upload the "
        "video again."
    )


class ResultUndecodable(ResultInvalid):
    """A part's edited video has valid MP4 boxes but its pictures do not decode (Stitch checks
    before anything reaches the outbox). The part's edit is set aside; the others are kept."""

    advice = (
        "The provider returned a video whose pictures do not decode (see the message); the task "
        "is likely billed. dropcut retry <job id> --yes pays for a new task for that part alone "
        "and re-uses every other part already edited."
    )


class ResultUrlRefused(DropcutError):
    """The result URL is not https or points at a private address; dropcut will not fetch it."""

    reason = "result_url_refused"
    advice = "The provider returned a result URL dropcut does not trust; contact the operator."


class ProviderAnswerLost(ProviderUnavailable):
    """The request was sent and its answer never came or cannot be trusted (read timeout, reset,
    a gateway's 5xx or 408, a 2xx that does not parse): the provider may have acted on it."""

    reason = "provider_answer_lost"


class TaskCreationUncertain(DropcutError):
    """A create reached the provider and its answer was lost or unusable, and no callback named
    the task in time: a task may exist (and be billed). Never retried, to never pay twice."""

    reason = "task_creation_uncertain"
    advice = (
        "The provider may have created (and billed) a task without dropcut learning its id; "
        "dropcut did not send a second one. Check the provider's dashboard for it. To edit the "
        "video anyway: dropcut retry <job id> --yes (a new paid task)."
    )


class InputGone(DropcutError):
    """The job's input was deleted (its version, or its key with no newer upload) before a
    provider task was created for it: nothing more is sent, nothing more paid."""

    reason = "input_gone"
    advice = (
        "The video was deleted while its job waited, so dropcut stopped it before paying for "
        "it (what was already paid, if anything, is listed under paid). To edit it, upload the "
        "video again."
    )


class StackMisconfigured(DropcutError):
    """The stack's parameters contradict each other in a way that would waste money (the
    message names them); the job ended before anything was sent."""

    reason = "stack_misconfigured"
    advice = (
        "This dropcut stack's parameters do not fit together (see the message); nothing was sent "
        "or paid. Tell the operator; once the stack is fixed: dropcut retry <job id> --yes."
    )


class JobTimedOut(DropcutError):
    """The provider task did not finish before the job's deadline."""

    reason = "job_timed_out"
    advice = (
        "The provider took longer than this stack's JobDeadlineSeconds. To finish the edit: "
        "dropcut retry <job id> --yes re-uses what was already paid (the parts edited, and a task "
        "that may still finish: see paid) and pays only for the rest; uploading the video again "
        "would pay for all of it again."
    )


class SlotWaitTimedOut(DropcutError):
    """No provider slot came free within the stack's QueueWaitSeconds; nothing was sent."""

    reason = "slot_wait_timed_out"
    advice = (
        "Every provider slot (ProviderConcurrency) stayed busy for longer than QueueWaitSeconds; "
        "upload the video again later, or ask the operator to raise the limit."
    )


class BudgetWaitTimedOut(DropcutError):
    """The daily credit budget (DailyCreditBudget) held the job back for longer than the stack's
    QueueWaitSeconds; nothing was sent."""

    reason = "budget_wait_timed_out"
    advice = (
        "The stack's daily credit budget (DailyCreditBudget) was spent for longer than the job "
        "may wait (QueueWaitSeconds); upload the video again when the budget allows (it renews "
        "at 00:00 UTC), or ask the operator to raise DailyCreditBudget or QueueWaitSeconds."
    )


class StartDeadlinePassed(DropcutError):
    """The job was still queued at its start deadline (`not_after` in its manifest or folder
    preset); nothing was sent, nothing paid."""

    reason = "start_deadline_passed"
    advice = (
        "The backlog did not reach the job before its not_after. Upload it again with a later "
        "not_after (or none: it then waits as long as the backlog needs), a higher priority, or "
        "ask the operator for more ProviderConcurrency."
    )


class OverDailyBudget(DropcutError):
    """The job alone is estimated to cost more than the whole daily credit budget; nothing was
    sent."""

    reason = "over_daily_budget"
    advice = (
        "This job alone is estimated to cost more than the stack's whole daily credit budget "
        "(DailyCreditBudget); ask the operator to raise it, or send a shorter clip."
    )


class ManifestTimedOut(DropcutError):
    """A video without options waited longer than ManifestWaitSeconds for its manifest."""

    reason = "manifest_timeout"
    advice = "Upload the manifest beside the video: the job starts when it arrives."


class UploadNotAccepted(DropcutError):
    """Submit failed on an upload's inbox event every time it was tried (each receive of the
    inbox queue, then each time the reconciler sent it back from the dead-letter queue): an
    AWS outage that lasted, or a bug. Nothing was sent to the provider."""

    reason = "not_accepted"
    advice = (
        "Upload the video again (a new version is a new job). If it fails again, send this report "
        "to the operator of this dropcut stack: the Submit function's log says why."
    )


class StepTimedOut(DropcutError):
    """A step ran past its time limit (Step Functions' States.Timeout / HeartbeatTimeout, or
    Lambda's Sandbox.Timedout)."""

    reason = "step_timed_out"
    advice = (
        "A step of the job ran past its time limit (Prepare and Stitch are tried twice at most). "
        "A long video at a large size or frame rate can be too much to prepare in time: cut it "
        "into shorter clips or scale it down, then upload it again."
    )

    #: The names Step Functions and Lambda give a step that ran out of time (moto reports a
    #: heartbeat expiry as States.Timeout, AWS as States.HeartbeatTimeout).
    error_names = frozenset({"States.Timeout", "States.HeartbeatTimeout", "Sandbox.Timedout"})


class JobNotReady(DropcutError):
    """A step found the job without what an earlier step guarantees (a resolved spec): a bug."""

    reason = "job_not_ready"


class ExecutionEnded(DropcutError):
    """The job's execution ended without recording an ending (cancelled, timed out or crashed)."""

    reason = "execution_ended"
    advice = "The job was stopped before it finished; upload the video again to retry."


class JobCancelled(DropcutError):
    """Someone cancelled the job (`dropcut cancel`): its execution was stopped. The cancel step
    writes the advice, which says whether the provider still bills a task already created."""

    reason = "cancelled"
    advice = "The job was cancelled; to run it again: dropcut retry <job id> --yes."


#: The reason of a failure no named error explains: a bug, by definition.
INTERNAL_ERROR_REASON = "internal_error"


@dataclass(frozen=True)
class Failure:
    """Why a job failed, as its error report and job record say it: the value object every
    ending with a report is made from."""

    reason: str
    error_type: str
    message: str
    advice: str
    problems: tuple[Problem, ...] = ()

    @classmethod
    def of(cls, error: DropcutError) -> Failure:
        """The failure a named error describes (its class name is the error type)."""
        problems = tuple(error.problems) if isinstance(error, InputInvalid) else ()
        return cls(error.reason, type(error).__name__, str(error), error.advice, problems)


def error_class(name: str) -> type[DropcutError] | None:
    """The DropcutError subclass called `name` (as Step Functions reports it), if there is one."""
    pending: list[type[DropcutError]] = [DropcutError]
    while pending:
        cls = pending.pop()
        if cls.__name__ == name:
            return cls
        pending.extend(cls.__subclasses__())
    return None
