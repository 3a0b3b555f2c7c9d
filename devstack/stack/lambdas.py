"""The Lambda runtime glue: each template function becomes a moto function (so the Lambda API,
Step Functions and S3 know it) backed by a pool of warm worker processes that run the real
handler (`devstack.lambda_runtime`), with the environment Lambda would give it.
"""

from __future__ import annotations

import io
import json
import logging
import sys
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from devstack import lambda_runtime
from devstack.stack.resources import env_string
from devstack.template import TemplateError

if TYPE_CHECKING:
    from devstack.stack.provision import Provisioner

LOG = logging.getLogger("devstack.stack")

DUMMY_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
}


def create_function(p: Provisioner, logical_id: str, raw_props: dict[str, Any]) -> None:
    """A Python function: registered in moto (with a placeholder zip) and run by a pool of
    warm workers from its CodeUri (or the `sam build` output) with its layers on sys.path."""
    stack = p.stack
    resolve = p.resolver.resolve
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
    if stack.code_root is not None:
        code_dir = stack.code_root / logical_id
    else:
        code_uri = resolve(raw_props.get("CodeUri"))
        if not isinstance(code_uri, str):
            raise TemplateError(f"{logical_id}: only a local CodeUri is supported")
        code_dir = (p.template_dir / code_uri).resolve()
    layer_dirs = [
        d for d in (_layer_dir(p, layer) for layer in raw_props.get("Layers", [])) if d is not None
    ]
    variables = resolve((raw_props.get("Environment") or {}).get("Variables") or {})
    env_vars = {k: env_string(v) for k, v in variables.items()}
    p.function_env[logical_id] = env_vars

    name = p.lookup(logical_id, "Ref")
    arn = p.lookup(logical_id, "Arn")
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
            "AWS_REGION": stack.region,
            "AWS_DEFAULT_REGION": stack.region,
            "AWS_ENDPOINT_URL": stack.endpoint_url,
            "LAMBDA_TASK_ROOT": str(code_dir),
            "_HANDLER": handler,
            "TZ": "UTC",
            "POWERTOOLS_TRACE_DISABLED": "true",
            **DUMMY_CREDENTIALS,
        }
    )
    worker_env.update(stack.extra_env)
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
    p.client("lambda").create_function(
        FunctionName=name,
        Runtime=runtime,
        Role=p.lambda_role_arn,
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
        python=stack.python,
        max_workers=stack.max_workers_per_function,
        log_sink=_log_sink,
    )
    p.function_specs[logical_id] = spec
    p.pools[logical_id] = pool
    lambda_runtime.register(pool)


def _layer_dir(p: Provisioner, layer: Any) -> Path | None:
    """Where a layer's Python packages are (its /opt/python), if the template defines it."""
    if isinstance(layer, dict) and set(layer) == {"Ref"}:
        layer_id: str = layer["Ref"]
        resource = p.template["Resources"].get(layer_id)
        if resource and resource["Type"] in (
            "AWS::Serverless::LayerVersion",
            "AWS::Lambda::LayerVersion",
        ):
            if p.stack.code_root is not None:
                return p.stack.code_root / layer_id / "python"
            props = resource.get("Properties") or {}
            content = p.resolver.resolve(props.get("ContentUri") or props.get("Content"))
            if not isinstance(content, str):
                raise TemplateError(f"{layer_id}: only a local ContentUri is supported")
            path = (p.template_dir / content).resolve()
            if (path / "python").is_dir():
                return path / "python"  # built layer (e.g. sam build output): /opt/python
            return path  # BuildMethod: the source dir becomes python/ when built
    LOG.info("layer %r is not in the template: not available locally", layer)
    return None


def _dummy_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("README.txt", "devstack runs the handler from the source tree\n")
    return buffer.getvalue()


def _log_sink(spec: lambda_runtime.FunctionSpec, result: lambda_runtime.InvokeResult) -> None:
    logger = logging.getLogger(f"devstack.lambda.{spec.logical_id}")
    level = logging.WARNING if result.errored else logging.INFO
    if logger.isEnabledFor(level):
        for line in result.logs.rstrip("\n").splitlines():
            logger.log(level, "%s", line)


def invoke_direct(
    account_id: str, region: str, function_arn: str, event: dict[str, Any]
) -> tuple[str, bool]:
    """Run a function through moto's Lambda backend in this process (no HTTP), as event
    sources do: (the payload as text, whether it is a function error)."""
    from moto.awslambda.utils import get_backend

    function = get_backend(account_id, region).get_function(function_arn)
    headers: dict[str, str] = {}
    payload = function.invoke(json.dumps(event), {}, headers)
    text = payload.decode("utf-8") if isinstance(payload, bytes) else str(payload)
    return text, "x-amz-function-error" in headers


def close_pools(pools: dict[str, lambda_runtime.FunctionPool]) -> None:
    """Unregister every pool from the invoke hook and stop its workers, every pool at once (a
    worker takes up to 0.5 s to exit: one after the other, a stack's took seconds)."""
    for pool in pools.values():
        lambda_runtime.unregister(pool)
    with ThreadPoolExecutor(max_workers=max(1, len(pools))) as closing:
        list(closing.map(lambda pool: pool.close(), pools.values()))
