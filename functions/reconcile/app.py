"""Reconcile (scheduled): drive stuck jobs to an ending, return leaked slots, publish gauges."""

import os
from dataclasses import asdict
from typing import Any

import boto3
from aws_lambda_powertools.utilities.typing import LambdaContext

from dropcut.config import Settings, SlotSettings
from dropcut.events import ScheduledEvent
from dropcut.executions import Executions
from dropcut.jobs import JobStore
from dropcut.observability import lambda_handler
from dropcut.reconcile import reconcile

settings = Settings.from_env()
slot_settings = SlotSettings.from_env()
s3 = boto3.client("s3")
sfn = boto3.client("stepfunctions")
dynamodb = boto3.resource("dynamodb")
store = JobStore(dynamodb.Table(settings.jobs_table))
slots = slot_settings.pool(settings, dynamodb, sfn)
executions = Executions(sfn, os.environ["STATE_MACHINE_ARN"])
manifest_wait_seconds = int(os.environ["MANIFEST_WAIT_SECONDS"])


@lambda_handler(ScheduledEvent)
def handler(event: ScheduledEvent, context: LambdaContext) -> dict[str, Any]:
    report = reconcile(
        s3,
        store,
        settings,
        executions,
        slots,
        manifest_wait_seconds=manifest_wait_seconds,
        lost_task_hold_seconds=slot_settings.lost_task_hold_seconds,
    )
    return asdict(report)
