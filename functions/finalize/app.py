"""Finalize: keep one part's result from the provider for Stitch (dropcut.steps.finalize)."""

from dataclasses import replace
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from dropcut import wiring
from dropcut.aws.result_copy import ResultLimits
from dropcut.model.inputs import TaskStep
from dropcut.model.jobs import job_of
from dropcut.observability import logger, seconds_left, typed_handler
from dropcut.settings import FinalizeSettings, Settings
from dropcut.steps.finalize import FinalizeDeps, finalize

#: What an invocation keeps after the copy (s): recording the edited video and the pace.
RECORD_SECONDS = 60.0

settings = Settings.from_env()
finalize_settings = FinalizeSettings.from_env()
deps = FinalizeDeps(
    s3=wiring.s3_client(),
    client=wiring.http_client(),
    store=wiring.job_store(settings),
    layout=settings.layout,
    provider_for=wiring.provider_factory(settings),
    slots=wiring.slot_pool(settings),
    # max_seconds is set per invocation, from the time the invocation has left (handler).
    limits=ResultLimits(max_bytes=finalize_settings.max_result_bytes),
    copy_window_seconds=finalize_settings.copy_window_seconds,
    allow_insecure_urls=settings.allow_insecure_urls,
    pace=wiring.pace_book(settings),
)


@typed_handler(TaskStep)
def handler(event: TaskStep, context: LambdaContext) -> dict[str, Any]:
    logger.append_keys(
        job_id=job_of(event.part_id), part_id=event.part_id, task_id=event.task.task_id
    )
    # The copy ends inside the function's Timeout, with RECORD_SECONDS kept to record it (a
    # slower copy is tried again: copy_retry_seconds).
    limits = replace(deps.limits, max_seconds=seconds_left(context, keep=RECORD_SECONDS))
    invocation = replace(deps, limits=limits)
    return finalize(invocation, event.part_id, event.task).model_dump(mode="json")
