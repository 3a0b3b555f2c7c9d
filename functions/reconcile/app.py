"""Reconcile (scheduled): end jobs that can no longer move on their own, with a report."""

import os
from typing import Any

import boto3
from aws_lambda_powertools.utilities.typing import LambdaContext

from dropcut.config import Settings
from dropcut.events import ScheduledEvent
from dropcut.jobs import JobStore
from dropcut.observability import lambda_handler
from dropcut.reconcile import expire_manifest_waits

settings = Settings.from_env()
s3 = boto3.client("s3")
store = JobStore(boto3.resource("dynamodb").Table(settings.jobs_table))
manifest_wait_seconds = int(os.environ["MANIFEST_WAIT_SECONDS"])


@lambda_handler(ScheduledEvent)
def handler(event: ScheduledEvent, context: LambdaContext) -> dict[str, Any]:
    expired = expire_manifest_waits(s3, store, settings, manifest_wait_seconds)
    return {"manifest_timeouts": expired}
