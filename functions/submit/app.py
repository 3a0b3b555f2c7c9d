"""Submit: inbox queue messages (S3 notifications) -> one job per video version, started once.

A message whose handling fails is reported back (partial batch failure) and retried after the
queue's visibility timeout; after maxReceiveCount receives it goes to the dead-letter queue.
"""

import os
from typing import Any

import boto3
from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.typing import LambdaContext

from dropcut.config import Settings
from dropcut.events import InboxMessage
from dropcut.intake import Intake, Outcome, submit_object
from dropcut.jobs import JobStore
from dropcut.observability import instrumented, logger, metrics

settings = Settings.from_env()
intake = Intake(
    s3=boto3.client("s3"),
    sfn=boto3.client("stepfunctions"),
    store=JobStore(boto3.resource("dynamodb").Table(settings.jobs_table)),
    settings=settings,
    state_machine_arn=os.environ["STATE_MACHINE_ARN"],
    default_prompt=os.environ["DEFAULT_PROMPT"],
)
processor = BatchProcessor(event_type=EventType.SQS, model=InboxMessage)
#: Metric per outcome: what an operator counts on the dashboard.
OUTCOME_METRICS = {
    Outcome.STARTED: "JobsSubmitted",
    Outcome.REFUSED: "JobsRefused",
    Outcome.DUPLICATE: "DuplicateEvents",
}


def submit_message(record: InboxMessage) -> None:
    """One queue message (Powertools calls it `record`); raising reports it failed."""
    for notification in record.body.Records:
        ref = notification.s3.object
        result = submit_object(intake, notification.s3.bucket.name, ref.decoded_key, ref.versionId)
        logger.info(
            "inbox event handled",
            extra={"key": result.key, "outcome": result.outcome.value, "job_id": result.job_id},
        )
        if result.outcome in OUTCOME_METRICS:
            metrics.add_metric(name=OUTCOME_METRICS[result.outcome], unit="Count", value=1)


@instrumented
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return process_partial_response(
        event=event, record_handler=submit_message, processor=processor, context=context
    )
