"""ArmCallback: store the callback wait's task token on the job; resume at once if the
callback came first (see dropcut.steps.webhook for the hand-off between the two)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from dropcut.aws.job_store import JobStore
from dropcut.observability import logger
from dropcut.steps.webhook import resume_callback_wait

if TYPE_CHECKING:
    from mypy_boto3_stepfunctions import SFNClient


@dataclass(frozen=True)
class ArmCallbackDeps:
    store: JobStore
    sfn: SFNClient


def arm_callback(deps: ArmCallbackDeps, part_id: str, task_token: str) -> bool:
    """Store the waiting execution's token; if the callback already came, resume at once.

    Returns True when the execution was resumed here (the callback came first).
    """
    armed = deps.store.update_returning(
        part_id,
        {"callback_token": task_token},
        condition="attribute_not_exists(callback_outcome)",
    )
    if armed is not None:
        return False
    record = deps.store.require_part(part_id)
    logger.info("callback arrived before the wait: resuming now")
    return resume_callback_wait(deps.sfn, task_token, record.callback_outcome or "")
