"""AcquireSlot: put the job in line for a provider slot (dropcut.steps.acquire_slot)."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from dropcut import wiring
from dropcut.model.inputs import TokenWait
from dropcut.model.jobs import job_of
from dropcut.observability import logger, typed_handler
from dropcut.settings import Settings
from dropcut.steps.acquire_slot import AcquireSlotDeps, acquire_slot

settings = Settings.from_env()
deps = AcquireSlotDeps(
    store=wiring.job_store(settings),
    slots=wiring.slot_pool(settings),
    max_wait_seconds=settings.slots.max_wait_seconds,
)


@typed_handler(TokenWait)
def handler(event: TokenWait, context: LambdaContext) -> dict[str, Any]:
    logger.append_keys(job_id=job_of(event.part_id), part_id=event.part_id)
    return {"holds_slot_now": acquire_slot(deps, event.part_id, event.task_token)}
