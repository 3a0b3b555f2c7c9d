"""A warm Lambda-like Python environment: imports one handler once, then serves invokes.

Started by `devstack.lambda_runtime` as `python lambda_worker.py '<json config>'` (standard library
only, so it runs with whatever the function has on its path). Protocol, one JSON object per line:

- on a dedicated pipe `resp_fd` the worker first sends `{"ready": true, "init_error": ...}`, then
  one `{"ok": bool, "payload": "<json text>"}` per request;
- on `req_fd` it reads `{"request_id", "event": "<json text>", "context": {...},
  "timeout_ms"}` and exits at end of file (the parent is gone or stopped the worker).

The handler's stdout and stderr (fd 1 and 2, so loggers bound at import time are caught too) go
to the file `log_path`, which the worker truncates before each invoke; the parent reads it as the
invoke's log (also after a timeout or a crash).
"""

from __future__ import annotations

import contextlib
import importlib
import json
import logging
import os
import sys
import time
import traceback
from typing import Any

_THIS_FILE = os.path.abspath(__file__)


class LambdaContext:
    """The attributes of the Python runtime's context object that handlers and Powertools read."""

    def __init__(self, data: dict[str, Any], timeout_ms: int) -> None:
        self.function_name: str = data["function_name"]
        self.function_version: str = data.get("function_version", "$LATEST")
        self.invoked_function_arn: str = data["invoked_function_arn"]
        self.memory_limit_in_mb: int = int(data["memory_limit_in_mb"])
        self.aws_request_id: str = data["aws_request_id"]
        self.log_group_name: str = data["log_group_name"]
        self.log_stream_name: str = data["log_stream_name"]
        self.identity = None
        self.client_context = None
        self.tenant_id = None
        self._deadline = time.monotonic() + timeout_ms / 1000.0

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))

    def log(self, message: str) -> None:
        sys.stdout.write(message)
        sys.stdout.flush()

    def __repr__(self) -> str:
        return f"LambdaContext({self.function_name}, {self.aws_request_id})"


def _stack_trace(exc: BaseException) -> list[str]:
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename != _THIS_FILE]
    return traceback.format_list(frames)


def _error_payload(
    exc: BaseException,
    request_id: str | None,
    error_type: str | None = None,
    message: str | None = None,
) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "errorMessage": str(exc) if message is None else message,
        "errorType": error_type or type(exc).__name__,
    }
    if request_id is not None:
        payload["requestId"] = request_id
    payload["stackTrace"] = _stack_trace(exc)
    return payload


def _log_exception(exc: BaseException, error_type: str, message: str) -> None:
    # The Python runtime writes "[ERROR] Type: message" plus the traceback to the log.
    sys.stderr.write(f"[ERROR] {error_type}: {message}\n")
    sys.stderr.write("Traceback (most recent call last):\n")
    sys.stderr.write("".join(_stack_trace(exc)))


def _load_handler(handler: str) -> tuple[Any, dict[str, Any] | None]:
    module_path, _, function_name = handler.rpartition(".")
    module_name = module_path.replace("/", ".")
    try:
        module = importlib.import_module(module_name)
    except SyntaxError as exc:
        msg = f"Syntax error in module '{module_name}': {exc}"
        _log_exception(exc, "Runtime.UserCodeSyntaxError", msg)
        return None, _error_payload(exc, None, "Runtime.UserCodeSyntaxError", msg)
    except ImportError as exc:
        msg = f"Unable to import module '{module_name}': {exc}"
        _log_exception(exc, "Runtime.ImportModuleError", msg)
        return None, _error_payload(exc, None, "Runtime.ImportModuleError", msg)
    except Exception as exc:
        _log_exception(exc, type(exc).__name__, str(exc))
        return None, _error_payload(exc, None)
    func = getattr(module, function_name, None)
    if func is None:
        msg = f"Handler '{function_name}' missing on module '{module_name}'"
        return None, {"errorMessage": msg, "errorType": "Runtime.HandlerNotFound", "stackTrace": []}
    return func, None


def _flush() -> None:
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):  # a closed stream must not kill the worker
            stream.flush()


def main() -> None:
    config = json.loads(sys.argv[1])
    # Lambda's path: the function code, then each layer, then the runtime's own packages.
    if sys.path and os.path.abspath(sys.path[0] or ".") == os.path.dirname(_THIS_FILE):
        del sys.path[0]
    for path in reversed(config["paths"]):
        sys.path.insert(0, path)
    os.chdir(config["paths"][0])

    log_file = open(config["log_path"], "r+b", buffering=0)  # noqa: SIM115
    os.dup2(log_file.fileno(), 1)
    os.dup2(log_file.fileno(), 2)
    # Output shows up even when the invoke is then killed (timeout), as in Lambda.
    for stream in (sys.stdout, sys.stderr):
        stream.reconfigure(line_buffering=True, write_through=True)  # type: ignore[attr-defined]
    requests = os.fdopen(config["req_fd"], "rb")
    responses = os.fdopen(config["resp_fd"], "wb", buffering=0)

    def send(message: dict[str, Any]) -> None:
        responses.write(json.dumps(message).encode("utf-8") + b"\n")

    # Like the Lambda Python runtime: the root logger writes WARNING and above to the log.
    logging.basicConfig(
        level=logging.WARNING,
        stream=sys.stderr,
        format="[%(levelname)s]\t%(asctime)s\t%(message)s",
    )

    handler, init_error = _load_handler(config["handler"])
    _flush()
    send({"ready": True, "init_error": init_error})
    if init_error is not None:
        return

    while True:
        line = requests.readline()
        if not line:
            return
        request = json.loads(line)
        request_id = request["request_id"]
        _flush()
        log_file.seek(0)
        log_file.truncate()
        context = LambdaContext(request["context"], request["timeout_ms"])
        sys.stdout.write(f"START RequestId: {request_id} Version: {context.function_version}\n")
        started = time.monotonic()
        try:
            event = json.loads(request["event"])
            result = handler(event, context)
            try:
                message = {"ok": True, "payload": json.dumps(result)}
            except (TypeError, ValueError) as exc:
                msg = f"Unable to marshal response: {exc}"
                _log_exception(exc, "Runtime.MarshalError", msg)
                message = {
                    "ok": False,
                    "payload": json.dumps(
                        _error_payload(exc, request_id, "Runtime.MarshalError", msg)
                    ),
                }
        except Exception as exc:
            _log_exception(exc, type(exc).__name__, str(exc))
            message = {"ok": False, "payload": json.dumps(_error_payload(exc, request_id))}
        _flush()
        elapsed = (time.monotonic() - started) * 1000
        sys.stdout.write(
            f"END RequestId: {request_id}\nREPORT RequestId: {request_id}\t"
            f"Duration: {elapsed:.2f} ms\n"
        )
        _flush()
        send(message)


if __name__ == "__main__":
    main()
