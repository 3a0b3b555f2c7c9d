"""What a function's init imports: only what it builds. A handler that builds no HTTP client
(no provider_factory, no http_client) does not import httpx; no handler imports sqlite3 (the
X-Ray SDK patches botocore at init, httpx where its client is built: dropcut.observability,
dropcut.wiring); only Submit builds the inbox models; PyAV and Pillow wait for the media call
that uses them. Each import runs in a fresh interpreter with the Lambda runtime's variables, so
Powertools Tracer is on as it is on AWS (speed itself is measured by bench.cold_start)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest

from tests.unit.test_handlers import FOLDERS, _environment
from tests.unit.test_template import FUNCTIONS, ROOT

#: Prints the modules the handler's import left loaded, and whether Tracer was on.
CHILD = """
import importlib, json, sys
importlib.import_module(sys.argv[1])
from dropcut.observability import tracer
print(json.dumps({"modules": sorted(sys.modules), "tracing": not tracer.disabled}))
"""


def _init_modules(name: str) -> dict[str, object]:
    env = {key: os.environ[key] for key in ("PATH", "HOME", "LANG") if key in os.environ}
    env.update(_environment(name))
    env.update(
        {
            "PYTHONPATH": str(ROOT),
            "POWERTOOLS_LOG_LEVEL": "INFO",
            "AWS_LAMBDA_FUNCTION_NAME": name,
            "LAMBDA_TASK_ROOT": str(ROOT / "functions" / FOLDERS[name]),
            "_X_AMZN_TRACE_ID": "Root=1-00000000-000000000000000000000000;Sampled=0",
            "AWS_ACCESS_KEY_ID": "test",
            "AWS_SECRET_ACCESS_KEY": "test",  # no call is made at init
        }
    )
    module = f"functions.{FOLDERS[name]}.app"
    done = subprocess.run(
        [sys.executable, "-c", CHILD, module],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        timeout=120,
    )
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _builds_http_client(name: str) -> bool:
    source = (ROOT / "functions" / FOLDERS[name] / "app.py").read_text()
    return re.search(r"wiring\.(provider_factory|http_client)\(", source) is not None


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_a_functions_init_imports_only_what_it_builds(name):
    loaded = _init_modules(name)
    modules = set(loaded["modules"])  # type: ignore[call-overload]
    assert loaded["tracing"], "Tracer is off: the check would not see what it patches"
    assert ("httpx" in modules) == _builds_http_client(name)
    assert "sqlite3" not in modules
    assert ("dropcut.model.inbox" in modules) == (name == "SubmitFunction")
    assert not modules & {"av", "PIL"}
