"""Following a provider task: the poll schedule and the state machine's view of the task ($.task)."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, Field

from dropcut.providers.base import TaskState


@dataclass(frozen=True)
class PollPlan:
    """Waits between status checks: the provider's estimate first, then growing, capped intervals."""

    initial_seconds: int
    max_seconds: int
    growth_percent: int = 150
    deadline_seconds: int = 3600
    #: Callback mode: the longest silence trusted before a safety-net status check.
    callback_silence_seconds: int = 300

    def first_wait(self, estimated_seconds: int | None, learned_seconds: int | None = None) -> int:
        """Poll mode: the first wait (s): the provider's estimate when it gives one, else the
        wait learned from this stack's recent tasks (dropcut.aws.pace), else initial_seconds.
        Never past the deadline."""
        chosen = estimated_seconds or learned_seconds
        if chosen:
            return max(1, min(chosen, self.deadline_seconds))
        return self.initial_seconds

    def interval_before_initial(self) -> int:
        """The interval whose next one (next_interval) is initial_seconds: after a first wait
        of the provider's or the learned length, checks resume at the cold start's first step."""
        return max(1, self.initial_seconds * 100 // self.growth_percent)

    def first_silence(self, estimated_seconds: int | None) -> int:
        """Callback mode: wait well past the estimate before checking on a silent provider."""
        if estimated_seconds:
            return max(1, min(2 * estimated_seconds, self.deadline_seconds))
        return min(self.callback_silence_seconds, self.deadline_seconds)

    def next_interval(self, interval: int) -> int:
        """The wait (s) after one of `interval` s: grown by growth_percent, capped at max_seconds."""
        return max(1, min(self.max_seconds, math.ceil(interval * self.growth_percent / 100)))

    def waits_for(
        self,
        task_seconds: float,
        estimated_seconds: int | None = None,
        learned_seconds: int | None = None,
    ) -> list[int]:
        """The waits a job makes before it sees a task of `task_seconds` finished."""
        waits = [self.first_wait(estimated_seconds, learned_seconds)]
        interval = self.initial_seconds
        if estimated_seconds or learned_seconds:
            interval = self.interval_before_initial()
        while sum(waits) < task_seconds:
            interval = self.next_interval(interval)
            waits.append(interval)
        return waits


Follow = Literal["poll", "callback"]


class TaskProgress(BaseModel):
    """The state machine's view of a provider task ($.task). Holds no URL: those carry signatures.

    `follow` picks the loop: "poll" waits `wait_seconds` then checks; "callback" waits for the
    provider's callback, with `wait_seconds` as the heartbeat (a safety-net check after that much
    silence) and `seconds_left` (to the job deadline) as the wait's timeout.
    """

    #: "" while a create's outcome is unknown and its callback is awaited (adoption_progress).
    task_id: str
    provider: str
    state: TaskState
    follow: Follow = "poll"
    wait_seconds: int = Field(ge=1)
    interval_seconds: int = Field(ge=1)
    deadline: float
    seconds_left: int = Field(default=1, ge=1)
    polls: int = 0
    progress: int | None = None
    #: When the task was created (epoch s) and where its duration is recorded (dropcut.aws.pace).
    created_at: float | None = None
    pace_key: str | None = None


def first_progress(
    task_id: str,
    provider: str,
    state: TaskState,
    follow: Follow,
    plan: PollPlan,
    estimate: int | None,
    created_at: float,
    *,
    learned: int | None = None,
    pace_key: str | None = None,
) -> TaskProgress:
    """The task as StartTask hands it to the state machine: its deadline (`created_at` +
    the plan's deadline, epoch seconds) and the first wait (s) of its follow mode: in poll mode
    the provider's estimate, else the `learned` wait (dropcut.aws.pace), else the plan's initial
    wait; never past the deadline."""
    deadline = created_at + plan.deadline_seconds
    seconds_left = max(1, math.ceil(deadline - time.time()))
    if follow == "callback":
        first, interval = plan.first_silence(estimate), plan.initial_seconds
    else:
        first = plan.first_wait(estimate, learned)
        interval = plan.interval_before_initial() if estimate or learned else plan.initial_seconds
    wait = max(1, min(first, seconds_left))
    return TaskProgress(
        task_id=task_id,
        provider=provider,
        state=state,
        follow=follow,
        wait_seconds=wait,
        interval_seconds=interval,
        deadline=deadline,
        # Step Functions wants a heartbeat shorter than the timeout.
        seconds_left=max(seconds_left, wait + 1),
        created_at=created_at,
        pace_key=pace_key,
    )


def adoption_progress(provider: str, plan: PollPlan, sent_at: float) -> TaskProgress:
    """Callback mode for a create whose answer was lost (no task id yet): wait, up to the job
    deadline (`sent_at` + the plan's deadline, epoch s), for the callback that names the task;
    a silence that long means no task ran to its end (CheckStatus then ends the job)."""
    deadline = sent_at + plan.deadline_seconds
    seconds_left = max(2, math.ceil(deadline - time.time()))
    return TaskProgress(
        task_id="",
        provider=provider,
        state=TaskState.QUEUED,
        follow="callback",
        wait_seconds=seconds_left - 1,
        interval_seconds=plan.initial_seconds,
        deadline=deadline,
        seconds_left=seconds_left,
        created_at=sent_at,
    )


def next_progress(progress: TaskProgress, plan: PollPlan, remaining_seconds: float) -> TaskProgress:
    """The next wait after a status check that found the task still running: the schedule
    PollPlan.waits_for describes (each wait grows from the previous interval), or the callback
    silence, never past the deadline (`remaining_seconds` > 0)."""
    if progress.follow == "callback":
        interval = plan.callback_silence_seconds
    else:
        interval = plan.next_interval(progress.interval_seconds)
    wait = max(1, min(interval, math.ceil(remaining_seconds)))
    return progress.model_copy(
        update={
            "wait_seconds": wait,
            "interval_seconds": interval,
            # Step Functions wants a heartbeat shorter than the timeout.
            "seconds_left": max(wait + 1, math.ceil(remaining_seconds)),
        }
    )
