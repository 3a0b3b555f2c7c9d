"""The local stack (devstack.stack): template -> moto resources, real handlers in warm workers,
S3 notifications, Step Functions execution with Retry/Catch on handler exception names.

Uses its own fixture template (tests/devstack/fixtures/) so it does not depend on the app's
handlers; one smoke test deploys the real template.yaml without invoking anything.
"""

from __future__ import annotations

import inspect
import json
import os
import signal
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from devstack import lambda_runtime, s3_notifications
from devstack.stack import DevStack, InvokeError
from devstack.template import TemplateError

ROOT = Path(__file__).resolve().parents[2]
MEDIA_FUNCTIONS = ("PrepareFunction", "StitchFunction")
FIXTURES = Path(__file__).resolve().parent / "fixtures"
STACK_NAME = "minitest"
ACCOUNT = "123456789012"


@pytest.fixture(scope="module")
def stack() -> Iterator[DevStack]:
    os.environ["DEVSTACK_LEAK_CHECK"] = "must-not-reach-workers"
    try:
        with DevStack(
            FIXTURES / "mini_template.yaml",
            {"Greeting": "hi there", "WaitSeconds": "1"},
            stack_name=STACK_NAME,
            extra_env={"EXTRA_FROM_TEST": "yes"},
            async_retry_delays=(0.2, 0.2),
        ) as running:
            yield running
    finally:
        os.environ.pop("DEVSTACK_LEAK_CHECK", None)


# ---------------------------------------------------------------------------------------------
# moto internals we depend on: fail loudly when they change
# ---------------------------------------------------------------------------------------------


def test_moto_internals_the_hook_relies_on(stack: DevStack) -> None:
    import moto
    from moto.awslambda.models import LambdaFunction
    from moto.s3 import notifications
    from moto.stepfunctions.parser.asl.utils import boto_client

    assert moto.__version__ == lambda_runtime.MOTO_VERSION == "5.2.5"
    original = lambda_runtime._ORIGINAL_INVOKE_LAMBDA
    assert original is not None
    signature = inspect.signature(original)
    assert list(signature.parameters) == ["self", "event"]
    assert signature.parameters["event"].default is None
    assert signature.return_annotation == "tuple[str, bool, str]"
    assert "docker" in inspect.getsource(original)  # what we replace
    assert LambdaFunction._invoke_lambda is lambda_runtime._hooked_invoke_lambda
    invoke_src = inspect.getsource(LambdaFunction.invoke)
    assert "res, errored, logs = self._invoke_lambda(event=body)" in invoke_src
    assert 'response_headers["x-amz-function-error"] = "Handled"' in invoke_src
    # Step Functions reaches Lambda over http://localhost:$MOTO_PORT.
    assert "moto_server_port()" in inspect.getsource(boto_client.boto_client_for)
    assert os.environ["MOTO_PORT"] == str(stack.port)
    # S3 notifications: the two module functions we wrap.
    assert notifications._get_s3_event is s3_notifications._get_s3_event
    assert notifications._invoke_awslambda is s3_notifications._invoke_awslambda
    assert str(inspect.signature(s3_notifications._ORIGINALS["_get_s3_event"])).startswith(
        "(event_name: str, bucket: 'FakeBucket', key: Any, notification_id: str)"
    )
    # moto_fixes: the heartbeat endpoint is made after the waitForTaskToken Lambda returns, and
    # its wait does not look at an outcome that came earlier (what the fix corrects).
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
        state_task_service_callback as callback_task,
    )
    from moto.stepfunctions.parser.asl.eval.callback.callback import CallbackEndpoint

    assert CallbackEndpoint.setup_heartbeat_endpoint.__module__ == "devstack.moto_fixes"
    waiting = inspect.getsource(
        callback_task.StateTaskServiceCallback._wait_for_task_token_heartbeat
    )
    assert "received = heartbeat_endpoint.clear_and_wait()" in waiting
    # ... and the hook is what runs: the handler ran in another process.
    result = stack.invoke("EchoFunction", {"probe": 1})
    assert result["pid"] != os.getpid()
    assert result["pid"] in stack.pool("EchoFunction").worker_pids()


# ---------------------------------------------------------------------------------------------
# resources from the template
# ---------------------------------------------------------------------------------------------


def test_resources_created_from_template(stack: DevStack) -> None:
    bucket = f"{STACK_NAME}-files-{ACCOUNT}"
    assert stack.outputs["BucketName"] == bucket
    assert stack.outputs["TableName"] == stack.physical_ids["MiniTable"]
    assert stack.outputs["EchoArn"].endswith(f":function:{stack.physical_ids['EchoFunction']}")
    assert stack.outputs["StateMachineArn"] == stack.physical_ids["FlowStateMachine"]

    s3 = stack.client("s3")
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    rules = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"]
    assert rules[0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    lifecycle = s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
    assert lifecycle[0]["ID"] == "expire-tmp"
    notif = s3.get_bucket_notification_configuration(Bucket=bucket)
    [config] = notif["LambdaFunctionConfigurations"]
    assert config["LambdaFunctionArn"].endswith(":function:minitest-OnUploadFunction")
    assert config["Events"] == ["s3:ObjectCreated:*"]
    assert config["Filter"]["Key"]["FilterRules"] == [{"Name": "prefix", "Value": "inbox/"}]

    ddb = stack.client("dynamodb")
    table = ddb.describe_table(TableName=stack.outputs["TableName"])["Table"]
    assert table["KeySchema"] == [{"AttributeName": "pk", "KeyType": "HASH"}]
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    ttl = ddb.describe_time_to_live(TableName=stack.outputs["TableName"])
    assert ttl["TimeToLiveDescription"]["AttributeName"] == "expires_at"
    assert "ProdOnlyTable" not in stack.physical_ids  # Condition IsProd is false
    assert "IgnoredAlarm" not in stack.physical_ids

    sqs = stack.client("sqs")
    attrs = sqs.get_queue_attributes(QueueUrl=stack.outputs["QueueUrl"], AttributeNames=["All"])
    redrive = json.loads(attrs["Attributes"]["RedrivePolicy"])
    assert redrive["deadLetterTargetArn"].endswith(":minitest-DeadLetterQueue")
    assert attrs["Attributes"]["VisibilityTimeout"] == "60"

    fn = stack.client("lambda").get_function(FunctionName=stack.physical_ids["SlowFunction"])
    assert fn["Configuration"]["Timeout"] == 1
    assert fn["Configuration"]["MemorySize"] == 192
    assert fn["Configuration"]["Runtime"] == "python3.13"

    definition = stack.state_machine_definitions["FlowStateMachine"]
    assert "${" not in definition
    assert "(default wait 1 s)" in definition
    described = stack.client("stepfunctions").describe_state_machine(
        stateMachineArn=stack.physical_ids["FlowStateMachine"]
    )
    assert json.loads(described["definition"])["States"]["Direct"]["Resource"] == (
        stack.outputs["EchoArn"].replace("EchoFunction", "FlakyFunction")
    )


def test_stack_record_has_the_template_outputs(stack: DevStack) -> None:
    """describe-stacks finds the dev stack, with the template's resolved Outputs as literals."""
    outputs, parameters = _stack_record(stack)
    assert outputs == stack.outputs
    assert set(outputs) == {"BucketName", "TableName", "StateMachineArn", "QueueUrl", "EchoArn"}
    assert outputs["BucketName"] == stack.physical_ids["FilesBucket"]
    assert parameters["Greeting"] == "hi there"


def _stack_record(stack: DevStack) -> tuple[dict[str, str], dict[str, str]]:
    [record] = stack.client("cloudformation").describe_stacks(StackName=stack.stack_name)["Stacks"]
    assert record["StackStatus"] == "CREATE_COMPLETE"
    outputs = {o["OutputKey"]: o["OutputValue"] for o in record.get("Outputs", [])}
    parameters = {p["ParameterKey"]: p["ParameterValue"] for p in record.get("Parameters", [])}
    return outputs, parameters


def test_function_env_from_template(stack: DevStack) -> None:
    env = stack.function_env("EchoFunction")
    assert env == {
        "STAGE": "dev",
        "TABLE_NAME": stack.physical_ids["MiniTable"],
        "BUCKET_NAME": f"{STACK_NAME}-files-{ACCOUNT}",
        "MODE": "relaxed",
        "REGION_AND_STACK": f"us-east-1/{STACK_NAME}",
        "GREETING": "hi there",
        "QUEUE_URL": stack.outputs["QueueUrl"],
        "SELF_NAME": f"{STACK_NAME}-echo",
        "API_KEY_SECRET_ARN": stack.physical_ids["ApiKeySecret"],
    }
    secret = stack.client("secretsmanager").get_secret_value(SecretId=env["API_KEY_SECRET_ARN"])
    assert secret["Name"] == f"{STACK_NAME}/api-key"
    assert secret["SecretString"] == "not-a-real-key"
    assert "GREETING" not in stack.function_env("SlowFunction")

    result = stack.invoke("EchoFunction", {})
    worker_env = result["env"]
    for key, value in env.items():
        assert worker_env[key] == value
    assert worker_env["AWS_ENDPOINT_URL"] == stack.endpoint_url
    assert worker_env["AWS_LAMBDA_FUNCTION_NAME"] == stack.physical_ids["EchoFunction"]
    assert worker_env["AWS_LAMBDA_FUNCTION_TIMEOUT"] == "10"
    assert worker_env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "192"
    assert worker_env["AWS_REGION"] == worker_env["AWS_DEFAULT_REGION"] == "us-east-1"
    assert worker_env["POWERTOOLS_TRACE_DISABLED"] == "true"
    assert worker_env["EXTRA_FROM_TEST"] == "yes"
    assert "DEVSTACK_LEAK_CHECK" not in worker_env  # the parent's environment is not inherited
    assert "PYTHONPATH" not in worker_env
    assert result["layer"] == "hello from the layer"
    assert result["cwd"] == str(FIXTURES / "functions" / "echo")

    context = result["context"]
    assert context["function_name"] == stack.physical_ids["EchoFunction"]
    assert context["invoked_function_arn"] == stack.outputs["EchoArn"]
    assert context["memory_limit_in_mb"] == 192
    assert context["function_version"] == "$LATEST"
    assert uuid.UUID(context["aws_request_id"])
    assert context["log_group_name"] == f"/aws/lambda/{stack.physical_ids['EchoFunction']}"
    assert 9000 < context["remaining_ms"] <= 10000


def test_bad_parameter_override_fails_like_cloudformation() -> None:
    with pytest.raises(TemplateError, match="AllowedValues"):
        DevStack(FIXTURES / "mini_template.yaml", {"Stage": "qa"}, stack_name="bad").start()
    with pytest.raises(TemplateError, match="unknown parameter"):
        DevStack(FIXTURES / "mini_template.yaml", {"Nope": "1"}, stack_name="bad2").start()


# ---------------------------------------------------------------------------------------------
# invokes: errors, timeout, crash, warm reuse, concurrency
# ---------------------------------------------------------------------------------------------


def test_handler_exception_is_a_lambda_error_payload(stack: DevStack) -> None:
    payload, function_error, logs = stack.invoke_raw("EchoFunction", {"raise": "slow down"})
    assert function_error == "Handled"  # what moto 5.2.5 sets for any errored result
    assert payload["errorType"] == "ProviderThrottled"
    assert payload["errorMessage"] == "slow down"
    assert uuid.UUID(payload["requestId"])
    assert any("raise ProviderThrottled" in frame for frame in payload["stackTrace"])
    assert "[ERROR] ProviderThrottled: slow down" in logs
    assert "echo got ['raise']" in logs
    assert "to stderr" in logs
    with pytest.raises(InvokeError) as info:
        stack.invoke("EchoFunction", {"raise": "again"})
    assert info.value.error_type == "ProviderThrottled"


def test_warm_worker_is_reused(stack: DevStack) -> None:
    first = stack.invoke("EchoFunction", {})
    second = stack.invoke("EchoFunction", {})
    assert first["pid"] == second["pid"]
    assert second["imports"] == 1
    assert second["invocations"] == first["invocations"] + 1


def test_timeout_kills_the_worker(stack: DevStack) -> None:
    before = stack.invoke("SlowFunction", {})
    started = time.monotonic()
    payload, function_error, logs = stack.invoke_raw("SlowFunction", {"sleep": 5})
    elapsed = time.monotonic() - started
    assert function_error
    assert payload["errorType"] == "Sandbox.Timedout"
    assert "Task timed out after 1.00 seconds" in payload["errorMessage"]
    assert 0.9 < elapsed < 3.5
    assert "echo got ['sleep']" in logs  # what the handler printed before it was stopped
    after = stack.invoke("SlowFunction", {})
    assert after["pid"] != before["pid"]
    assert after["imports"] == 1 and after["invocations"] == 1


def test_worker_killed_mid_invoke(stack: DevStack) -> None:
    pool = stack.pool("EchoFunction")
    stack.invoke("EchoFunction", {})  # at least one warm worker
    results: list[Any] = []
    thread = threading.Thread(
        target=lambda: results.append(stack.invoke_raw("EchoFunction", {"sleep": 8}))
    )
    before = set(pool.worker_pids())
    thread.start()
    victim = None
    deadline = time.monotonic() + 5
    while victim is None and time.monotonic() < deadline:
        time.sleep(0.1)
        busy = [w for w in list(pool._all) if w not in pool._idle]
        victim = busy[0].pid if busy else None
    assert victim is not None
    time.sleep(0.2)
    os.kill(victim, signal.SIGKILL)
    thread.join(10)
    [(payload, function_error, _)] = results
    assert function_error
    assert payload["errorType"] == "Runtime.ExitError"
    assert "signal: killed" in payload["errorMessage"]
    assert victim not in pool.worker_pids()
    again = stack.invoke("EchoFunction", {})
    assert again["pid"] != victim
    assert before  # sanity


def test_exit_in_handler_is_runtime_exit_error(stack: DevStack) -> None:
    payload, function_error, _ = stack.invoke_raw("EchoFunction", {"exit": 3})
    assert function_error
    assert payload["errorType"] == "Runtime.ExitError"
    assert payload["errorMessage"].endswith("exit status 3")


def test_parallel_invokes(stack: DevStack) -> None:
    started = time.monotonic()
    with ThreadPoolExecutor(8) as executor:
        results = list(
            executor.map(lambda _: stack.invoke("EchoFunction", {"sleep": 0.5}), range(8))
        )
    elapsed = time.monotonic() - started
    assert len(results) == 8
    pids = {r["pid"] for r in results}
    assert 1 < len(pids) <= stack.max_workers_per_function
    assert elapsed < 8  # 8 x 0.5 s over up to 4 workers, plus worker start-up


# ---------------------------------------------------------------------------------------------
# S3 -> Lambda notifications
# ---------------------------------------------------------------------------------------------


def test_s3_put_under_prefix_invokes_handler_with_s3_event(stack: DevStack) -> None:
    s3 = stack.client("s3")
    bucket = stack.outputs["BucketName"]
    table = stack.client("dynamodb")
    keys = ["inbox/my clip+1 é.mp4", "inbox/plain.mp4"]
    puts = {key: s3.put_object(Bucket=bucket, Key=key, Body=b"0123456789") for key in keys}
    s3.put_object(Bucket=bucket, Key="outbox/not-for-me.mp4", Body=b"x")
    stack.drain(30)

    records = {}
    for invocation in stack.async_invocations:
        assert invocation.errored is False, invocation.payload
        for record in invocation.event["Records"]:
            records[record["s3"]["object"]["key"]] = record
    assert set(records) == {"inbox/my+clip%2B1+%C3%A9.mp4", "inbox/plain.mp4"}
    for key in keys:
        item = table.get_item(
            TableName=stack.outputs["TableName"], Key={"pk": {"S": f"upload#{key}"}}
        )
        record = json.loads(item["Item"]["record"]["S"])
        obj = record["s3"]["object"]
        assert record["eventSource"] == "aws:s3"
        assert record["eventName"] == "ObjectCreated:Put"
        assert record["awsRegion"] == "us-east-1"
        assert record["s3"]["bucket"]["name"] == bucket
        assert record["s3"]["bucket"]["arn"] == f"arn:aws:s3:::{bucket}"
        assert obj["size"] == 10
        assert obj["eTag"] == puts[key]["ETag"].strip('"')
        assert obj["versionId"] == puts[key]["VersionId"]
        assert obj["sequencer"]
        assert record["s3"]["configurationId"] == "OnUploadFunctionUpload"
    missing = table.get_item(
        TableName=stack.outputs["TableName"], Key={"pk": {"S": "upload#outbox/not-for-me.mp4"}}
    )
    assert "Item" not in missing


# ---------------------------------------------------------------------------------------------
# Step Functions
# ---------------------------------------------------------------------------------------------


def test_state_machine_retries_custom_error_then_catches(stack: DevStack) -> None:
    sfn = stack.client("stepfunctions")
    arn = stack.outputs["StateMachineArn"]
    ok_key, fail_key = uuid.uuid4().hex, uuid.uuid4().hex
    ok = sfn.start_execution(
        stateMachineArn=arn,
        name=f"ok-{ok_key}",
        input=json.dumps({"key": ok_key, "throttle_times": 2, "then": "ok", "wait_seconds": 1}),
    )["executionArn"]
    failing = sfn.start_execution(
        stateMachineArn=arn,
        name=f"fail-{fail_key}",
        input=json.dumps({"key": fail_key, "throttle_times": 1, "then": "fail", "wait_seconds": 1}),
    )["executionArn"]

    done = stack.wait_for_execution(ok, timeout=40)
    assert done["status"] == "SUCCEEDED", stack.history(ok)[-3:]
    output = json.loads(done["output"])
    assert output["direct"] == {"attempts": 3}  # two ProviderThrottled retried (direct ARN)
    assert output["integrated"] == {"attempts": 3}  # ... and through lambda:invoke
    history = stack.history(ok)
    failed = [e for e in history if e["type"] in ("LambdaFunctionFailed", "TaskFailed")]
    assert [
        (e.get("lambdaFunctionFailedEventDetails") or e.get("taskFailedEventDetails"))["error"]
        for e in failed
    ] == ["ProviderThrottled"] * 4
    assert any(e["type"] == "WaitStateEntered" for e in history)
    assert ok_key in {e["name"].split("-", 1)[1] for e in stack.executions("FlowStateMachine")}

    done = stack.wait_for_execution(failing, timeout=40)
    assert done["status"] == "FAILED"
    assert done["error"] == "JobFailed"
    history = stack.history(failing)
    caught_direct = next(
        e
        for e in history
        if e["type"] == "TaskStateExited" and e["stateExitedEventDetails"]["name"] == "Direct"
    )
    direct_output = json.loads(caught_direct["stateExitedEventDetails"]["output"])
    assert direct_output["direct_error"]["Error"] == "ProviderGone"
    cause = json.loads(direct_output["direct_error"]["Cause"])
    assert cause["errorType"] == "ProviderGone"
    assert cause["errorMessage"] == "the provider lost the task"
    caught_integrated = next(
        e
        for e in history
        if e["type"] == "TaskStateExited" and e["stateExitedEventDetails"]["name"] == "Integrated"
    )
    integrated_output = json.loads(caught_integrated["stateExitedEventDetails"]["output"])
    assert integrated_output["integrated_error"]["Error"] == "ProviderGone"


# ---------------------------------------------------------------------------------------------
# the real application template (deployed, not invoked)
# ---------------------------------------------------------------------------------------------


def test_real_template_deploys(stack: DevStack) -> None:
    # Runs beside the fixture stack: stacks in one process share moto's state.
    from devstack.template import apply_globals, load_template

    template = apply_globals(load_template(ROOT / "template.yaml"))
    params = template.get("Parameters") or {}
    overrides = {
        "ProviderApiKeySecretArn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:x"
    }
    if "Default" not in params.get("ProviderBaseUrl", {"Default": ""}):
        overrides["ProviderBaseUrl"] = "http://127.0.0.1:9"
    with DevStack(ROOT / "template.yaml", overrides, stack_name="realsmoke") as real:
        resources = template["Resources"]
        wanted = {
            lid: res["Type"]
            for lid, res in resources.items()
            if res["Type"]
            in (
                "AWS::S3::Bucket",
                "AWS::DynamoDB::Table",
                "AWS::Serverless::Function",
                "AWS::Serverless::StateMachine",
                "AWS::SQS::Queue",
            )
            and "Condition" not in res
        }
        assert wanted and set(wanted) <= set(real.physical_ids)
        s3, ddb = real.client("s3"), real.client("dynamodb")
        lam, sfn = real.client("lambda"), real.client("stepfunctions")
        for lid, rtype in wanted.items():
            name = real.physical_ids[lid]
            if rtype == "AWS::S3::Bucket":
                s3.head_bucket(Bucket=name)
            elif rtype == "AWS::DynamoDB::Table":
                ddb.describe_table(TableName=name)
            elif rtype == "AWS::Serverless::Function":
                config = lam.get_function(FunctionName=name)["Configuration"]
                assert config["Environment"]["Variables"] == real.function_env(lid)
                assert (real.function_specs[lid].code_dir / "app.py").is_file()
                # Only the media functions carry the media layer (PyAV).
                media = [ROOT / "layers" / "media"] if lid in MEDIA_FUNCTIONS else []
                assert real.function_specs[lid].layer_dirs == [ROOT / "layers" / "dropcut", *media]
            elif rtype == "AWS::Serverless::StateMachine":
                definition = sfn.describe_state_machine(stateMachineArn=name)["definition"]
                assert "${" not in definition
                for state in json.loads(definition)["States"].values():
                    if state["Type"] != "Task":
                        continue
                    if state["Resource"].startswith("arn:aws:states:::lambda:invoke"):
                        lam.get_function(FunctionName=state["Parameters"]["FunctionName"])
                    elif ":lambda:" in state["Resource"]:
                        lam.get_function(FunctionName=state["Resource"])
        assert real.outputs and all(
            isinstance(v, str) and "${" not in v for v in real.outputs.values()
        )
        assert _stack_record(real) == (real.outputs, real.resolver.parameters)
        assert set(real.outputs) >= {"MediaBucketName", "JobsTableName", "JobStateMachineArn"}
    # the fixture stack still works after the second one stopped
    assert stack.invoke("EchoFunction", {})["layer"] == "hello from the layer"
