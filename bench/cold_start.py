"""Benchmark: each function's init (the import of its handler module, with the environment
template.yaml gives it, in a fresh Python process) beside a naive handler's init (boto3, httpx,
Powertools Logger, Metrics and Parser, and two boto3 clients).

Each figure is the median of RUNS fresh processes; the interpreter's own start-up is not
counted (the clock starts at the first import). No function needs PyAV (only the simulator
does), so the goal is <= 0.5x naive for all of them.

    python -m bench.cold_start [--json]
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from typing import Any

RUNS = 5

#: What a handler written without care for its init would import and build at module scope.
NAIVE = """
import boto3
import httpx
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.utilities.parser import BaseModel, event_parser
logger = Logger()
metrics = Metrics()
s3 = boto3.client("s3")
dynamodb = boto3.client("dynamodb")
"""

CHILD = """
import sys, time
started = time.perf_counter()
{body}
print(time.perf_counter() - started)
"""


def _seconds(body: str, env: dict[str, str]) -> float:
    runs = []
    for _ in range(RUNS):
        out = subprocess.run(
            [sys.executable, "-c", CHILD.format(body=body)],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        runs.append(float(out.stdout.strip().splitlines()[-1]))
    return statistics.median(runs)


def measure() -> dict[str, Any]:
    from tests.unit.test_handlers import FOLDERS, _environment

    base = {
        key: value
        for key, value in os.environ.items()
        if key in ("PATH", "PYTHONPATH", "HOME", "LANG")
    }
    base.setdefault("PYTHONPATH", os.getcwd())
    naive_env = {**base, "AWS_DEFAULT_REGION": "us-east-1"}
    naive = _seconds(NAIVE, naive_env)
    functions = {}
    for name in sorted(FOLDERS):
        # The template's LogLevel parameter (a Ref the test helper renders as a placeholder).
        env = {**base, **_environment(name), "POWERTOOLS_LOG_LEVEL": "INFO"}
        seconds = _seconds(f"import functions.{FOLDERS[name]}.app", env)
        functions[name] = {"seconds": seconds, "ratio": seconds / naive}
    return {"naive_seconds": naive, "functions": functions}


def main(argv: list[str]) -> int:
    figures = measure()
    if "--json" in argv:
        print(json.dumps(figures))
        return 0
    naive = figures["naive_seconds"]
    print(f"init (import of the handler module), median of {RUNS} fresh processes")
    print(f"  {'naive handler':24s} {naive * 1000:6.0f} ms")
    for name, figure in figures["functions"].items():
        print(f"  {name:24s} {figure['seconds'] * 1000:6.0f} ms  {figure['ratio']:.2f}x naive")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
