"""RecordFailure: the error report beside the input's place (dropcut.steps.record_failure)."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from dropcut import wiring
from dropcut.model.inputs import FailureStep
from dropcut.observability import logger, typed_handler
from dropcut.settings import JobEventSettings, Settings
from dropcut.steps.record_failure import RecordFailureDeps, record_failure

settings = Settings.from_env()
deps = RecordFailureDeps(
    s3=wiring.s3_client(),
    store=wiring.job_store(settings),
    layout=settings.layout,
    slots=wiring.slot_pool(settings),
    lost_task_hold_seconds=settings.slots.lost_task_hold_seconds,
    events=wiring.job_events(settings, JobEventSettings.from_env()),
)


@typed_handler(FailureStep)
def handler(event: FailureStep, context: LambdaContext) -> dict[str, Any]:
    logger.append_keys(job_id=event.job_id)
    return {"error_report_key": record_failure(deps, event.job_id, event.error)}
