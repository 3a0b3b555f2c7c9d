"""CheckStatus: one provider status query; returns the task with the next wait, or raises how
it ended (TaskFailed, JobTimedOut)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from dropcut.errors import JobTimedOut, TaskFailed
from dropcut.follow import PollPlan, TaskProgress, next_progress
from dropcut.jobs import JobStore
from dropcut.pace import PaceBook
from dropcut.providers import ProviderFor, TaskState
from dropcut.providers.http import redact_urls


@dataclass(frozen=True)
class CheckStatusDeps:
    store: JobStore
    provider_for: ProviderFor
    plan: PollPlan
    #: Where the durations of tasks seen to end are recorded (dropcut.pace); None: nowhere.
    pace: PaceBook | None = None


def check_status(deps: CheckStatusDeps, job_id: str, progress: TaskProgress) -> TaskProgress:
    """Ask the provider about the job's task and record what it says.

    Returns the task (state succeeded: go to Finalize; otherwise with the next wait). Raises
    TaskFailed (the provider ran it and it failed), JobTimedOut (past the job deadline) and the
    provider's named errors (retried by the state machine).
    """
    task = deps.provider_for(progress.provider).get_task(progress.task_id)
    now = time.time()
    fields: dict[str, Any] = {
        "task_state": task.state.value,
        "progress": task.progress,
        "polls": progress.polls + 1,
    }
    if task.finished:
        fields["task_finished_seen_at"] = now
        fields["credits"] = task.credits
    deps.store.update(job_id, fields)
    if task.state is TaskState.FAILED:
        code = f" [{task.error_code}]" if task.error_code else ""
        message = redact_urls(task.error_message or "no message")
        raise TaskFailed(f"the provider reported the task failed{code}: {message}")
    updated = progress.model_copy(
        update={"state": task.state, "polls": progress.polls + 1, "progress": task.progress}
    )
    if task.state is TaskState.SUCCEEDED:
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
