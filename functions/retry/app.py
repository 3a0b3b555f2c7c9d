"""Retry (`dropcut retry`, invoked directly): run a failed or cancelled job again from the same
input version as a new job, through Submit's own checks (dropcut.steps.retry)."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from dropcut import wiring
from dropcut.inputs import JobRequest
from dropcut.observability import logger, metrics, typed_handler
from dropcut.settings import JobEventSettings, Settings, SubmitSettings
from dropcut.steps.retry import RetryDeps, RetryOutcome, retry_job
from dropcut.steps.submit import SubmitDeps

settings = Settings.from_env()
submit_settings = SubmitSettings.from_env()
deps = RetryDeps(
    submit=SubmitDeps(
        s3=wiring.s3_client(),
        store=wiring.job_store(settings),
        executions=wiring.executions(submit_settings.state_machine_arn),
        settings=settings,
        default_prompt=submit_settings.default_prompt,
        events=wiring.job_events(JobEventSettings.from_env()),
    )
)
#: The same counts as Submit's: a retried job is a submitted (or refused) job.
OUTCOME_METRICS = {RetryOutcome.STARTED: "JobsSubmitted", RetryOutcome.REFUSED: "JobsRefused"}


@typed_handler(JobRequest)
def handler(event: JobRequest, context: LambdaContext) -> dict[str, Any]:
    logger.append_keys(job_id=event.job_id)
    result = retry_job(deps, event.job_id, event.requested_by)
    if result.outcome in OUTCOME_METRICS:
        metrics.add_metric(name=OUTCOME_METRICS[result.outcome], unit="Count", value=1)
    return result.model_dump(mode="json")
