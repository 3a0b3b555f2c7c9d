"""CheckStatus: one provider status query (dropcut.steps.check_status)."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from dropcut import wiring
from dropcut.model.inputs import TaskStep
from dropcut.model.jobs import job_of
from dropcut.observability import logger, typed_handler
from dropcut.settings import CheckStatusSettings, Settings
from dropcut.steps.check_status import CheckStatusDeps, check_status

settings = Settings.from_env()
check_status_settings = CheckStatusSettings.from_env()
deps = CheckStatusDeps(
    store=wiring.job_store(settings),
    # Two reads of at most 8 s each fit well inside the function's 30 s.
    provider_for=wiring.provider_factory(settings, read_timeout=8.0, read_attempts=2),
    plan=check_status_settings.poll,
    ledger=wiring.budget_ledger(settings),
    task_retries=check_status_settings.task_retries,
    pace=wiring.pace_book(settings),
    breaker=wiring.breaker(settings),
)


@typed_handler(TaskStep)
def handler(event: TaskStep, context: LambdaContext) -> dict[str, Any]:
    logger.append_keys(
        job_id=job_of(event.part_id), part_id=event.part_id, task_id=event.task.task_id
    )
    return check_status(deps, event.part_id, event.task).model_dump(mode="json")
