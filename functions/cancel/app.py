"""Cancel (`dropcut cancel`): `POST /jobs/{job_id}/cancel` on the stack's HTTP API, with AWS_IAM
authorization. The caller is who AWS authenticated; dropcut.services.actors decides whether it may act on
the job (403 otherwise, and nothing changes); then dropcut.steps.cancel stops the job and ends it
with a `cancelled` report, recording that caller.

200 with the cancel's result; 403 refused; 404 no such job; 400 not a job id.
"""

from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.utilities.typing import LambdaContext

from dropcut import wiring
from dropcut.observability import instrumented, logger
from dropcut.services.actors import Answer, admit, route
from dropcut.settings import ActorSettings, JobEventSettings, Settings
from dropcut.steps.cancel import CancelDeps, cancel_job

settings = Settings.from_env()
actors = wiring.actor_deps(settings, ActorSettings.from_env())
deps = CancelDeps(
    s3=wiring.s3_client(),
    store=wiring.job_store(settings),
    layout=settings.layout,
    executions=wiring.executions(settings),
    slots=wiring.slot_pool(settings),
    lost_task_hold_seconds=settings.slots.lost_task_hold_seconds,
    events=wiring.job_events(settings, JobEventSettings.from_env()),
)
app = APIGatewayHttpResolver()


@app.post(route("cancel"))
def cancel(job_id: str) -> Response[str]:
    admitted = admit(actors, app.current_event.raw_event, job_id, "cancel")
    if isinstance(admitted, Answer):
        return admitted.response()
    logger.append_keys(job_id=job_id)
    result = cancel_job(deps, job_id, admitted.caller.arn)
    return Answer(200, result.model_dump(mode="json")).response()


@instrumented
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
