"""Powertools Logger, Tracer and Metrics shared by every function (service/namespace from env)."""

from __future__ import annotations

import logging

from aws_lambda_powertools import Logger, Metrics, Tracer

logger = Logger()
tracer = Tracer()
metrics = Metrics()

# httpx logs every request URL at INFO; result and input URLs can carry signatures.
for noisy in ("httpx", "httpcore"):
    logging.getLogger(noisy).setLevel(logging.WARNING)
