"""Cancel (`dropcut cancel`, invoked directly): stop a job and end it with a `cancelled` report
(dropcut.steps.cancel)."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from dropcut import wiring
from dropcut.inputs import JobRequest
from dropcut.observability import logger, typed_handler
from dropcut.settings import CancelSettings, JobEventSettings, Settings
from dropcut.steps.cancel import CancelDeps, cancel_job

settings = Settings.from_env()
deps = CancelDeps(
    s3=wiring.s3_client(),
    store=wiring.job_store(settings),
    layout=settings.layout,
    executions=wiring.executions(CancelSettings.from_env().state_machine_arn),
    slots=wiring.slot_pool(settings),
    lost_task_hold_seconds=settings.slots.lost_task_hold_seconds,
    events=wiring.job_events(JobEventSettings.from_env()),
)


@typed_handler(JobRequest)
def handler(event: JobRequest, context: LambdaContext) -> dict[str, Any]:
    logger.append_keys(job_id=event.job_id)
    return cancel_job(deps, event.job_id, event.requested_by).model_dump(mode="json")
