"""Typed inputs of the functions the state machine, the command line and the schedule invoke:
step inputs, requests, the reconciler's schedule (Submit's inbox messages: dropcut.inbox).
Sample events for each live in the project's events/."""

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


class JobRequest(BaseModel):
    """A person's request about one job (`dropcut cancel`, `dropcut retry`), invoked directly.

    `requested_by` is who asked, as the command line reports its caller (its STS identity);
    CloudTrail records the invoker itself."""

    model_config = ConfigDict(extra="forbid")
    job_id: str = Field(pattern=JOB_ID_PATTERN)
    requested_by: str = Field(min_length=1, max_length=256, pattern=r"^[\x20-\x7e]+$")


class ScheduledEvent(Lenient):
    """An EventBridge schedule's event (only its time is read)."""

    time: str = ""
