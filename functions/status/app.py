"""Status: one provider status query; returns the task with the next wait, or raises its ending."""

import os
from typing import Any

import boto3
from aws_lambda_powertools.utilities.typing import LambdaContext

from dropcut.config import Settings, SlotSettings, provider_factory
from dropcut.events import TaskStep
from dropcut.jobs import JobStore
from dropcut.observability import lambda_handler, logger
from dropcut.tasks import PollPlan, check_task

settings = Settings.from_env()
dynamodb = boto3.resource("dynamodb")
store = JobStore(dynamodb.Table(settings.jobs_table))
slots = SlotSettings.from_env().pool(settings, dynamodb, boto3.client("stepfunctions"))
plan = PollPlan(
    initial_seconds=1,  # only the start step uses the initial wait
    max_seconds=int(os.environ["POLL_MAX_SECONDS"]),
    growth_percent=int(os.environ["POLL_GROWTH_PERCENT"]),
    callback_silence_seconds=int(os.environ["CALLBACK_SILENCE_SECONDS"]),
)

# Two reads of at most 8 s each fit well inside the function's 30 s.
provider_for = provider_factory(settings, read_timeout=8.0, read_attempts=2)


@lambda_handler(TaskStep)
def handler(event: TaskStep, context: LambdaContext) -> dict[str, Any]:
    logger.append_keys(job_id=event.job_id, task_id=event.task.task_id)
    progress = check_task(store, slots, provider_for, plan, event.job_id, event.task)
    return progress.model_dump(mode="json")
