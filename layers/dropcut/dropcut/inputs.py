"""Typed inputs of the functions the state machine and the schedule invoke: step inputs, the
reconciler's schedule (Submit's inbox messages: dropcut.inbox; Cancel's and Retry's HTTP
requests: dropcut.actors). Sample events for each live in the project's events/."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from dropcut.follow import TaskProgress
from dropcut.jobs import JOB_ID_PATTERN


class Lenient(BaseModel):
    """A model that ignores the fields it does not name (AWS adds fields to its events)."""

    model_config = ConfigDict(extra="ignore")


class JobStep(Lenient):
    job_id: str = Field(pattern=JOB_ID_PATTERN)


class TaskStep(JobStep):
    task: TaskProgress


class FailureStep(JobStep):
    error: dict[str, Any]


class TokenWait(JobStep):
    """Input of a waitForTaskToken step (ArmCallback, AcquireSlot): the job and the wait's token."""

    task_token: str = Field(min_length=1, max_length=8192)


class ScheduledEvent(Lenient):
    """An EventBridge schedule's event (only its time is read)."""

    time: str = ""
