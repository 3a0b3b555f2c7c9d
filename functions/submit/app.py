"""Submit: S3 inbox events -> one job per video version, started exactly once."""

import os
from dataclasses import asdict
from typing import Any

import boto3
from aws_lambda_powertools.utilities.typing import LambdaContext

from dropcut.config import Settings
from dropcut.events import InboxEvent
from dropcut.intake import Intake, submit_object
from dropcut.jobs import JobStore
from dropcut.observability import lambda_handler, metrics

settings = Settings.from_env()
intake = Intake(
    s3=boto3.client("s3"),
    sfn=boto3.client("stepfunctions"),
    store=JobStore(boto3.resource("dynamodb").Table(settings.jobs_table)),
    settings=settings,
    state_machine_arn=os.environ["STATE_MACHINE_ARN"],
    default_prompt=os.environ["DEFAULT_PROMPT"],
)


@lambda_handler(InboxEvent)
def handler(event: InboxEvent, context: LambdaContext) -> dict[str, Any]:
    results = []
    for record in event.Records:
        ref = record.s3.object
        result = submit_object(intake, record.s3.bucket.name, ref.decoded_key, ref.versionId)
        metrics.add_metric(name=f"Submit_{result.outcome.value}", unit="Count", value=1)
        results.append(asdict(result))
    return {"results": results}
