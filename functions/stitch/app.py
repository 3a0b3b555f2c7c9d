"""Stitch: make the output from the edited parts and close the job (dropcut.steps.stitch)."""

import tempfile
from pathlib import Path
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from dropcut import wiring
from dropcut.model.inputs import JobStep
from dropcut.observability import logger, typed_handler
from dropcut.settings import JobEventSettings, Settings
from dropcut.steps.stitch import StitchDeps, stitch
from dropcut_media.adapter import PyAvMediaTools

settings = Settings.from_env()
deps = StitchDeps(
    s3=wiring.s3_client(),
    store=wiring.job_store(settings),
    layout=settings.layout,
    media=PyAvMediaTools(),
    work_dir=Path(tempfile.gettempdir()),
    events=wiring.job_events(settings, JobEventSettings.from_env()),
)


@typed_handler(JobStep)
def handler(event: JobStep, context: LambdaContext) -> dict[str, Any]:
    logger.append_keys(job_id=event.job_id)
    return stitch(deps, event.job_id).model_dump(mode="json")
