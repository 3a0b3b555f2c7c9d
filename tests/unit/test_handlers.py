"""Every handler imports with the environment template.yaml gives it, and every sample event in
events/ parses into the model its handler reads (so `sam local invoke -e events/<step>.json`
and the docs show events the code accepts)."""

from __future__ import annotations

import importlib
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aws_lambda_powertools.utilities.parser.models import APIGatewayProxyEventV2Model

from dropcut.model.callbacks import CALLBACK_ROUTE, CAPABILITY_PARAM
from dropcut.model.inbox import InboxEvent, InboxMessage
from dropcut.observability import EVENT_MODEL_ATTRIBUTE
from dropcut.services.actors import ActorRequest, route
from dropcut.steps.finalize import FinalizeResult
from tests.unit.test_template import FUNCTIONS, GLOBAL_FUNCTION, ROOT, template_resolver

EVENTS = ROOT / "events"
#: Each function's folder under functions/ (the step's name in snake case).
FOLDERS = {
    name: Path(resource["Properties"]["CodeUri"]).name for name, resource in FUNCTIONS.items()
}


#: Resolves the template's intrinsic functions as a deployed stack would: parameters take their
#: defaults, resources are sample ARNs.
_PLACEHOLDER_ARN = "arn:aws:states:us-east-1:123456789012:stateMachine:placeholder"
_RESOLVER = template_resolver(resource=_PLACEHOLDER_ARN)


def _placeholder(value: object) -> str:
    """An environment value as a deployed stack would hold it."""
    return str(_RESOLVER.resolve(value))


def _environment(name: str) -> dict[str, str]:
    variables = dict(GLOBAL_FUNCTION["Environment"]["Variables"])
    variables.update(FUNCTIONS[name]["Properties"].get("Environment", {}).get("Variables", {}))
    numeric = {
        key
        for key in variables
        if key.endswith(("_SECONDS", "_SECOND", "_CONCURRENCY", "_PERCENT", "_BYTES", "_BUDGET"))
    }
    env = {key: _placeholder(value) for key, value in variables.items()}
    env.update(dict.fromkeys(numeric, "60"))
    env.update({"CALLBACKS": "auto", "ALLOW_INSECURE_URLS": "false", "PROVIDER": "evolink"})
    env["AWS_DEFAULT_REGION"] = "us-east-1"
    return env


@pytest.fixture
def handler_module(monkeypatch):
    """`load(logical id)`: the function's app module, imported with the template's environment."""
    from moto import mock_aws

    loaded: list[str] = []

    def load(name: str):
        for key, value in _environment(name).items():
            monkeypatch.setenv(key, value)
        module_name = f"functions.{FOLDERS[name]}.app"
        sys.modules.pop(module_name, None)
        loaded.append(module_name)
        return importlib.import_module(module_name)

    with mock_aws():
        yield load
    for module_name in loaded:
        sys.modules.pop(module_name, None)


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_every_handler_imports_with_the_templates_environment(name, handler_module):
    module = handler_module(name)
    assert FUNCTIONS[name]["Properties"].get("Handler", GLOBAL_FUNCTION.get("Handler")) == (
        "app.handler"
    )
    assert callable(module.handler)


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_every_function_has_a_sample_event_its_handler_parses(name, handler_module):
    sample = json.loads((EVENTS / f"{FOLDERS[name]}.json").read_text())
    module = handler_module(name)
    model = getattr(module.handler, EVENT_MODEL_ATTRIBUTE, None)
    if model is not None:
        model.model_validate(sample)
    elif FOLDERS[name] == "submit":  # an SQS batch: Powertools parses each record
        records = [InboxMessage.model_validate(record) for record in sample["Records"]]
        assert records and all(record.body.Records for record in records)
    elif FOLDERS[name] == "notify":  # an SQS batch of job events (the email queue)
        details = [json.loads(record["body"]) for record in sample["Records"]]
        assert details and all(d["source"] == "dropcut" and d["detail"] for d in details)
    elif FOLDERS[name] in ("cancel", "retry"):  # the jobs API: an AWS_IAM route
        event = APIGatewayProxyEventV2Model.model_validate(sample)
        assert event.routeKey == "POST " + route(FOLDERS[name]).replace("<job_id>", "{job_id}")
        assert ActorRequest.model_validate(sample).requestContext.authorizer.iam.userArn
    else:  # the webhook: an HTTP API (payload 2.0) request on the callback route
        assert FOLDERS[name] == "webhook"
        event = APIGatewayProxyEventV2Model.model_validate(sample)
        assert event.routeKey == "POST " + CALLBACK_ROUTE.replace("<part_id>", "{part_id}")
        assert CAPABILITY_PARAM in (event.queryStringParameters or {})


def test_the_s3_notification_sample_is_what_the_inbox_queue_carries():
    sample = json.loads((EVENTS / "inbox_notification.json").read_text())
    assert InboxEvent.model_validate(sample).Records


def test_every_sample_event_belongs_to_a_function():
    # Besides each function's event: what S3 puts in the inbox queue, and a job event (what
    # the stack publishes; tests/unit/test_job_events.py checks it against its schema).
    expected = {f"{folder}.json" for folder in FOLDERS.values()} | {
        "inbox_notification.json",
        "job_event.json",
    }
    assert {path.name for path in EVENTS.glob("*.json")} == expected


def test_no_two_test_modules_share_a_name():
    # Test folders are not packages: pytest imports each module by its base name, so two
    # files of one name stop the whole suite from being collected in one run.
    names = [path.name for path in (ROOT / "tests").rglob("test_*.py")]
    assert sorted(names) == sorted(set(names)), sorted(n for n in set(names) if names.count(n) > 1)


def test_retry_plans_with_the_stacks_settings_as_submit_does(handler_module, monkeypatch):
    """A retried job is planned as its upload was: MaxPartsPerJob and NormalizeInputs reach
    Retry's Submit dependencies (they once fell back to defaults there)."""
    submit = handler_module("SubmitFunction")
    retry = handler_module("RetryFunction")
    for field in ("settings", "default_prompt", "plan", "resolve"):
        assert getattr(retry.deps.submit, field) == getattr(submit.deps, field), field
    assert retry.deps.submit.plan.max_parts == int(os.environ["MAX_PARTS_PER_JOB"])


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_every_handlers_deps_have_no_field_left_to_a_default(name, handler_module):
    """Every `*Deps` field is required (a handler that forgets one fails mypy), and each
    handler's deps are built whole from the template's environment."""
    import dataclasses

    module = handler_module(name)
    deps = getattr(module, "deps", None)
    for value in [deps, *(getattr(deps, f.name) for f in dataclasses.fields(deps or object()))]:
        if dataclasses.is_dataclass(value) and type(value).__name__.endswith("Deps"):
            for field in dataclasses.fields(value):
                assert field.default is dataclasses.MISSING, (type(value).__name__, field.name)
                assert field.default_factory is dataclasses.MISSING, (
                    type(value).__name__,
                    field.name,
                )


@dataclass
class _Context:
    """A Lambda context with `remaining_ms` left."""

    remaining_ms: int
    function_name: str = "FinalizeFunction"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:FinalizeFunction"
    aws_request_id: str = "req-1"

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


@pytest.mark.parametrize(("remaining_ms", "copy_seconds"), [(900_000, 840.0), (100_000, 40.0)])
def test_finalize_bounds_the_copy_by_the_time_its_invocation_has_left(
    handler_module, monkeypatch, remaining_ms, copy_seconds
):
    from dropcut import observability

    # The module-level Metrics was built before the environment had a namespace; the handler
    # flushes whatever an earlier test left in it.
    monkeypatch.setattr(observability.metrics.provider, "namespace", "dropcut")
    module = handler_module("FinalizeFunction")
    seen: list[Any] = []

    def finalize(deps, part_id, progress):
        seen.append((deps.limits, part_id))
        return FinalizeResult(edited_key="work/x/edited/x.mp4", bytes_stored=1)

    module.finalize = finalize
    sample = json.loads((EVENTS / "finalize.json").read_text())
    module.handler(sample, _Context(remaining_ms))
    [(limits, part_id)] = seen
    assert part_id == sample["part_id"]
    assert limits.max_seconds == copy_seconds == remaining_ms / 1000 - module.RECORD_SECONDS
    assert limits.max_bytes == module.deps.limits.max_bytes
