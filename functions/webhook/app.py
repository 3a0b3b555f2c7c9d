"""Webhook: the provider's callback, behind API Gateway (HTTP API, payload format 2.0)
(dropcut.steps.webhook).

401 bad capability, 404 unknown job, 400 malformed body, 409/503 "retry later" (the provider
retries non-2xx answers), 200 accepted or already handled.
"""

import json
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.utilities.typing import LambdaContext

from dropcut import wiring
from dropcut.model.callbacks import CALLBACK_ROUTE, CAPABILITY_PARAM
from dropcut.model.jobs import job_of
from dropcut.observability import instrumented, logger, metrics
from dropcut.settings import Settings, WebhookSettings
from dropcut.steps.webhook import CallbackAnswer, WebhookDeps, accept_callback

settings = Settings.from_env()
webhook_settings = WebhookSettings.from_env()
deps = WebhookDeps(
    store=wiring.job_store(settings),
    sfn=wiring.sfn_client(),
    # The provider gives up on a callback after 10 s: the confirming query must fit inside that.
    provider_for=wiring.provider_factory(
        settings, connect_timeout=2.0, read_timeout=4.0, read_attempts=1
    ),
)
app = APIGatewayHttpResolver()


def _answer(answer: CallbackAnswer) -> Response[str]:
    return Response(
        status_code=answer.status_code,
        content_type="application/json",
        body=json.dumps({"message": answer.message}),
    )


@app.post(CALLBACK_ROUTE)
def provider_callback(part_id: str) -> Response[str]:
    presented = app.current_event.get_query_string_value(CAPABILITY_PARAM)
    signer = wiring.callback_signer(webhook_settings.callback_secret_arn)
    if not signer.verify(part_id, presented):
        # Decided before any lookup: an unauthenticated caller learns nothing about job ids.
        # Counted (a burst raises CallbacksRejectedAlarm); the capability is never logged.
        metrics.add_metric(name="CallbacksRejected", unit="Count", value=1)
        return _answer(CallbackAnswer(401, "unauthorized"))
    logger.append_keys(job_id=job_of(part_id), part_id=part_id)
    answer = accept_callback(deps, part_id, app.current_event.decoded_body or "")
    logger.info(
        "callback answered", extra={"status_code": answer.status_code, "answer": answer.message}
    )
    return _answer(answer)


@instrumented
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
