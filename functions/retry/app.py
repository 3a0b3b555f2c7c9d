"""Retry (`dropcut retry`, invoked directly): run a failed or cancelled job again from the same
input version as a new job, through Submit's own checks (dropcut.steps.retry)."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from dropcut import wiring
from dropcut.inputs import JobRequest
from dropcut.observability import logger, metrics, typed_handler
from dropcut.settings import Settings, SubmitSettings
from dropcut.steps.retry import RetryDeps, RetryOutcome, retry_job

settings = Settings.from_env()
submit_settings = SubmitSettings.from_env()
deps = RetryDeps(submit=wiring.submit_deps(settings, submit_settings))
#: The same counts as Submit's: a retried job is a submitted (or refused) job.
OUTCOME_METRICS = {RetryOutcome.STARTED: "JobsSubmitted", RetryOutcome.REFUSED: "JobsRefused"}


@typed_handler(JobRequest)
def handler(event: JobRequest, context: LambdaContext) -> dict[str, Any]:
    logger.append_keys(job_id=event.job_id)
    result = retry_job(deps, event.job_id, event.requested_by)
    if result.outcome in OUTCOME_METRICS:
        metrics.add_metric(name=OUTCOME_METRICS[result.outcome], unit="Count", value=1)
    return result.model_dump(mode="json")
