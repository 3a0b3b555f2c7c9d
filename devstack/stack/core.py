"""`DevStack`: the local stack's lifecycle (moto server, local HTTP API, deploy, pollers, stop)
and what tests and tools use on a running stack (clients, invokes, drain, executions).

Deploying is `provision.Provisioner`'s job (with the creators `creators.CREATORS` tables from
`resources` and `lambdas`), wiring event sources `events.EventSources`'. Each is handed the stack as
the narrower type it reads (`provision.StackSettings`, `events.EventHost`), so neither imports
this module.
"""

from __future__ import annotations

import atexit
import base64
import json
import logging
import os
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any, ClassVar, Self

import boto3
from botocore.config import Config

from devstack import lambda_runtime, moto_fixes, s3_notifications, sqs_events
from devstack.http_api import LocalHttpApi
from devstack.stack.creators import CREATORS
from devstack.stack.errors import DevStackError, InvokeError
from devstack.stack.events import EventSources
from devstack.stack.lambdas import DUMMY_CREDENTIALS, close_pools, invoke_direct
from devstack.stack.provision import Provisioner
from devstack.template import Resolver

LOG = logging.getLogger("devstack.stack")

ACCOUNT_ID = "123456789012"  # moto's default account
REGION = "us-east-1"


class DevStack:
    """template.yaml deployed into a moto server in this process (see the package docstring)."""

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
        self.endpoint_url = ""
        #: What the template deployed (names, outputs, functions, state machines).
        self.deployment = Provisioner(self, CREATORS)
        #: SQS pollers and schedules, wired from the functions' Events.
        self.event_sources = EventSources(self)

        self._server: Any = None
        self._async: s3_notifications.AsyncInvoker | None = None
        self._clients: dict[str, Any] = {}
        self._first_in_process = True
        self._started = False

    # -- what the template deployed ---------------------------------------------------------

    @property
    def template(self) -> dict[str, Any]:
        """The template as deployed (short-form tags parsed, SAM Globals applied)."""
        return self.deployment.template

    @property
    def outputs(self) -> dict[str, Any]:
        """The template's Outputs, resolved."""
        return self.deployment.outputs

    @property
    def physical_ids(self) -> dict[str, Any]:
        """Logical id -> physical id (what `!Ref` gives) of every resource created."""
        return self.deployment.physical_ids

    @property
    def function_specs(self) -> dict[str, lambda_runtime.FunctionSpec]:
        """How each function's workers run, by logical id."""
        return self.deployment.function_specs

    @property
    def pools(self) -> dict[str, lambda_runtime.FunctionPool]:
        """Each function's warm workers, by logical id."""
        return self.deployment.pools

    @property
    def state_machine_definitions(self) -> dict[str, str]:
        """Each state machine's definition (substitutions applied), by logical id."""
        return self.deployment.state_machine_definitions

    @property
    def resolver(self) -> Resolver:
        """Parameters, conditions and intrinsic functions of the deployed template."""
        return self.deployment.resolver

    @property
    def schedules(self) -> dict[str, str]:
        """Scheduled functions and their expressions (run them with `fire_schedule`)."""
        return self.event_sources.schedules

    @property
    def sqs_pollers(self) -> dict[str, sqs_events.SqsPoller]:
        """SQS event source pollers, by "FunctionLogicalId.EventId"."""
        return self.event_sources.sqs_pollers

    # -- lifecycle --------------------------------------------------------------------------

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> Self:
        """Start moto and the local HTTP API, deploy the template, start the SQS pollers."""
        with DevStack._active_lock:
            if self in DevStack._active:
                raise DevStackError("this DevStack is already running")
            self._first_in_process = not DevStack._active
            DevStack._active.append(self)
        try:
            self._start_server()
            self.http_api = LocalHttpApi(self._invoke_for_api, self.account_id, region=self.region)
            self.http_api.start()
            self.deployment.create_resources(self.http_api.url)
            self.event_sources.wire(self.deployment)
            self.deployment.record_outputs()
            self.deployment.register_stack_record()
            self.event_sources.start_pollers()
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
                self.invoke_direct, retry_delays=self.async_retry_delays
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
        """Stop everything started (safe to call twice, and after a failed start)."""
        if self.http_api is not None:
            self.http_api.stop()
            self.http_api = None
        # Pollers before the pools: no new batches; a batch in flight ends when its pool closes.
        self.event_sources.stop_pollers()
        if self._async is not None:
            s3_notifications.set_async_invoker(None)
            self._async.close()
            self._async = None
        close_pools(self.pools)
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

    # -- clients ----------------------------------------------------------------------------

    def boto_settings(
        self, *, read_timeout: float, max_pool_connections: int | None = None
    ) -> dict[str, Any]:
        """Keyword arguments for a boto3 client or resource on this stack's endpoint."""
        config: dict[str, Any] = {
            "retries": {"max_attempts": 2, "mode": "standard"},
            "read_timeout": read_timeout,
        }
        if max_pool_connections is not None:
            config["max_pool_connections"] = max_pool_connections
        return {
            "endpoint_url": self.endpoint_url,
            "region_name": self.region,
            "aws_access_key_id": DUMMY_CREDENTIALS["AWS_ACCESS_KEY_ID"],
            "aws_secret_access_key": DUMMY_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            "aws_session_token": DUMMY_CREDENTIALS["AWS_SESSION_TOKEN"],
            "config": Config(**config),
        }

    def client(self, service: str) -> Any:
        """A boto3 client for `service` on this stack (one per service, reused)."""
        if service not in self._clients:
            settings = self.boto_settings(read_timeout=960)
            self._clients[service] = boto3.client(service, **settings)  # type: ignore[call-overload]
        return self._clients[service]

    def resource(self, service: str) -> Any:
        """A boto3 resource for `service` on this stack (e.g. `resource("dynamodb").Table`)."""
        settings = self.boto_settings(read_timeout=960)
        return boto3.resource(service, **settings)  # type: ignore[call-overload]

    # -- functions --------------------------------------------------------------------------

    def function_env(self, logical_id: str) -> dict[str, str]:
        """The function's environment variables as the template resolves them (Globals merged)."""
        return dict(self.deployment.function_env[logical_id])

    def worker_env(self, logical_id: str) -> dict[str, str]:
        """The whole environment a worker process of that function gets."""
        return dict(self.function_specs[logical_id].environment)

    def pool(self, logical_id: str) -> lambda_runtime.FunctionPool:
        """The function's warm workers."""
        return self.pools[logical_id]

    def invoke_raw(self, logical_id: str, event: Any = None) -> tuple[Any, str | None, str]:
        """Invoke through moto's Lambda API: (payload, FunctionError or None, logs)."""
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

    def invoke_direct(self, function_arn: str, event: dict[str, Any]) -> tuple[str, bool]:
        """Invoke by ARN in this process, as event sources do: (payload text, errored)."""
        return invoke_direct(self.account_id, self.region, function_arn, event)

    def _invoke_for_api(self, logical_id: str, event: dict[str, Any]) -> tuple[Any, str | None]:
        payload, function_error, _logs = self.invoke_raw(logical_id, event)
        return payload, function_error

    def fire_schedule(self, logical_id: str) -> Any:
        """Run a scheduled function once, as its EventBridge schedule would; its result."""
        if logical_id not in self.schedules:
            raise DevStackError(f"{logical_id} has no schedule in the template")
        return self.invoke(logical_id, self.event_sources.scheduled_event(logical_id))

    # -- asynchronous work ------------------------------------------------------------------

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
        return busy + self.event_sources.busy()

    @property
    def async_invocations(self) -> list[s3_notifications.AsyncInvocation]:
        """The S3 event invocations delivered asynchronously so far."""
        return list(self._async.invocations) if self._async is not None else []

    # -- Step Functions ---------------------------------------------------------------------

    def state_machine_arns(self) -> dict[str, str]:
        """Logical id -> ARN of the template's state machines."""
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
            description: dict[str, Any] = sfn.describe_execution(executionArn=execution_arn)
            if description["status"] != "RUNNING":
                return description
            if time.monotonic() > deadline:
                raise TimeoutError(f"{execution_arn} still RUNNING after {timeout} s")
            time.sleep(poll)

    def history(self, execution_arn: str) -> list[dict[str, Any]]:
        """The execution's history events, oldest first."""
        sfn = self.client("stepfunctions")
        events: list[dict[str, Any]] = []
        for page in sfn.get_paginator("get_execution_history").paginate(executionArn=execution_arn):
            events.extend(page["events"])
        return events
