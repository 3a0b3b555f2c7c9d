"""Webhook: the provider's callback, behind API Gateway (HTTP API, payload format 2.0).

401 bad capability, 404 unknown job, 400 malformed body, 409/503 "retry later" (the provider
retries non-2xx answers), 200 accepted or already handled.
"""

import json
import os
from typing import Any

import boto3
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.utilities.typing import LambdaContext

from dropcut.callbacks import CALLBACK_ROUTE, CAPABILITY_PARAM, CallbackAnswer, accept_callback
from dropcut.config import Settings, callback_signer, provider_factory
from dropcut.jobs import JobStore
from dropcut.observability import instrumented, logger

settings = Settings.from_env()
signing_secret_arn = os.environ["CALLBACK_SECRET_ARN"]
store = JobStore(boto3.resource("dynamodb").Table(settings.jobs_table))
sfn = boto3.client("stepfunctions")
# The provider gives up on a callback after 10 s: the confirming query must fit well inside that.
provider_for = provider_factory(settings, connect_timeout=2.0, read_timeout=4.0, read_attempts=1)
app = APIGatewayHttpResolver()


def _answer(answer: CallbackAnswer) -> Response[str]:
    return Response(
        status_code=answer.status_code,
        content_type="application/json",
        body=json.dumps({"message": answer.message}),
    )


@app.post(CALLBACK_ROUTE)
def provider_callback(job_id: str) -> Response[str]:
    presented = app.current_event.get_query_string_value(CAPABILITY_PARAM)
    if not callback_signer(signing_secret_arn).verify(job_id, presented):
        # Decided before any lookup: an unauthenticated caller learns nothing about job ids.
        return _answer(CallbackAnswer(401, "unauthorized"))
    logger.append_keys(job_id=job_id)
    try:
        body = json.loads(app.current_event.decoded_body or "")
    except ValueError:
        return _answer(CallbackAnswer(400, "the body is not JSON"))
    answer = accept_callback(store, sfn, provider_for, job_id, body)
    logger.info(
        "callback answered", extra={"status_code": answer.status_code, "answer": answer.message}
    )
    return _answer(answer)


@instrumented
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
