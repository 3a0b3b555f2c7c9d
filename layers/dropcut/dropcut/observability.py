"""Powertools Logger, Tracer and Metrics shared by every function (service/namespace from env)."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.utilities.parser import event_parser
from pydantic import BaseModel

logger = Logger()
tracer = Tracer()
metrics = Metrics()

# httpx logs every request URL at INFO; result and input URLs can carry signatures.
for noisy in ("httpx", "httpcore"):
    logging.getLogger(noisy).setLevel(logging.WARNING)
# A step that has nothing to count (a 401, a token stored) is normal, not worth a warning.
warnings.filterwarnings("ignore", message="No application metrics to publish")


def instrumented(handler: Callable[..., Any]) -> Callable[..., Any]:
    """JSON logs with the Lambda context (never the event: it may carry credentials), a trace,
    and flushed metrics."""
    traced = tracer.capture_lambda_handler(metrics.log_metrics(handler))
    return logger.inject_lambda_context(traced, clear_state=True, log_event=False)


#: The attribute of a typed handler that names the model its event is parsed into.
EVENT_MODEL_ATTRIBUTE = "event_model"


def typed_handler(model: type[BaseModel]) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """`instrumented`, with the event parsed into `model` (a ValidationError names the bad field).
    The wrapped handler carries the model as `event_model`, so tests can check sample events."""

    def wrap(handler: Callable[..., Any]) -> Callable[..., Any]:
        wrapped = instrumented(event_parser(model=model)(handler))
        setattr(wrapped, EVENT_MODEL_ATTRIBUTE, model)
        return wrapped

    return wrap
