"""Typed inputs of each function: the inbox queue's S3 notifications, the state machine's step
inputs and the reconciler's schedule. Sample events for each live in the project's events/."""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote_plus

from aws_lambda_powertools.utilities.parser.models import SqsRecordModel
from pydantic import BaseModel, ConfigDict, Field, Json

from dropcut.follow import TaskProgress
from dropcut.jobs import JOB_ID_PATTERN


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore")


class S3ObjectRef(_Lenient):
    key: str
    versionId: str | None = None
    eTag: str | None = None
    size: int | None = None

    @property
    def decoded_key(self) -> str:
        """S3 event keys are URL-encoded ('+' for space, %XX for the rest)."""
        return unquote_plus(self.key)


class S3BucketRef(_Lenient):
    name: str


class S3Entity(_Lenient):
    bucket: S3BucketRef
    object: S3ObjectRef


class S3EventRecord(_Lenient):
    eventName: str = ""
    s3: S3Entity


class InboxEvent(_Lenient):
    """Only the fields submit reads, so test tools and S3 itself both parse."""

    Records: list[S3EventRecord] = Field(default_factory=list)


class InboxMessage(SqsRecordModel):
    """One inbox queue message: the S3 notification S3 sent to the queue (its test event, sent
    when the notification is configured, has no Records)."""

    body: Json[InboxEvent]


class JobStep(_Lenient):
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


class ScheduledEvent(_Lenient):
    """An EventBridge schedule's event (only its time is read)."""

    time: str = ""
