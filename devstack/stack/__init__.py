"""The dropcut local stack: template.yaml deployed into an in-process moto server, no Docker.

    with DevStack("template.yaml", {"ProviderApiKeySecretArn": arn}) as stack:
        s3 = stack.client("s3")
        s3.put_object(Bucket=stack.outputs["MediaBucketName"], Key="inbox/a.mp4", Body=b"...")
        stack.drain()                      # S3 events are asynchronous, as in AWS
        [execution] = stack.executions()
        stack.wait_for_execution(execution["executionArn"], timeout=60)

What it does (see DESIGN.md "Local stack"):
- starts moto 5.2.5 (`ThreadedMotoServer`) in this process on 127.0.0.1 and switches on real
  Step Functions execution (`core`: `DevStack`, its lifecycle and what tests use);
- reads the template (short-form tags, SAM Globals, Parameters, Conditions, intrinsic
  functions) and creates its buckets, tables, queues, secrets, functions and state machines in
  moto; every name, setting and variable comes from the template (`provision`: order, names,
  Ref/GetAtt; `resources`: data stores and state machines; `lambdas`: functions; `creators`:
  which of them creates each resource type);
- runs every Lambda invoke (API, Step Functions, S3 notifications) as the real handler from the
  source tree (or `sam build` output) in warm worker processes (`devstack.lambda_runtime`);
- wires the functions' event sources (`events`): delivers S3 -> Lambda notifications
  asynchronously with S3's event shape (`devstack.s3_notifications`); polls the queues of SQS
  events as Lambda's event source mappings do (batches, batching window, partial batch
  responses, maximum concurrency; `devstack.sqs_events`); serves HttpApi routes
  (`devstack.http_api`); records schedules for `DevStack.fire_schedule`;
- registers a CloudFormation stack record named after the stack whose Outputs and Parameters are
  the template's resolved values, so tools find the stack as they find a deployed one
  (`describe-stacks`; the `dropcut` command line's `--local`).

Foreground mode (`cli`): `python -m devstack.stack [--port 4566] [--param Key=Value ...]`.
Several DevStacks in one process share moto's process-wide backends: give them different
stack names. The first one started resets moto.
"""

from devstack.stack.cli import describe, main
from devstack.stack.core import DevStack
from devstack.stack.errors import DevStackError, InvokeError

__all__ = ["DevStack", "DevStackError", "InvokeError", "describe", "main"]
