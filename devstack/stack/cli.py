"""Foreground mode: `python -m devstack.stack [--port 4566] [--param Key=Value ...]` runs the
stack until Ctrl-C and prints what it created and how to try it (`describe`)."""

from __future__ import annotations

import argparse
import logging
import signal
import threading

from devstack import lambda_runtime
from devstack.stack.core import DevStack


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


def _key_values(items: list[str], what: str) -> dict[str, str]:
    result = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"{what} must be Key=Value, got {item!r}")
        result[key] = value
    return result


def describe(stack: DevStack) -> str:
    """A human summary: endpoint, resources, and how to try it."""
    lines = [
        f"dropcut local stack '{stack.stack_name}' running (moto {lambda_runtime.MOTO_VERSION})",
        f"  endpoint   {stack.endpoint_url}   region {stack.region}",
        "  credentials: any (e.g. AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing); "
        "AWS_IAM routes of the HTTP API check the signature: testing/testing is the root",
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
