"""Submit's input: an inbox queue message, the S3 notification S3 sent to the queue. Its own
module, so the other functions do not build these models (and Powertools' SQS models) at their
cold start. A sample event lives in the project's events/."""

from __future__ import annotations

from urllib.parse import unquote_plus

from aws_lambda_powertools.utilities.parser.models import SqsRecordModel
from pydantic import Field, Json

from dropcut.model.inputs import Lenient


class S3ObjectRef(Lenient):
    key: str
    versionId: str | None = None
    eTag: str | None = None
    size: int | None = None

    @property
    def decoded_key(self) -> str:
        """S3 event keys are URL-encoded ('+' for space, %XX for the rest)."""
        return unquote_plus(self.key)


class S3BucketRef(Lenient):
    name: str


class S3Entity(Lenient):
    bucket: S3BucketRef
    object: S3ObjectRef


class S3EventRecord(Lenient):
    eventName: str = ""
    s3: S3Entity


class InboxEvent(Lenient):
    """Only the fields submit reads, so test tools and S3 itself both parse."""

    Records: list[S3EventRecord] = Field(default_factory=list)


class InboxMessage(SqsRecordModel):
    """One inbox queue message: the S3 notification S3 sent to the queue (its test event, sent
    when the notification is configured, has no Records)."""

    body: Json[InboxEvent]
