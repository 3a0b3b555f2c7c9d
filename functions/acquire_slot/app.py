"""AcquireSlot: put the job in line for a provider slot; its execution waits (for free) until
the slot is handed over, by this call or by whichever job gives one back."""

from typing import Any

import boto3
from aws_lambda_powertools.utilities.typing import LambdaContext

from dropcut.config import Settings, SlotSettings
from dropcut.events import TokenWait
from dropcut.jobs import JobStore
from dropcut.observability import lambda_handler, logger

settings = Settings.from_env()
slot_settings = SlotSettings.from_env()
dynamodb = boto3.resource("dynamodb")
store = JobStore(dynamodb.Table(settings.jobs_table))
slots = slot_settings.pool(settings, dynamodb, boto3.client("stepfunctions"))


@lambda_handler(TokenWait)
def handler(event: TokenWait, context: LambdaContext) -> dict[str, Any]:
    logger.append_keys(job_id=event.job_id)
    record = store.require(event.job_id)
    holds = slots.acquire(
        event.job_id, record.created_at, event.task_token, slot_settings.max_wait_seconds
    )
    return {"holds_slot_now": holds}
