"""Powertools Logger, Tracer and Metrics shared by every function (service/namespace from env)."""

from __future__ import annotations

import functools
import logging
import warnings
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
)
from pydantic import BaseModel

from dropcut.errors import AwsUnavailable

#: What the X-Ray SDK patches at init: botocore only (every function calls AWS). Powertools' default
#: patches every library the SDK supports that it can import (httpx, sqlite3, ...), importing
#: each one at every cold start; httpx is patched where its client is built (dropcut.wiring).
TRACED_MODULES = ("botocore",)

logger = Logger()
tracer = Tracer(patch_modules=TRACED_MODULES)
metrics = Metrics()

# httpx logs every request URL at INFO; result and input URLs can carry signatures.
for noisy in ("httpx", "httpcore"):
    logging.getLogger(noisy).setLevel(logging.WARNING)
# A step that has nothing to count (a 401, a token stored) is normal, not worth a warning.
warnings.filterwarnings("ignore", message="No application metrics to publish")


def seconds_left(context: LambdaContext, *, keep: float) -> float:
    """The seconds this invocation has left by Lambda's own count (the function's `Timeout` in
    template.yaml, less what has run), less `keep` s kept for the work after the bounded part
    (recording, answering). At least 1 s: a time budget read from the function, not a constant
    that only a comment ties to the template."""
    return max(1.0, context.get_remaining_time_in_millis() / 1000 - keep)


def instrumented(handler: Callable[..., Any]) -> Callable[..., Any]:
    """JSON logs with the Lambda context (never the event: it may carry credentials), a trace,
    and flushed metrics."""
    traced = tracer.capture_lambda_handler(metrics.log_metrics(handler))
    return logger.inject_lambda_context(traced, clear_state=True, log_event=False)


#: The attribute of a typed handler that names the model its event is parsed into.
EVENT_MODEL_ATTRIBUTE = "event_model"


#: Error codes AWS gives for throttling (the SDK's own list of throttled errors, botocore
#: retries/standard.py), besides any 5xx answer: both may pass, so the step is retried.
THROTTLING_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottledException",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "TransactionInProgressException",
        "RequestLimitExceeded",
        "BandwidthLimitExceeded",
        "LimitExceededException",
        "RequestThrottled",
        "SlowDown",
        "PriorRequestNotComplete",
    }
)
_UNREACHABLE = (
    EndpointConnectionError,
    ConnectionClosedError,
    ConnectTimeoutError,
    ReadTimeoutError,
)


def is_transient(error: Exception) -> bool:
    """True for an AWS error that may pass: throttled, a 5xx answer, or no answer at all."""
    if isinstance(error, _UNREACHABLE):
        return True
    if isinstance(error, ClientError):
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
        return error.response.get("Error", {}).get("Code") in THROTTLING_CODES or status >= 500
    return False


def named_aws_errors(handler: Callable[..., Any]) -> Callable[..., Any]:
    """Raise a transient AWS failure as AwsUnavailable, the name the state machine retries;
    any other error goes through unchanged."""

    @functools.wraps(handler)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return handler(*args, **kwargs)
        except (ClientError, *_UNREACHABLE) as exc:
            if not is_transient(exc):
                raise
            raise AwsUnavailable(f"{type(exc).__name__}: {exc}") from exc

    return wrapper


def typed_handler(model: type[BaseModel]) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """`instrumented`, with the event parsed into `model` (a ValidationError names the bad field)
    and transient AWS failures raised as AwsUnavailable. The wrapped handler carries the model
    as `event_model`, so tests can check sample events."""

    def wrap(handler: Callable[..., Any]) -> Callable[..., Any]:
        wrapped = instrumented(event_parser(model=model)(named_aws_errors(handler)))
        setattr(wrapped, EVENT_MODEL_ATTRIBUTE, model)
        return wrapped

    return wrap
