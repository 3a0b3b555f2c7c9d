"""CheckStatus: one provider status query; returns the task with the next wait, or raises how
it ended (TaskFailed, JobTimedOut)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from dropcut.aws.breaker import Breaker
from dropcut.aws.job_store import JobStore
from dropcut.aws.ledger import BudgetLedger
from dropcut.aws.pace import PaceBook
from dropcut.errors import JobTimedOut, TaskCreationUncertain, TaskFailed, TaskRetried
from dropcut.model.follow import PollPlan, TaskProgress, next_progress
from dropcut.model.jobs import JobStatus
from dropcut.model.phases import JobPhase
from dropcut.observability import logger
from dropcut.providers import ProviderFor, TaskState
from dropcut.providers.http import redact_urls
from dropcut.steps.acquire_slot import job_estimate


@dataclass(frozen=True)
class CheckStatusDeps:
    store: JobStore
    provider_for: ProviderFor
    plan: PollPlan
    #: The provider account's daily budget: a part's failed task is charged there, and its new
    #: task reserves its own estimate (dropcut.model.budget).
    ledger: BudgetLedger
    #: Where the durations of tasks seen to end are recorded (dropcut.aws.pace); None: nowhere.
    pace: PaceBook | None
    #: TaskRetries: how many new tasks a part whose provider task failed gets (a whole job's
    #: failed task is not retried: `dropcut retry` is the user's call to pay again).
    task_retries: int
    #: The provider breaker, told of each outage answer (dropcut.aws.breaker); None: none.
    breaker: Breaker | None


def check_status(deps: CheckStatusDeps, part_id: str, progress: TaskProgress) -> TaskProgress:
    """Ask the provider about the job's task and record what it says.

    Returns the task (state succeeded: go to Finalize; otherwise with the next wait). Raises
    TaskFailed (the provider ran it and it failed), JobTimedOut (past the job deadline),
    TaskCreationUncertain (a create whose answer was lost, and no callback named its task
    before the deadline) and the provider's named errors (retried by the state machine).
    """
    if not progress.task_id:
        progress = _adopted(deps.store, part_id, progress)
    if progress.state is TaskState.SUCCEEDED:
        # A retry re-uses this finished task (StartTask said so): nothing to ask, go on.
        deps.store.move_phase(part_id, JobPhase.STORING)
        return progress
    try:
        task = deps.provider_for(progress.provider).get_task(progress.task_id)
    except Exception as error:
        if deps.breaker is not None:
            deps.breaker.record(error, time.time())
        raise
    now = time.time()
    fields: dict[str, Any] = {
        "task_state": task.state.value,
        "progress": task.progress,
        "polls": progress.polls + 1,
    }
    if task.finished:
        fields["task_finished_seen_at"] = now
        fields["credits"] = task.credits
    deps.store.update(part_id, fields)
    if task.state is TaskState.FAILED:
        code = f" [{task.error_code}]" if task.error_code else ""
        message = redact_urls(task.error_message or "no message")
        not_retried = _retry_part(deps, part_id, progress.task_id, f"{code}: {message}")
        raise TaskFailed(f"the provider reported the task failed{code}: {message}{not_retried}")
    updated = progress.model_copy(
        update={"state": task.state, "polls": progress.polls + 1, "progress": task.progress}
    )
    if task.state is TaskState.SUCCEEDED:
        deps.store.move_phase(part_id, JobPhase.STORING)
        if deps.pace is not None and progress.pace_key and progress.created_at:
            deps.pace.record(progress.pace_key, now - progress.created_at)
        return updated
    remaining = progress.deadline - now
    if remaining <= 0:
        raise JobTimedOut(
            f"the provider task was still {task.provider_status} at the job deadline "
            f"(after {progress.polls + 1} status checks)"
        )
    return next_progress(updated, deps.plan, remaining)


def _adopted(store: JobStore, part_id: str, progress: TaskProgress) -> TaskProgress:
    """The progress of a task a callback adopted (dropcut.steps.webhook) while the job waited
    for it; TaskCreationUncertain when none did."""
    record = store.require_part(part_id)
    if not record.task_id:
        raise TaskCreationUncertain(
            f"{record.create_uncertain or 'the create answer was lost'}; no callback named a "
            "task before the job deadline, so the provider may or may not have created one: "
            "dropcut will not send a second one"
        )
    return progress.model_copy(
        update={"task_id": record.task_id, "created_at": record.task_created_at}
    )


def _retry_part(deps: CheckStatusDeps, part_id: str, task_id: str, why: str) -> str:
    """Give a part whose task failed a new task while it has retries left: the failed task is
    charged on the daily budget (its credits, or its estimate when the provider gave none), the
    new task reserves its own estimate, the part's task fields are cleared (the failed task is
    kept in `failed_tasks`) and TaskRetried sends the execution back to StartTask, the part
    still holding its slot. Returns when the part is not retried: what the failure's message
    should add ("" when the part has no retries left)."""
    record = deps.store.require_part(part_id)
    carried = record.carried_from is not None  # the user's retry asked to pay for it again
    if not carried and (not record.part_of or record.task_number >= deps.task_retries):
        return ""
    if record.task_id != task_id:
        return ""  # a repeat for a task the part has left behind: its reset is done
    ledger = deps.ledger
    ledger.charge(part_id, record.credits, task=record.task_number)
    if not ledger.reserve(part_id, record.task_number + 1, job_estimate(ledger, record)):
        logger.warning("no new task for the part: the daily credit budget has no room")
        return (
            "; the part got no new task: the daily credit budget has no room for it "
            f"(DailyCreditBudget {ledger.budget.limit:g}, {ledger.spent():g} spent today)"
        )
    reset = deps.store.update(
        part_id,
        {
            "failed_tasks": [*record.failed_tasks, {"task_id": task_id, "credits": record.credits}],
            "status": JobStatus.RECEIVED.value,
            "task_id": None,
            "task_state": None,
            "progress": None,
            "credits": None,
            "task_created_at": None,
            "task_finished_seen_at": None,
            "callback_token": None,
            "callback_outcome": None,
            "callback_received_at": None,
            "carried_from": None,
            "phase": JobPhase.AT_PROVIDER.value,
        },
        condition="task_id = :failed",
        condition_values={":failed": task_id},
    )
    if reset:
        raise TaskRetried(f"the part's task {task_id} failed{why}; the part gets a new task")
    return ""
