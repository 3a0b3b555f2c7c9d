"""Finalize: stream the provider's result into the outbox, write the result manifest."""

from typing import Any

import boto3
from aws_lambda_powertools.utilities.typing import LambdaContext

from dropcut.config import Settings, SlotSettings, http_client, provider_factory
from dropcut.events import TaskStep
from dropcut.jobs import JobStore
from dropcut.observability import lambda_handler, logger
from dropcut.results import finalize

settings = Settings.from_env()
s3 = boto3.client("s3")
dynamodb = boto3.resource("dynamodb")
store = JobStore(dynamodb.Table(settings.jobs_table))
slots = SlotSettings.from_env().pool(settings, dynamodb, boto3.client("stepfunctions"))

provider_for = provider_factory(settings)


@lambda_handler(TaskStep)
def handler(event: TaskStep, context: LambdaContext) -> dict[str, Any]:
    logger.append_keys(job_id=event.job_id, task_id=event.task.task_id)
    result = finalize(
        s3, http_client(), store, settings, provider_for, slots, event.job_id, event.task
    )
    return result.model_dump(mode="json")
