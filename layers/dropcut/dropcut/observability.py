"""Powertools Logger, Tracer and Metrics shared by every function (service/namespace from env)."""

from __future__ import annotations

import logging
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


def lambda_handler(model: type[BaseModel]) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Every function's wrapping: JSON logs with the Lambda context, a trace, flushed metrics,
    and the event parsed into `model` (a ValidationError names the bad field)."""

    def wrap(handler: Callable[..., Any]) -> Callable[..., Any]:
        parsed: Callable[..., Any] = event_parser(model=model)(handler)
        traced = tracer.capture_lambda_handler(metrics.log_metrics(parsed))
        return logger.inject_lambda_context(traced, clear_state=True)

    return wrap
