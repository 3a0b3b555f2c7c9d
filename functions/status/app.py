"""Status: one provider status query; returns the task with the next wait, or raises its ending."""

import os
from typing import Any

import boto3
from aws_lambda_powertools.utilities.typing import LambdaContext

from dropcut.config import Settings, provider_factory
from dropcut.events import TaskStep
from dropcut.jobs import JobStore
from dropcut.observability import lambda_handler, logger
from dropcut.tasks import PollPlan, check_task

settings = Settings.from_env()
store = JobStore(boto3.resource("dynamodb").Table(settings.jobs_table))
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
    return check_task(store, provider_for, plan, event.job_id, event.task).model_dump(mode="json")
