"""StartTask: presign the input and create the provider task, at most once per job."""

import os
from typing import Any

import boto3
from aws_lambda_powertools.utilities.typing import LambdaContext

from dropcut.config import CallbackSettings, Settings, provider_factory
from dropcut.events import JobStep
from dropcut.jobs import JobStore
from dropcut.observability import lambda_handler, logger
from dropcut.storage import presigning_s3_client
from dropcut.tasks import PollPlan, start_task

settings = Settings.from_env()
s3 = presigning_s3_client()
store = JobStore(boto3.resource("dynamodb").Table(settings.jobs_table))
plan = PollPlan(
    initial_seconds=int(os.environ["POLL_INITIAL_SECONDS"]),
    max_seconds=int(os.environ["POLL_MAX_SECONDS"]),
    deadline_seconds=int(os.environ["JOB_DEADLINE_SECONDS"]),
    callback_silence_seconds=int(os.environ["CALLBACK_SILENCE_SECONDS"]),
)
presign_seconds = int(os.environ["PRESIGN_EXPIRY_SECONDS"])

# The create's answer must come well inside the function's 30 s (a lost answer is final).
provider_for = provider_factory(settings, read_timeout=20.0)
callbacks = CallbackSettings.from_env()
callback_url_for = callbacks.url_for if callbacks.enabled else None


@lambda_handler(JobStep)
def handler(event: JobStep, context: LambdaContext) -> dict[str, Any]:
    logger.append_keys(job_id=event.job_id)
    progress = start_task(
        s3, store, settings, provider_for, plan, presign_seconds, event.job_id, callback_url_for
    )
    return progress.model_dump(mode="json")
