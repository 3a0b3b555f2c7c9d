"""RecordFailure: the error report beside the input's place, and the job marked failed."""

from typing import Any

import boto3
from aws_lambda_powertools.utilities.typing import LambdaContext

from dropcut.config import Settings, SlotSettings
from dropcut.events import FailureStep
from dropcut.jobs import JobStore
from dropcut.observability import lambda_handler, logger
from dropcut.reports import record_step_failure

settings = Settings.from_env()
slot_settings = SlotSettings.from_env()
s3 = boto3.client("s3")
dynamodb = boto3.resource("dynamodb")
store = JobStore(dynamodb.Table(settings.jobs_table))
slots = slot_settings.pool(settings, dynamodb, boto3.client("stepfunctions"))


@lambda_handler(FailureStep)
def handler(event: FailureStep, context: LambdaContext) -> dict[str, Any]:
    logger.append_keys(job_id=event.job_id)
    key = record_step_failure(
        s3,
        store,
        settings,
        slots,
        slot_settings.lost_task_hold_seconds,
        event.job_id,
        event.error,
    )
    return {"error_report_key": key}
