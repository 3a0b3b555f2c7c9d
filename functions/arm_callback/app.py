"""ArmCallback: store the callback wait's task token on the job (dropcut.steps.arm_callback)."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from dropcut import wiring
from dropcut.model.inputs import TokenWait
from dropcut.model.jobs import job_of
from dropcut.observability import logger, typed_handler
from dropcut.settings import Settings
from dropcut.steps.arm_callback import ArmCallbackDeps, arm_callback

settings = Settings.from_env()
deps = ArmCallbackDeps(store=wiring.job_store(settings), sfn=wiring.sfn_client())


@typed_handler(TokenWait)
def handler(event: TokenWait, context: LambdaContext) -> dict[str, Any]:
    logger.append_keys(job_id=job_of(event.part_id), part_id=event.part_id)
    return {"resumed_now": arm_callback(deps, event.part_id, event.task_token)}
