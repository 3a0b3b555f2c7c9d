"""Typed inputs of the functions the state machine and the schedule invoke: step inputs, the
reconciler's schedule (Submit's inbox messages: dropcut.model.inbox; Cancel's and Retry's HTTP
requests: dropcut.services.actors). Sample events for each live in the project's events/."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from dropcut.model.follow import TaskProgress
from dropcut.model.jobs import JOB_ID_PATTERN


class Lenient(BaseModel):
    """A model that ignores the fields it does not name (AWS adds fields to its events)."""

    model_config = ConfigDict(extra="ignore")


class JobStep(Lenient):
    """Input of a step of the whole job (Prepare, Stitch, RecordFailure)."""

    job_id: str = Field(pattern=JOB_ID_PATTERN)


class PartStep(Lenient):
    """Input of a step inside the Map (EditParts): one part's id, which is the job's own id in
    the one-part case, else `<job id>-pNN` (dropcut.model.jobs.JOB_ID_PATTERN covers both)."""

    part_id: str = Field(pattern=JOB_ID_PATTERN)


class TaskStep(PartStep):
    """Input of CheckStatus and Finalize: the part and its task's progress so far."""

    task: TaskProgress


class FailureStep(JobStep):
    error: dict[str, Any]


class TokenWait(PartStep):
    """Input of a waitForTaskToken step (ArmCallback, AcquireSlot): the part and the wait's
    token."""

    task_token: str = Field(min_length=1, max_length=8192)


class ScheduledEvent(Lenient):
    """An EventBridge schedule's event (only its time is read)."""

    time: str = ""
