"""The dropcut local stack: template.yaml deployed into an in-process moto server, no Docker.

    with DevStack("template.yaml", {"ProviderApiKeySecretArn": arn}) as stack:
        s3 = stack.client("s3")
        s3.put_object(Bucket=stack.outputs["MediaBucketName"], Key="inbox/a.mp4", Body=b"...")
        stack.drain()                      # S3 events are asynchronous, as in AWS
        [execution] = stack.executions()
        stack.wait_for_execution(execution["executionArn"], timeout=60)

What it does (see DESIGN.md "Local stack"):
- starts moto 5.2.5 (`ThreadedMotoServer`) in this process on 127.0.0.1 and switches on real
  Step Functions execution;
- reads the template (short-form tags, SAM Globals, Parameters, Conditions, intrinsic
  functions) and creates its buckets, tables, queues, secrets, functions and state machines in
  moto; every name, setting and variable comes from the template;
- runs every Lambda invoke (API, Step Functions, S3 notifications) as the real handler from the
  source tree (or `sam build` output) in warm worker processes (`devstack.lambda_runtime`);
- delivers S3 -> Lambda notifications asynchronously with S3's event shape
  (`devstack.s3_notifications`);
- polls the queues of SQS events as Lambda's event source mappings do (batches, batching
  window, partial batch responses, maximum concurrency; `devstack.sqs_events`).

Foreground mode: `python -m devstack.stack [--port 4566] [--param Key=Value ...]`.
Several DevStacks in one process share moto's process-wide backends: give them different
stack names. The first one started resets moto.
"""

from __future__ import annotations

import argparse
import atexit
import io
import json
import logging
import os
import signal
import sys
import threading
import time
import urllib.request
import uuid
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar, Self

import boto3
from botocore.config import Config

from devstack import lambda_runtime, moto_fixes, s3_notifications, sqs_events
from devstack.http_api import LocalHttpApi
from devstack.template import Resolver, TemplateError, apply_globals, load_template

__all__ = ["DevStack", "DevStackError", "InvokeError", "describe", "main"]

LOG = logging.getLogger("devstack.stack")

ACCOUNT_ID = "123456789012"  # moto's default account
REGION = "us-east-1"
DUMMY_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
}

# Types that don't matter locally; created as nothing, listed in a debug line.
_IGNORED_TYPES = {
    "AWS::Serverless::LayerVersion",  # used through the functions' Layers (sys.path)
    "AWS::Lambda::LayerVersion",
    "AWS::S3::BucketPolicy",
    "AWS::Logs::LogGroup",
    "AWS::CloudWatch::Alarm",
    "AWS::CloudWatch::Dashboard",
    "AWS::IAM::Policy",
    "AWS::IAM::ManagedPolicy",
    "AWS::Lambda::Permission",
    "AWS::Serverless::HttpApi",  # its routes are served by LocalHttpApi
}


# Their names and ARNs are known before creation; they are created after what they refer to
# (functions and state machines refer to each other).
_CREATE_LATE_TYPES = {"AWS::Serverless::Function", "AWS::Serverless::StateMachine"}


class DevStackError(Exception):
    pass


class InvokeError(Exception):
    """A function invoked through `DevStack.invoke` returned a FunctionError."""

    def __init__(self, function_error: str, payload: Any, logs: str) -> None:
        self.function_error = function_error
        self.payload = payload
        self.logs = logs
        kind = payload.get("errorType") if isinstance(payload, dict) else None
        message = payload.get("errorMessage") if isinstance(payload, dict) else payload
        super().__init__(f"{kind}: {message}")

    @property
    def error_type(self) -> str | None:
        return self.payload.get("errorType") if isinstance(self.payload, dict) else None


def _dummy_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("README.txt", "devstack runs the handler from the source tree\n")
    return buffer.getvalue()


def _env_string(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        raise TemplateError(f"environment variable value is not a scalar: {value!r}")
    return str(value)


class DevStack:
    # moto's backends (and MOTO_PORT) are process-wide: stacks in one process share one moto
    # state; give them different stack names.
    _active: ClassVar[list[DevStack]] = []
    _active_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(
        self,
        template_path: str | Path = "template.yaml",
        parameter_overrides: dict[str, str] | None = None,
        stack_name: str = "dropcut-local",
        code_root: Path | str | None = None,
        extra_env: dict[str, str] | None = None,
        port: int = 0,
        *,
        s3_events: str = "async",
        async_retry_delays: tuple[float, ...] = (1.0, 2.0),
        max_workers_per_function: int = 4,
        python: str | None = None,
        api_url_parameters: tuple[str, ...] = ("CallbackBaseUrl",),
    ) -> None:
        if s3_events not in ("async", "sync"):
            raise ValueError("s3_events must be 'async' or 'sync'")
        self.template_path = Path(template_path).resolve()
        self.template_dir = self.template_path.parent
        self.parameter_overrides = dict(parameter_overrides or {})
        self.stack_name = stack_name
        self.code_root = Path(code_root).resolve() if code_root is not None else None
        self.extra_env = dict(extra_env or {})
        self.port = port
        self.region = REGION
        self.account_id = ACCOUNT_ID
        self.s3_events = s3_events
        self.async_retry_delays = async_retry_delays
        self.max_workers_per_function = max_workers_per_function
        self.python = python or sys.executable
        #: Template parameters that get the local HTTP API's URL unless overridden (on AWS they
        #: default to the execute-api URL, which does not exist here).
        self.api_url_parameters = api_url_parameters
        self.http_api: LocalHttpApi | None = None
        #: Scheduled functions and their expressions (run them with `fire_schedule`).
        self.schedules: dict[str, str] = {}
        #: SQS event source pollers, by "FunctionLogicalId.EventId" (started after deploy).
        self.sqs_pollers: dict[str, sqs_events.SqsPoller] = {}

        self.endpoint_url = ""
        self.outputs: dict[str, Any] = {}
        self.physical_ids: dict[str, Any] = {}
        self.template: dict[str, Any] = {}
        self.function_specs: dict[str, lambda_runtime.FunctionSpec] = {}
        self.pools: dict[str, lambda_runtime.FunctionPool] = {}
        self.state_machine_definitions: dict[str, str] = {}

        self._server: Any = None
        self._resolver: Resolver | None = None
        self._attributes: dict[str, dict[str, Any]] = {}
        self._created: set[str] = set()
        self._creating: set[str] = set()
        self._function_env: dict[str, dict[str, str]] = {}
        self._bucket_notifications: dict[str, dict[str, list[dict[str, Any]]]] = {}
        self._async: s3_notifications.AsyncInvoker | None = None
        self._clients: dict[str, Any] = {}
        self._lambda_role_arn = ""
        self._states_role_arn = ""
        self._first_in_process = True
        self._started = False

    # ---------------------------------------------------------------------------------------
    # lifecycle
    # ---------------------------------------------------------------------------------------

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> Self:
        with DevStack._active_lock:
            if self in DevStack._active:
                raise DevStackError("this DevStack is already running")
            self._first_in_process = not DevStack._active
            DevStack._active.append(self)
        try:
            self._start_server()
            self.http_api = LocalHttpApi(self._invoke_for_api, self.account_id)
            self.http_api.start()
            self._deploy()
            for poller in self.sqs_pollers.values():
                if poller.source.enabled:
                    poller.start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start_server(self) -> None:
        from moto.server import ThreadedMotoServer

        lambda_runtime.install_hook()
        s3_notifications.install()
        sqs_events.install()
        moto_fixes.install()
        werkzeug_log = logging.getLogger("werkzeug")
        if werkzeug_log.level == logging.NOTSET:
            werkzeug_log.setLevel(logging.WARNING)  # one line per request otherwise
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.port = port
        self.endpoint_url = f"http://{host}:{port}"
        self._started = True
        atexit.register(self.stop)
        # Step Functions' Lambda integration calls http://localhost:$MOTO_PORT (moto 5.2.5,
        # stepfunctions/parser/asl/utils/boto_client.py); any of our servers will do, as they
        # all serve the same backends.
        if self._first_in_process:
            os.environ["MOTO_PORT"] = str(port)
            self._moto_api("reset", {})
        self._moto_api("config", {"stepfunctions": {"execute_state_machine": True}})
        from moto.core.config import default_user_config

        if not default_user_config.get("stepfunctions", {}).get("execute_state_machine"):
            raise DevStackError("moto did not switch on Step Functions execution")
        if self.s3_events == "async":
            self._async = s3_notifications.AsyncInvoker(
                self._invoke_direct, retry_delays=self.async_retry_delays
            )
        s3_notifications.set_async_invoker(self._async)
        LOG.info("moto %s listening on %s", lambda_runtime.MOTO_VERSION, self.endpoint_url)

    def _moto_api(self, path: str, body: dict[str, Any]) -> Any:
        request = urllib.request.Request(
            f"{self.endpoint_url}/moto-api/{path}",
            data=json.dumps(body).encode("utf-8"),
            method="POST",
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.read()

    def stop(self) -> None:
        if self.http_api is not None:
            self.http_api.stop()
            self.http_api = None
        # Pollers before the pools: no new batches; a batch in flight ends when its pool closes.
        for poller in self.sqs_pollers.values():
            poller.signal_stop()
        stop_deadline = time.monotonic() + 2.0
        for poller in self.sqs_pollers.values():
            poller.stop(timeout=max(0.0, stop_deadline - time.monotonic()))
        if self._async is not None:
            s3_notifications.set_async_invoker(None)
            self._async.close()
            self._async = None
        for pool in self.pools.values():
            lambda_runtime.unregister(pool)
            pool.close()
        if self._server is not None and self._started:
            try:
                self._server.stop()
            except Exception:  # pragma: no cover
                LOG.exception("moto server did not stop cleanly")
            self._started = False
        with DevStack._active_lock:
            if self in DevStack._active:
                DevStack._active.remove(self)
            others = [s for s in DevStack._active if s._started]
            if others:
                os.environ["MOTO_PORT"] = str(others[0].port)
                s3_notifications.set_async_invoker(others[0]._async)
            elif not DevStack._active:
                os.environ.pop("MOTO_PORT", None)
        atexit.unregister(self.stop)

    # ---------------------------------------------------------------------------------------
    # clients and helpers for tests and tools
    # ---------------------------------------------------------------------------------------

    def client(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = boto3.client(
                service,
                endpoint_url=self.endpoint_url,
                region_name=self.region,
                aws_access_key_id="testing",
                aws_secret_access_key="testing",
                aws_session_token="testing",
                config=Config(retries={"max_attempts": 2, "mode": "standard"}, read_timeout=960),
            )
        return self._clients[service]

    def function_env(self, logical_id: str) -> dict[str, str]:
        """The function's environment variables as the template resolves them (Globals merged)."""
        return dict(self._function_env[logical_id])

    def worker_env(self, logical_id: str) -> dict[str, str]:
        """The whole environment a worker process of that function gets."""
        return dict(self.function_specs[logical_id].environment)

    def invoke_raw(self, logical_id: str, event: Any = None) -> tuple[Any, str | None, str]:
        """Invoke through moto's Lambda API: (payload, FunctionError or None, logs)."""
        import base64

        response = self.client("lambda").invoke(
            FunctionName=self.physical_ids[logical_id],
            Payload=json.dumps({} if event is None else event).encode("utf-8"),
            LogType="Tail",
        )
        raw = response["Payload"].read().decode("utf-8")
        try:
            payload = json.loads(raw)
        except json.JSONDecodeError:
            payload = raw
        logs = base64.b64decode(response.get("LogResult", "")).decode("utf-8", "replace")
        return payload, response.get("FunctionError"), logs

    def invoke(self, logical_id: str, event: Any = None) -> Any:
        """Invoke a template function with `event`; its return value, or InvokeError."""
        payload, function_error, logs = self.invoke_raw(logical_id, event)
        if function_error:
            raise InvokeError(function_error, payload, logs)
        return payload

    def _invoke_for_api(self, logical_id: str, event: dict[str, Any]) -> tuple[Any, str | None]:
        payload, function_error, _logs = self.invoke_raw(logical_id, event)
        return payload, function_error

    def _invoke_direct(self, function_arn: str, event: dict[str, Any]) -> tuple[str, bool]:
        from moto.awslambda.utils import get_backend

        function = get_backend(self.account_id, self.region).get_function(function_arn)
        headers: dict[str, str] = {}
        payload = function.invoke(json.dumps(event), {}, headers)
        text = payload.decode("utf-8") if isinstance(payload, bytes) else str(payload)
        return text, "x-amz-function-error" in headers

    def drain(self, timeout: float = 30.0) -> None:
        """Wait until queued S3 event invocations (and their retries) are done and every polled
        SQS queue is empty (no visible, in-flight or delayed message) with no batch running.
        Messages waiting out a visibility timeout count: drain waits for their redelivery (or
        their move to the dead-letter queue). TimeoutError says what is still busy."""
        deadline = time.monotonic() + timeout
        quiet = 0
        while True:
            busy = self._drain_busy()
            if busy:
                quiet = 0
            else:
                quiet += 1
                if quiet >= 2:  # twice in a row: a handler may have just queued more work
                    return
            if busy and time.monotonic() > deadline:
                raise TimeoutError(f"not drained after {timeout:g} s: " + "; ".join(busy))
            time.sleep(0.05 if busy else 0.02)

    def _drain_busy(self) -> list[str]:
        busy = []
        if self._async is not None and self._async.pending():
            busy.append(f"{self._async.pending()} S3 event invocation(s) still running")
        for poller in self.sqs_pollers.values():
            if poller.polling:
                reason = poller.busy()
                if reason:
                    busy.append(reason)
        return busy

    @property
    def async_invocations(self) -> list[s3_notifications.AsyncInvocation]:
        return list(self._async.invocations) if self._async is not None else []

    def pool(self, logical_id: str) -> lambda_runtime.FunctionPool:
        return self.pools[logical_id]

    def state_machine_arns(self) -> dict[str, str]:
        return {
            lid: self.physical_ids[lid]
            for lid, res in self.template["Resources"].items()
            if res["Type"] in ("AWS::Serverless::StateMachine", "AWS::StepFunctions::StateMachine")
            and lid in self.physical_ids
        }

    def executions(self, state_machine: str | None = None) -> list[dict[str, Any]]:
        """Executions of one state machine (logical id or ARN), or of all of the template's."""
        sfn = self.client("stepfunctions")
        arns = self.state_machine_arns()
        if state_machine is not None:
            targets = [arns.get(state_machine, state_machine)]
        else:
            targets = list(arns.values())
        result: list[dict[str, Any]] = []
        for arn in targets:
            for page in sfn.get_paginator("list_executions").paginate(stateMachineArn=arn):
                result.extend(page["executions"])
        return result

    def wait_for_execution(
        self, execution_arn: str, timeout: float = 60.0, poll: float = 0.1
    ) -> dict[str, Any]:
        """describe_execution once the execution left RUNNING; TimeoutError otherwise."""
        sfn = self.client("stepfunctions")
        deadline = time.monotonic() + timeout
        while True:
            description = sfn.describe_execution(executionArn=execution_arn)
            if description["status"] != "RUNNING":
                return description
            if time.monotonic() > deadline:
                raise TimeoutError(f"{execution_arn} still RUNNING after {timeout} s")
            time.sleep(poll)

    def history(self, execution_arn: str) -> list[dict[str, Any]]:
        sfn = self.client("stepfunctions")
        events: list[dict[str, Any]] = []
        for page in sfn.get_paginator("get_execution_history").paginate(executionArn=execution_arn):
            events.extend(page["events"])
        return events

    # ---------------------------------------------------------------------------------------
    # template -> moto
    # ---------------------------------------------------------------------------------------

    @property
    def resolver(self) -> Resolver:
        assert self._resolver is not None
        return self._resolver

    def _deploy(self) -> None:
        self.template = apply_globals(load_template(self.template_path))
        declared = self.template.get("Parameters") or {}
        if self.http_api is not None:
            for name in self.api_url_parameters:
                if name in declared:
                    self.parameter_overrides.setdefault(name, self.http_api.url)
        self._resolver = Resolver(
            self.template,
            parameter_overrides=self.parameter_overrides,
            stack_name=self.stack_name,
            region=self.region,
            account_id=self.account_id,
            ref_resource=self._ref_resource,
            getatt_resource=self._getatt_resource,
        )
        iam = self.client("iam")
        trust = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": ["lambda.amazonaws.com", "states.amazonaws.com"]},
                    "Action": "sts:AssumeRole",
                }
            ],
        }
        role = iam.create_role(
            RoleName=f"{self.stack_name}-local-role",
            AssumeRolePolicyDocument=json.dumps(trust),
        )
        self._lambda_role_arn = self._states_role_arn = role["Role"]["Arn"]

        ignored: list[str] = []
        for logical_id, resource in self.template["Resources"].items():
            if not self.resolver.resource_enabled(resource):
                ignored.append(f"{logical_id} (condition false)")
                continue
            if resource["Type"] not in self._creators():
                ignored.append(f"{logical_id} ({resource['Type']})")
                continue
            self._ensure_created(logical_id)
        if ignored:
            LOG.debug("not created locally: %s", ", ".join(ignored))

        self._apply_event_sources()
        self.physical_ids = {
            lid: self._lookup(lid, "Ref")
            for lid, res in self.template["Resources"].items()
            if res["Type"] not in _IGNORED_TYPES and self.resolver.resource_enabled(res)
        }
        self.outputs = {}
        for name, output in (self.template.get("Outputs") or {}).items():
            if "Condition" in output and not self.resolver.condition(output["Condition"]):
                continue
            self.outputs[name] = self.resolver.resolve(output["Value"])

    def _creators(self) -> dict[str, Callable[[str, dict[str, Any]], None]]:
        return {
            "AWS::S3::Bucket": self._create_bucket,
            "AWS::DynamoDB::Table": self._create_table,
            "AWS::Serverless::SimpleTable": self._create_simple_table,
            "AWS::SQS::Queue": self._create_queue,
            "AWS::SecretsManager::Secret": self._create_secret,
            "AWS::Serverless::Function": self._create_function,
            "AWS::Serverless::StateMachine": self._create_state_machine,
        }

    def _ensure_created(self, logical_id: str) -> None:
        if logical_id in self._created:
            return
        if logical_id in self._creating:
            raise TemplateError(f"circular reference through {logical_id}")
        resource = self.template["Resources"][logical_id]
        creator = self._creators().get(resource["Type"])
        if creator is None:
            return
        self._names_and_attributes(logical_id)
        self._creating.add(logical_id)
        try:
            creator(logical_id, resource.get("Properties") or {})
        finally:
            self._creating.discard(logical_id)
        self._created.add(logical_id)

    # -- names, Ref and GetAtt --------------------------------------------------------------

    def _prop(self, logical_id: str, name: str, default: Any = None) -> Any:
        props = self.template["Resources"][logical_id].get("Properties") or {}
        return self.resolver.resolve(props[name]) if name in props else default

    def _name(self, logical_id: str, prop: str, max_len: int, *, lower: bool = False) -> str:
        explicit = self._prop(logical_id, prop)
        if explicit:
            return str(explicit)
        name = f"{self.stack_name}-{logical_id}"
        return (name.lower() if lower else name)[:max_len]

    def _names_and_attributes(self, logical_id: str) -> dict[str, Any]:
        """Ref and GetAtt values that are known before creation (deterministic names)."""
        if logical_id in self._attributes:
            return self._attributes[logical_id]
        resource = self.template["Resources"][logical_id]
        rtype = resource["Type"]
        region, account = self.region, self.account_id
        attrs: dict[str, Any]
        if rtype == "AWS::Serverless::Function":
            name = self._name(logical_id, "FunctionName", 64)
            arn = f"arn:aws:lambda:{region}:{account}:function:{name}"
            attrs = {"Ref": name, "Arn": arn}
        elif rtype == "AWS::Serverless::StateMachine":
            name = self._name(logical_id, "Name", 80)
            arn = f"arn:aws:states:{region}:{account}:stateMachine:{name}"
            attrs = {"Ref": arn, "Arn": arn, "Name": name}
        elif rtype == "AWS::S3::Bucket":
            name = self._name(logical_id, "BucketName", 63, lower=True)
            attrs = {
                "Ref": name,
                "Arn": f"arn:aws:s3:::{name}",
                "DomainName": f"{name}.s3.amazonaws.com",
                "RegionalDomainName": f"{name}.s3.{region}.amazonaws.com",
                "WebsiteURL": f"http://{name}.s3-website-{region}.amazonaws.com",
            }
        elif rtype in ("AWS::DynamoDB::Table", "AWS::Serverless::SimpleTable"):
            name = self._name(logical_id, "TableName", 255)
            attrs = {"Ref": name, "Arn": f"arn:aws:dynamodb:{region}:{account}:table/{name}"}
        elif rtype == "AWS::SQS::Queue":
            name = self._name(logical_id, "QueueName", 80)
            if self._prop(logical_id, "FifoQueue") in (True, "true") and not name.endswith(".fifo"):
                name = name[:75] + ".fifo"
            attrs = {
                "QueueName": name,
                "Arn": f"arn:aws:sqs:{region}:{account}:{name}",
            }  # Ref (the URL) once created
        elif rtype == "AWS::SecretsManager::Secret":
            attrs = {}  # Ref (the ARN, with moto's random suffix) once created
        elif rtype in ("AWS::Serverless::LayerVersion", "AWS::Lambda::LayerVersion"):
            name = self._name(logical_id, "LayerName", 64)
            attrs = {"Ref": f"arn:aws:lambda:{region}:{account}:layer:{name}:1"}
        elif rtype == "AWS::Logs::LogGroup":
            name = self._name(logical_id, "LogGroupName", 512)
            attrs = {"Ref": name, "Arn": f"arn:aws:logs:{region}:{account}:log-group:{name}:*"}
        else:
            # Not created locally: a stable placeholder, so Outputs and unused
            # properties still resolve.
            attrs = {"Ref": f"{self.stack_name}-{logical_id}"}
        self._attributes[logical_id] = attrs
        return attrs

    def _lookup(self, logical_id: str, attribute: str) -> Any:
        attrs = self._names_and_attributes(logical_id)
        rtype = self.template["Resources"][logical_id]["Type"]
        if (
            rtype not in _CREATE_LATE_TYPES
            and logical_id not in self._creating
            and self.resolver.resource_enabled(self.template["Resources"][logical_id])
        ):
            # Whatever refers to a bucket, table, queue or secret needs it to exist first
            # (a dead-letter queue before its queue, a secret's ARN, ...).
            self._ensure_created(logical_id)
            attrs = self._attributes[logical_id]
        if attribute not in attrs:
            if rtype in self._creators():
                raise TemplateError(f"{logical_id} ({rtype}) has no attribute {attribute}")
            LOG.debug(
                "placeholder for %s.%s (%s is not created locally)", logical_id, attribute, rtype
            )
            return f"arn:aws:local:{self.region}:{self.account_id}:{logical_id}/{attribute}"
        return attrs[attribute]

    def _ref_resource(self, logical_id: str) -> Any:
        return self._lookup(logical_id, "Ref")

    def _getatt_resource(self, logical_id: str, attribute: str) -> Any:
        return self._lookup(logical_id, attribute)

    # -- S3 ---------------------------------------------------------------------------------

    def _best_effort(self, what: str, call: Callable[[], Any]) -> None:
        try:
            call()
        except Exception as exc:
            LOG.warning("local stack: %s not applied: %s", what, exc)

    def _create_bucket(self, logical_id: str, props: dict[str, Any]) -> None:
        props = self.resolver.resolve(props)
        name = self._lookup(logical_id, "Ref")
        s3 = self.client("s3")
        s3.create_bucket(Bucket=name)
        if "VersioningConfiguration" in props:
            status = props["VersioningConfiguration"].get("Status", "Enabled")
            s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": status})
        encryption = props.get("BucketEncryption", {}).get("ServerSideEncryptionConfiguration")
        if encryption:
            rules = []
            for rule in encryption:
                api_rule: dict[str, Any] = {}
                if "ServerSideEncryptionByDefault" in rule:
                    api_rule["ApplyServerSideEncryptionByDefault"] = rule[
                        "ServerSideEncryptionByDefault"
                    ]
                if "BucketKeyEnabled" in rule:
                    api_rule["BucketKeyEnabled"] = rule["BucketKeyEnabled"] in (True, "true")
                rules.append(api_rule)
            self._best_effort(
                f"{logical_id} encryption",
                lambda: s3.put_bucket_encryption(
                    Bucket=name, ServerSideEncryptionConfiguration={"Rules": rules}
                ),
            )
        if "PublicAccessBlockConfiguration" in props:
            block = {
                k: v in (True, "true") for k, v in props["PublicAccessBlockConfiguration"].items()
            }
            self._best_effort(
                f"{logical_id} public access block",
                lambda: s3.put_public_access_block(
                    Bucket=name, PublicAccessBlockConfiguration=block
                ),
            )
        if "OwnershipControls" in props:
            self._best_effort(
                f"{logical_id} ownership controls",
                lambda: s3.put_bucket_ownership_controls(
                    Bucket=name, OwnershipControls=props["OwnershipControls"]
                ),
            )
        lifecycle = props.get("LifecycleConfiguration", {}).get("Rules")
        if lifecycle:
            self._best_effort(
                f"{logical_id} lifecycle",
                lambda: s3.put_bucket_lifecycle_configuration(
                    Bucket=name,
                    LifecycleConfiguration={"Rules": [_lifecycle_rule(r) for r in lifecycle]},
                ),
            )
        cors = props.get("CorsConfiguration", {}).get("CorsRules")
        if cors:
            self._best_effort(
                f"{logical_id} CORS",
                lambda: s3.put_bucket_cors(
                    Bucket=name, CORSConfiguration={"CORSRules": [_cors_rule(r) for r in cors]}
                ),
            )
        if props.get("Tags"):
            self._best_effort(
                f"{logical_id} tags",
                lambda: s3.put_bucket_tagging(Bucket=name, Tagging={"TagSet": props["Tags"]}),
            )
        notifications = props.get("NotificationConfiguration") or {}
        target = self._bucket_notifications.setdefault(name, {})
        for cfn_key, api_key, arn_key, api_arn_key in (
            (
                "LambdaConfigurations",
                "LambdaFunctionConfigurations",
                "Function",
                "LambdaFunctionArn",
            ),
            ("QueueConfigurations", "QueueConfigurations", "Queue", "QueueArn"),
            ("TopicConfigurations", "TopicConfigurations", "Topic", "TopicArn"),
        ):
            for item in notifications.get(cfn_key, []):
                config: dict[str, Any] = {api_arn_key: item[arn_key], "Events": [item["Event"]]}
                rules = item.get("Filter", {}).get("S3Key", {}).get("Rules", [])
                if rules:
                    config["Filter"] = _key_filter(rules)
                target.setdefault(api_key, []).append(config)

    # -- DynamoDB ---------------------------------------------------------------------------

    def _create_table(self, logical_id: str, props: dict[str, Any]) -> None:
        props = self.resolver.resolve(props)
        name = self._lookup(logical_id, "Ref")
        ddb = self.client("dynamodb")
        kwargs: dict[str, Any] = {
            "TableName": name,
            "KeySchema": props["KeySchema"],
            "AttributeDefinitions": props["AttributeDefinitions"],
            "BillingMode": props.get("BillingMode", "PROVISIONED"),
        }
        if kwargs["BillingMode"] == "PROVISIONED":
            kwargs["ProvisionedThroughput"] = _throughput(props.get("ProvisionedThroughput"))
        for key in ("GlobalSecondaryIndexes", "LocalSecondaryIndexes"):
            if props.get(key):
                indexes = []
                for index in props[key]:
                    index = dict(index)
                    if kwargs["BillingMode"] == "PROVISIONED" and key.startswith("Global"):
                        index["ProvisionedThroughput"] = _throughput(
                            index.get("ProvisionedThroughput")
                        )
                    indexes.append(index)
                kwargs[key] = indexes
        if "StreamSpecification" in props:
            kwargs["StreamSpecification"] = {
                "StreamEnabled": True,
                "StreamViewType": props["StreamSpecification"]["StreamViewType"],
            }
        sse = props.get("SSESpecification")
        if sse:
            kwargs["SSESpecification"] = {"Enabled": sse.get("SSEEnabled") in (True, "true")}
        if props.get("Tags"):
            kwargs["Tags"] = props["Tags"]
        table = ddb.create_table(**kwargs)["TableDescription"]
        if table.get("LatestStreamArn"):
            self._attributes[logical_id]["StreamArn"] = table["LatestStreamArn"]
        ttl = props.get("TimeToLiveSpecification")
        if ttl and ttl.get("Enabled") in (True, "true"):
            ddb.update_time_to_live(
                TableName=name,
                TimeToLiveSpecification={"AttributeName": ttl["AttributeName"], "Enabled": True},
            )
        pitr = props.get("PointInTimeRecoverySpecification", {})
        if pitr.get("PointInTimeRecoveryEnabled") in (True, "true"):
            self._best_effort(
                f"{logical_id} point-in-time recovery",
                lambda: ddb.update_continuous_backups(
                    TableName=name,
                    PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True},
                ),
            )

    def _create_simple_table(self, logical_id: str, props: dict[str, Any]) -> None:
        props = self.resolver.resolve(props)
        key = props.get("PrimaryKey", {"Name": "id", "Type": "String"})
        attr_type = {"String": "S", "Number": "N", "Binary": "B"}[key.get("Type", "String")]
        table_props = {
            "KeySchema": [{"AttributeName": key["Name"], "KeyType": "HASH"}],
            "AttributeDefinitions": [{"AttributeName": key["Name"], "AttributeType": attr_type}],
            "BillingMode": "PROVISIONED"
            if props.get("ProvisionedThroughput")
            else "PAY_PER_REQUEST",
            "ProvisionedThroughput": props.get("ProvisionedThroughput"),
            "SSESpecification": props.get("SSESpecification"),
        }
        self._create_table(logical_id, {k: v for k, v in table_props.items() if v})

    # -- SQS, Secrets Manager ---------------------------------------------------------------

    def _create_queue(self, logical_id: str, props: dict[str, Any]) -> None:
        props = self.resolver.resolve(props)  # resolves (creates) a dead-letter queue first
        name = self._lookup(logical_id, "QueueName")
        attributes: dict[str, str] = {}
        for key in (
            "DelaySeconds",
            "MaximumMessageSize",
            "MessageRetentionPeriod",
            "ReceiveMessageWaitTimeSeconds",
            "VisibilityTimeout",
            "KmsMasterKeyId",
            "KmsDataKeyReusePeriodSeconds",
            "SqsManagedSseEnabled",
            "FifoQueue",
            "ContentBasedDeduplication",
            "DeduplicationScope",
            "FifoThroughputLimit",
        ):
            if key in props:
                attributes[key] = _env_string(props[key])
        for key in ("RedrivePolicy", "RedriveAllowPolicy"):
            if key in props:
                value = props[key]
                attributes[key] = value if isinstance(value, str) else json.dumps(value)
        tags = {t["Key"]: t["Value"] for t in props.get("Tags", [])}
        kwargs: dict[str, Any] = {"QueueName": name, "Attributes": attributes}
        if tags:
            kwargs["tags"] = tags
        url = self.client("sqs").create_queue(**kwargs)["QueueUrl"]
        self._attributes[logical_id].update({"Ref": url, "QueueUrl": url})

    def _create_secret(self, logical_id: str, props: dict[str, Any]) -> None:
        props = self.resolver.resolve(props)
        name = props.get("Name") or f"{logical_id}-{self.stack_name}"
        kwargs: dict[str, Any] = {"Name": name}
        if props.get("Description"):
            kwargs["Description"] = props["Description"]
        if "SecretString" in props:
            kwargs["SecretString"] = props["SecretString"]
        elif "GenerateSecretString" in props:
            generate = props["GenerateSecretString"]
            password = self.client("secretsmanager").get_random_password(
                PasswordLength=int(generate.get("PasswordLength", 32)),
                ExcludeCharacters=generate.get("ExcludeCharacters", ""),
                ExcludePunctuation=generate.get("ExcludePunctuation") in (True, "true"),
            )["RandomPassword"]
            if "SecretStringTemplate" in generate and "GenerateStringKey" in generate:
                document = json.loads(generate["SecretStringTemplate"])
                document[generate["GenerateStringKey"]] = password
                kwargs["SecretString"] = json.dumps(document)
            else:
                kwargs["SecretString"] = password
        arn = self.client("secretsmanager").create_secret(**kwargs)["ARN"]
        self._attributes[logical_id].update({"Ref": arn, "Id": arn, "Name": name})

    # -- Lambda -----------------------------------------------------------------------------

    def _layer_dir(self, layer: Any) -> Path | None:
        if isinstance(layer, dict) and set(layer) == {"Ref"}:
            layer_id = layer["Ref"]
            resource = self.template["Resources"].get(layer_id)
            if resource and resource["Type"] in (
                "AWS::Serverless::LayerVersion",
                "AWS::Lambda::LayerVersion",
            ):
                if self.code_root is not None:
                    return self.code_root / layer_id / "python"
                props = resource.get("Properties") or {}
                content = self.resolver.resolve(props.get("ContentUri") or props.get("Content"))
                if not isinstance(content, str):
                    raise TemplateError(f"{layer_id}: only a local ContentUri is supported")
                path = (self.template_dir / content).resolve()
                if (path / "python").is_dir():
                    return path / "python"  # built layer (e.g. sam build output): /opt/python
                return path  # BuildMethod: the source dir becomes python/ when built
        LOG.info("layer %r is not in the template: not available locally", layer)
        return None

    def _create_function(self, logical_id: str, raw_props: dict[str, Any]) -> None:
        resolve = self.resolver.resolve
        if raw_props.get("PackageType") == "Image":
            raise TemplateError(f"{logical_id}: image functions are not supported locally")
        runtime = resolve(raw_props.get("Runtime", ""))
        if not str(runtime).startswith("python3"):
            raise TemplateError(f"{logical_id}: runtime {runtime!r} is not a Python runtime")
        local_runtime = f"python{sys.version_info.major}.{sys.version_info.minor}"
        if runtime != local_runtime:
            LOG.warning(
                "%s: Runtime %s, but the local workers run %s", logical_id, runtime, local_runtime
            )
        handler = resolve(raw_props["Handler"])
        timeout = int(resolve(raw_props.get("Timeout", 3)))
        memory = int(resolve(raw_props.get("MemorySize", 128)))
        if self.code_root is not None:
            code_dir = self.code_root / logical_id
        else:
            code_uri = resolve(raw_props.get("CodeUri"))
            if not isinstance(code_uri, str):
                raise TemplateError(f"{logical_id}: only a local CodeUri is supported")
            code_dir = (self.template_dir / code_uri).resolve()
        layer_dirs = [
            d
            for d in (self._layer_dir(layer) for layer in raw_props.get("Layers", []))
            if d is not None
        ]
        variables = resolve((raw_props.get("Environment") or {}).get("Variables") or {})
        env_vars = {k: _env_string(v) for k, v in variables.items()}
        self._function_env[logical_id] = env_vars

        name = self._lookup(logical_id, "Ref")
        arn = self._lookup(logical_id, "Arn")
        worker_env = lambda_runtime.base_environment()
        worker_env.update(env_vars)
        worker_env.update(
            {
                "AWS_LAMBDA_FUNCTION_NAME": name,
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(memory),
                "AWS_LAMBDA_FUNCTION_TIMEOUT": str(timeout),
                "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
                "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{name}",
                "AWS_EXECUTION_ENV": f"AWS_Lambda_{runtime}",
                "AWS_REGION": self.region,
                "AWS_DEFAULT_REGION": self.region,
                "AWS_ENDPOINT_URL": self.endpoint_url,
                "LAMBDA_TASK_ROOT": str(code_dir),
                "_HANDLER": handler,
                "TZ": "UTC",
                "POWERTOOLS_TRACE_DISABLED": "true",
                **DUMMY_CREDENTIALS,
            }
        )
        worker_env.update(self.extra_env)
        spec = lambda_runtime.FunctionSpec(
            logical_id=logical_id,
            function_name=name,
            function_arn=arn,
            handler=handler,
            code_dir=code_dir,
            layer_dirs=layer_dirs,
            environment=worker_env,
            timeout=timeout,
            memory_size=memory,
            runtime=runtime,
        )
        if not code_dir.is_dir():
            raise TemplateError(f"{logical_id}: code directory {code_dir} does not exist")
        self.client("lambda").create_function(
            FunctionName=name,
            Runtime=runtime,
            Role=self._lambda_role_arn,
            Handler=handler,
            Code={"ZipFile": _dummy_zip()},
            Description=str(resolve(raw_props.get("Description", ""))),
            Timeout=timeout,
            MemorySize=memory,
            Environment={"Variables": env_vars},
            Architectures=resolve(raw_props.get("Architectures", ["x86_64"])),
        )
        pool = lambda_runtime.FunctionPool(
            spec,
            python=self.python,
            max_workers=self.max_workers_per_function,
            log_sink=_log_sink,
        )
        self.function_specs[logical_id] = spec
        self.pools[logical_id] = pool
        lambda_runtime.register(pool)

    # -- event sources (SAM function Events) ------------------------------------------------

    def _event_source_handlers(self) -> dict[str, Callable[[str, str, dict[str, Any]], None]]:
        return {
            "S3": self._event_s3,
            "SQS": self._event_sqs,
            "HttpApi": self._event_http_api,
            "Schedule": self._event_schedule,
            "ScheduleV2": self._event_schedule,
        }

    def _apply_event_sources(self) -> None:
        for logical_id in self.pools:
            props = self.template["Resources"][logical_id].get("Properties") or {}
            for event_id, event in (props.get("Events") or {}).items():
                handler = self._event_source_handlers().get(event.get("Type"))
                if handler is None:
                    LOG.warning(
                        "%s: event source %s of type %s is not emulated locally",
                        logical_id,
                        event_id,
                        event.get("Type"),
                    )
                    continue
                handler(logical_id, event_id, event.get("Properties") or {})
        s3 = self.client("s3")
        for bucket, config in self._bucket_notifications.items():
            if config:
                s3.put_bucket_notification_configuration(
                    Bucket=bucket, NotificationConfiguration=config
                )

    def _event_s3(self, logical_id: str, event_id: str, props: dict[str, Any]) -> None:
        bucket_ref = props.get("Bucket")
        if not (isinstance(bucket_ref, dict) and "Ref" in bucket_ref):
            raise TemplateError(f"{logical_id}.{event_id}: S3 event Bucket must be a !Ref")
        bucket = self._lookup(bucket_ref["Ref"], "Ref")
        events = self.resolver.resolve(props["Events"])
        config: dict[str, Any] = {
            "Id": f"{logical_id}{event_id}",
            "LambdaFunctionArn": self._lookup(logical_id, "Arn"),
            "Events": [events] if isinstance(events, str) else list(events),
        }
        rules = self.resolver.resolve(props.get("Filter", {})).get("S3Key", {}).get("Rules", [])
        if rules:
            config["Filter"] = _key_filter(rules)
        notifications = self._bucket_notifications.setdefault(bucket, {})
        notifications.setdefault("LambdaFunctionConfigurations", []).append(config)

    def _event_sqs(self, logical_id: str, event_id: str, props: dict[str, Any]) -> None:
        # A poller like Lambda's event source mapping (not moto's own, which runs inside
        # SendMessage and ignores partial batch responses); started once the stack is deployed.
        where = f"{logical_id}.{event_id}"
        props = self.resolver.resolve(props)
        queue_arn = props.get("Queue")
        if not isinstance(queue_arn, str) or not queue_arn.startswith("arn:aws:sqs:"):
            raise TemplateError(f"{where}: SQS event Queue must be a queue ARN, got {queue_arn!r}")
        if props.get("FilterCriteria"):
            LOG.warning(
                "%s: FilterCriteria is not applied locally: every message is delivered", where
            )
        for unsupported in ("MetricsConfig", "ProvisionedPollerConfig"):
            if unsupported in props:
                LOG.info("%s: %s is ignored locally", where, unsupported)
        from botocore.exceptions import ClientError

        try:
            queue_url = self.client("sqs").get_queue_url(QueueName=queue_arn.rsplit(":", 1)[-1])[
                "QueueUrl"
            ]
        except ClientError as exc:
            raise TemplateError(f"{where}: queue {queue_arn} does not exist locally") from exc
        response_types = props.get("FunctionResponseTypes") or []
        unknown = set(response_types) - {sqs_events.REPORT_BATCH_ITEM_FAILURES}
        if unknown:
            raise TemplateError(f"{where}: unknown FunctionResponseTypes {sorted(unknown)}")
        scaling = props.get("ScalingConfig") or {}
        pool = self.pools[logical_id]
        try:
            if "MaximumConcurrency" in scaling:
                sqs_events.check_maximum_concurrency(int(scaling["MaximumConcurrency"]))
            source = sqs_events.SqsEventSource(
                function_arn=self._lookup(logical_id, "Arn"),
                queue_arn=queue_arn,
                queue_url=queue_url,
                batch_size=int(props.get("BatchSize", 10)),
                batching_window=float(props.get("MaximumBatchingWindowInSeconds", 0)),
                report_batch_item_failures=bool(response_types),
                max_concurrency=int(scaling.get("MaximumConcurrency", pool.max_workers)),
                enabled=props.get("Enabled", True) not in (False, "false", "False"),
            )
            source.validate()
        except (TypeError, ValueError) as exc:
            raise TemplateError(f"{where}: {exc}") from None
        if source.max_concurrency > pool.max_workers:
            LOG.info(
                "%s: MaximumConcurrency %d, but %s has %d workers: batches beyond them wait for "
                "one (as Lambda throttles them)",
                where,
                source.max_concurrency,
                logical_id,
                pool.max_workers,
            )
        # Its own client: connections for every batch in flight, plus the receiver.
        client = boto3.client(
            "sqs",
            endpoint_url=self.endpoint_url,
            region_name=self.region,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            aws_session_token="testing",
            config=Config(
                retries={"max_attempts": 2, "mode": "standard"},
                read_timeout=30,
                max_pool_connections=source.max_concurrency + 2,
            ),
        )
        self.sqs_pollers[where] = sqs_events.SqsPoller(
            where, source, sqs_client=client, invoke=self._invoke_direct, region=self.region
        )

    def _event_http_api(self, logical_id: str, event_id: str, props: dict[str, Any]) -> None:
        assert self.http_api is not None
        props = self.resolver.resolve(props)
        path = props.get("Path")
        method = props.get("Method")
        if not path or not method:
            raise TemplateError(f"{logical_id}.{event_id}: HttpApi events need Path and Method")
        api_id = str(props.get("ApiId") or "ServerlessHttpApi")
        self.http_api.add_route(method, path, logical_id, api_id)

    def _event_schedule(self, logical_id: str, event_id: str, props: dict[str, Any]) -> None:
        # Not run on a clock: tests and tools fire them (`fire_schedule`), so runs are ordered.
        self.schedules[logical_id] = str(self.resolver.resolve(props.get("ScheduleExpression")))

    def fire_schedule(self, logical_id: str) -> Any:
        """Run a scheduled function once, as its EventBridge schedule would; its result."""
        if logical_id not in self.schedules:
            raise DevStackError(f"{logical_id} has no schedule in the template")
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        event = {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": "Scheduled Event",
            "source": "aws.scheduler",
            "account": self.account_id,
            "time": now,
            "region": self.region,
            "resources": [
                f"arn:aws:scheduler:{self.region}:{self.account_id}:schedule/{logical_id}"
            ],
            "detail": {},
        }
        return self.invoke(logical_id, event)

    # -- Step Functions ---------------------------------------------------------------------

    def _create_state_machine(self, logical_id: str, raw_props: dict[str, Any]) -> None:
        resolve = self.resolver.resolve
        if "Definition" in raw_props:
            definition = json.dumps(resolve(raw_props["Definition"]), indent=2)
        else:
            uri = resolve(raw_props.get("DefinitionUri"))
            if not isinstance(uri, str):
                raise TemplateError(f"{logical_id}: only a local DefinitionUri is supported")
            definition = (self.template_dir / uri).read_text(encoding="utf-8")
        substitutions = resolve(raw_props.get("DefinitionSubstitutions") or {})
        for key, value in substitutions.items():
            definition = definition.replace("${" + key + "}", _env_string(value))
        if "${" in definition:
            LOG.warning("%s: definition still contains ${...} after substitution", logical_id)
        json.loads(definition)  # fail here, with the file name, rather than in moto
        self.state_machine_definitions[logical_id] = definition
        role = resolve(raw_props["Role"]) if "Role" in raw_props else self._states_role_arn
        self.client("stepfunctions").create_state_machine(
            name=self._lookup(logical_id, "Name"),
            definition=definition,
            roleArn=role,
            type=resolve(raw_props.get("Type", "STANDARD")),
        )


# --------------------------------------------------------------------------------------------
# CloudFormation property -> API shape helpers
# --------------------------------------------------------------------------------------------


def _key_filter(rules: list[dict[str, Any]]) -> dict[str, Any]:
    # S3 accepts "Prefix"/"prefix"; moto 5.2.5 only matches lowercase names.
    return {
        "Key": {
            "FilterRules": [
                {"Name": str(r["Name"]).lower(), "Value": str(r["Value"])} for r in rules
            ]
        }
    }


def _throughput(value: dict[str, Any] | None) -> dict[str, int]:
    value = value or {}
    return {
        "ReadCapacityUnits": int(value.get("ReadCapacityUnits", 5)),
        "WriteCapacityUnits": int(value.get("WriteCapacityUnits", 5)),
    }


def _lifecycle_rule(rule: dict[str, Any]) -> dict[str, Any]:
    api: dict[str, Any] = {"Status": rule.get("Status", "Enabled")}
    if "Id" in rule:
        api["ID"] = rule["Id"]
    api["Filter"] = {"Prefix": rule.get("Prefix", "")}
    if "ExpirationInDays" in rule:
        api["Expiration"] = {"Days": int(rule["ExpirationInDays"])}
    if "AbortIncompleteMultipartUpload" in rule:
        days = int(rule["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"])
        api["AbortIncompleteMultipartUpload"] = {"DaysAfterInitiation": days}
    if "NoncurrentVersionExpiration" in rule:
        days = int(rule["NoncurrentVersionExpiration"]["NoncurrentDays"])
        api["NoncurrentVersionExpiration"] = {"NoncurrentDays": days}
    elif "NoncurrentVersionExpirationInDays" in rule:
        api["NoncurrentVersionExpiration"] = {
            "NoncurrentDays": int(rule["NoncurrentVersionExpirationInDays"])
        }
    return api


def _cors_rule(rule: dict[str, Any]) -> dict[str, Any]:
    api = {
        "AllowedMethods": rule["AllowedMethods"],
        "AllowedOrigins": rule["AllowedOrigins"],
    }
    if "AllowedHeaders" in rule:
        api["AllowedHeaders"] = rule["AllowedHeaders"]
    if "ExposedHeaders" in rule:
        api["ExposeHeaders"] = rule["ExposedHeaders"]
    if "MaxAge" in rule:
        api["MaxAgeSeconds"] = int(rule["MaxAge"])
    return api


def _log_sink(spec: lambda_runtime.FunctionSpec, result: lambda_runtime.InvokeResult) -> None:
    logger = logging.getLogger(f"devstack.lambda.{spec.logical_id}")
    level = logging.WARNING if result.errored else logging.INFO
    if logger.isEnabledFor(level):
        for line in result.logs.rstrip("\n").splitlines():
            logger.log(level, "%s", line)


# --------------------------------------------------------------------------------------------
# Foreground mode
# --------------------------------------------------------------------------------------------


def _key_values(items: list[str], what: str) -> dict[str, str]:
    result = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"{what} must be Key=Value, got {item!r}")
        result[key] = value
    return result


def main(argv: list[str] | None = None, *, extra_env: dict[str, str] | None = None) -> int:
    """Run the stack in the foreground until Ctrl-C. `extra_env` is the hook for callers (e.g. a
    wrapper that starts the provider simulator first and passes its URL as a --param)."""
    parser = argparse.ArgumentParser(
        prog="python -m devstack.stack", description="dropcut local stack (moto, no Docker)"
    )
    parser.add_argument("--template", default="template.yaml")
    parser.add_argument("--port", type=int, default=4566)
    parser.add_argument("--stack-name", default="dropcut-local")
    parser.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="Key=Value",
        help="template parameter override (repeatable)",
    )
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra environment variable for every function (repeatable)",
    )
    parser.add_argument(
        "--code-root",
        default=None,
        help="run `sam build` output (e.g. .aws-sam/build) instead of the sources",
    )
    parser.add_argument("--quiet", action="store_true", help="don't print handler logs")
    args = parser.parse_args(argv)

    logging.basicConfig(
        level=logging.WARNING if args.quiet else logging.INFO,
        format="%(asctime)s %(name)s %(message)s",
    )
    env = dict(extra_env or {})
    env.update(_key_values(args.env, "--env"))
    stack = DevStack(
        args.template,
        _key_values(args.param, "--param"),
        stack_name=args.stack_name,
        code_root=args.code_root,
        extra_env=env,
        port=args.port,
    )
    stack.start()
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    signal.signal(signal.SIGINT, lambda *_: stopped.set())  # also when started in background
    try:
        print(describe(stack), flush=True)
        while not stopped.wait(1.0):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        print("stopping the local stack", flush=True)
        stack.stop()
    return 0


def describe(stack: DevStack) -> str:
    """A human summary: endpoint, resources, and how to try it."""
    lines = [
        f"dropcut local stack '{stack.stack_name}' running (moto {lambda_runtime.MOTO_VERSION})",
        f"  endpoint   {stack.endpoint_url}   region {stack.region}",
        "  credentials: any (e.g. AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing)",
    ]
    buckets = []
    for lid, res in stack.template["Resources"].items():
        if lid not in stack.physical_ids:
            continue
        lines.append(f"  {lid:<28} {res['Type']:<32} {stack.physical_ids[lid]}")
        if res["Type"] == "AWS::S3::Bucket":
            buckets.append(stack.physical_ids[lid])
    if stack.outputs:
        lines.append("  outputs:")
        lines.extend(f"    {k} = {v}" for k, v in stack.outputs.items())
    bucket = stack.outputs.get("MediaBucketName") or (buckets[0] if buckets else "BUCKET")
    lines.append("  try:")
    lines.append(
        f"    aws --endpoint-url {stack.endpoint_url} s3 cp clip.mp4 s3://{bucket}/inbox/clip.mp4"
    )
    lines.append(
        f"    aws --endpoint-url {stack.endpoint_url} stepfunctions list-executions "
        f"--state-machine-arn {next(iter(stack.state_machine_arns().values()), 'ARN')}"
    )
    lines.append("  Ctrl-C to stop.")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
