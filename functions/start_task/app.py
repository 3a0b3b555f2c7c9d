"""StartTask: presign the input and create the provider task, at most once per job
(dropcut.steps.start_task)."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from dropcut import wiring
from dropcut.model.inputs import PartStep
from dropcut.model.jobs import job_of
from dropcut.observability import logger, typed_handler
from dropcut.settings import Settings, StartTaskSettings
from dropcut.steps.start_task import StartTaskDeps, start_task

settings = Settings.from_env()
start_settings = StartTaskSettings.from_env()
deps = StartTaskDeps(
    s3=wiring.presigning_s3_client(),
    store=wiring.job_store(settings),
    # The create's answer must come well inside the function's 30 s (a lost answer is final).
    provider_for=wiring.provider_factory(settings, read_timeout=20.0),
    default_provider=settings.provider,
    plan=start_settings.poll,
    presign_seconds=start_settings.presign_seconds,
    callback_url_for=wiring.callback_url_factory(start_settings.callbacks),
    pace=wiring.pace_book(settings),
    breaker=wiring.breaker(settings),
)


@typed_handler(PartStep)
def handler(event: PartStep, context: LambdaContext) -> dict[str, Any]:
    logger.append_keys(job_id=job_of(event.part_id), part_id=event.part_id)
    return start_task(deps, event.part_id).model_dump(mode="json")
