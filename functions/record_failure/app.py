"""RecordFailure: the error report beside the input's place, and the job marked failed."""

from typing import Any

import boto3
from aws_lambda_powertools.utilities.typing import LambdaContext

from dropcut.config import Settings
from dropcut.events import FailureStep
from dropcut.jobs import JobStore
from dropcut.observability import lambda_handler, logger
from dropcut.reports import record_step_failure

settings = Settings.from_env()
s3 = boto3.client("s3")
store = JobStore(boto3.resource("dynamodb").Table(settings.jobs_table))


@lambda_handler(FailureStep)
def handler(event: FailureStep, context: LambdaContext) -> dict[str, Any]:
    logger.append_keys(job_id=event.job_id)
    return {"error_report_key": record_step_failure(s3, store, settings, event.job_id, event.error)}
