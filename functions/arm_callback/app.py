"""ArmCallback: store the callback wait's task token on the job (resume at once if the callback came first)."""

from typing import Any

import boto3
from aws_lambda_powertools.utilities.typing import LambdaContext

from dropcut.callbacks import arm_callback
from dropcut.config import Settings
from dropcut.events import TokenWait
from dropcut.jobs import JobStore
from dropcut.observability import lambda_handler, logger

settings = Settings.from_env()
store = JobStore(boto3.resource("dynamodb").Table(settings.jobs_table))
sfn = boto3.client("stepfunctions")


@lambda_handler(TokenWait)
def handler(event: TokenWait, context: LambdaContext) -> dict[str, Any]:
    logger.append_keys(job_id=event.job_id)
    resumed = arm_callback(store, sfn, event.job_id, event.task_token)
    return {"resumed_now": resumed}
