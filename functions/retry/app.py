"""Retry (`dropcut retry`): `POST /jobs/{job_id}/retry` on the stack's HTTP API, with AWS_IAM
authorization. The caller is who AWS authenticated; dropcut.services.actors decides whether it may act on
the job (403 otherwise, and nothing changes); then dropcut.steps.retry runs the failed or
cancelled job again from the same input version as a new job, through Submit's own checks,
recording that caller.

200 with the retry's result; 403 refused; 404 no such job; 400 not a job id.
"""

from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.utilities.typing import LambdaContext

from dropcut import wiring
from dropcut.observability import instrumented, logger, metrics
from dropcut.services.actors import Answer, admit, route
from dropcut.settings import ActorSettings, Settings, SubmitSettings
from dropcut.steps.retry import RetryDeps, RetryOutcome, retry_job

settings = Settings.from_env()
submit_settings = SubmitSettings.from_env()
actors = wiring.actor_deps(settings, ActorSettings.from_env())
deps = RetryDeps(submit=wiring.submit_deps(settings, submit_settings))
#: The same counts as Submit's: a retried job is a submitted (or refused) job.
OUTCOME_METRICS = {RetryOutcome.STARTED: "JobsSubmitted", RetryOutcome.REFUSED: "JobsRefused"}
app = APIGatewayHttpResolver()


@app.post(route("retry"))
def retry(job_id: str) -> Response[str]:
    admitted = admit(actors, app.current_event.raw_event, job_id, "retry")
    if isinstance(admitted, Answer):
        return admitted.response()
    logger.append_keys(job_id=job_id)
    result = retry_job(deps, job_id, admitted.caller.arn)
    if result.outcome in OUTCOME_METRICS:
        metrics.add_metric(name=OUTCOME_METRICS[result.outcome], unit="Count", value=1)
    return Answer(200, result.model_dump(mode="json")).response()


@instrumented
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
