"""Run moto's Lambda functions as real Python handlers in warm worker processes.

moto 5.2.5 runs a function only through Docker, in `LambdaFunction._invoke_lambda(self, event)
-> (payload, errored, logs)`. `install_hook()` replaces that (internal, hence the pinned moto
version and the guard test) with a lookup of the function's `FunctionPool`: a few warm
`lambda_worker.py` processes (one invoke at a time each, like Lambda execution environments) that
import the handler once. Everything that invokes a function in moto goes through it: the Invoke
API, Step Functions tasks (direct ARN and `arn:aws:states:::lambda:invoke`), S3 notifications and
event source mappings.

Lambda semantics kept: the function's Timeout (the worker is killed, errorType
`Sandbox.Timedout`), a crashed environment (`Runtime.ExitError`, replaced on the next invoke),
init errors (`Runtime.ImportModuleError`, ...), the error payload of the Python runtime
(`errorMessage`, `errorType` = exception class name, `requestId`, `stackTrace`) which moto turns
into `FunctionError` and Step Functions into the error name matched by Retry/Catch.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

LOG = logging.getLogger("devstack.lambda")

WORKER_FILE = Path(__file__).with_name("lambda_worker.py")
MOTO_VERSION = "5.2.5"
HOLD_LIMIT_SECONDS = 120.0

# Only these are inherited from the parent environment; everything else comes from the template.
_INHERITED_ENV = ("PATH", "HOME", "LANG", "TMPDIR", "TEMP", "TMP", "SYSTEMROOT", "TZ")


class WorkerError(Exception):
    pass


class _Timeout(WorkerError):
    pass


class _Died(WorkerError):
    pass


@dataclass
class FunctionSpec:
    """What a worker needs to run one function, all resolved from the template."""

    logical_id: str
    function_name: str
    function_arn: str
    handler: str
    code_dir: Path
    layer_dirs: list[Path]
    environment: dict[str, str]
    timeout: int = 3
    memory_size: int = 128
    runtime: str = "python3.13"
    extra_paths: list[Path] = field(default_factory=list)

    @property
    def paths(self) -> list[str]:
        return [str(p) for p in [self.code_dir, *self.layer_dirs, *self.extra_paths]]


@dataclass
class InvokeResult:
    payload: str
    errored: bool
    logs: str
    request_id: str
    worker_pid: int | None = None


def base_environment() -> dict[str, str]:
    """The few variables a process needs from the parent (no AWS_*, no PYTHONPATH, ...)."""
    env = {k: v for k, v in os.environ.items() if k in _INHERITED_ENV or k.startswith("LC_")}
    env.setdefault("PATH", "/usr/bin:/bin")
    return env


def _now_iso() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


class Worker:
    """One warm environment: a `lambda_worker.py` process with the handler imported."""

    def __init__(self, spec: FunctionSpec, python: str, init_timeout: float) -> None:
        self.spec = spec
        fd, self.log_path = tempfile.mkstemp(prefix=f"dropcut-{spec.logical_id}-", suffix=".log")
        os.close(fd)
        # Its own /tmp, as each Lambda execution environment has (a step may clear what a
        # killed invocation left there: dropcut.model.media_tools.working_directory).
        self.tmp_dir = tempfile.mkdtemp(prefix=f"dropcut-{spec.logical_id}-tmp-")
        req_r, req_w = os.pipe()
        resp_r, resp_w = os.pipe()
        config = {
            "handler": spec.handler,
            "paths": spec.paths,
            "req_fd": req_r,
            "resp_fd": resp_w,
            "log_path": self.log_path,
        }
        with open(self.log_path, "ab") as early_log:
            self.proc = subprocess.Popen(
                [python, str(WORKER_FILE), json.dumps(config)],
                env={**spec.environment, "TMPDIR": self.tmp_dir},
                cwd=str(spec.code_dir),
                stdin=subprocess.DEVNULL,
                stdout=early_log,
                stderr=early_log,
                pass_fds=(req_r, resp_w),
                start_new_session=True,
            )
        os.close(req_r)
        os.close(resp_w)
        self._requests = os.fdopen(req_w, "wb", buffering=0)
        self._resp_fd = resp_r
        self._buffer = b""
        self.invocations = 0
        self.init_error: dict[str, Any] | None = None
        try:
            ready = self._read_message(init_timeout)
        except WorkerError:
            logs = self.read_logs()
            self.kill()
            raise WorkerError(f"{spec.logical_id}: worker did not start: {logs[-2000:]}") from None
        self.init_error = ready.get("init_error")
        self.init_logs = self.read_logs()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def read_logs(self) -> str:
        try:
            return Path(self.log_path).read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""

    def _read_message(self, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise _Timeout()
            ready, _, _ = select.select([self._resp_fd], [], [], remaining)
            if not ready:
                continue
            chunk = os.read(self._resp_fd, 1 << 20)
            if not chunk:
                raise _Died()
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        return json.loads(line)

    def invoke(self, event_json: str, request_id: str) -> InvokeResult:
        spec = self.spec
        self.invocations += 1
        date = dt.datetime.now(dt.UTC)
        context = {
            "function_name": spec.function_name,
            "function_version": "$LATEST",
            "invoked_function_arn": spec.function_arn,
            "memory_limit_in_mb": spec.memory_size,
            "aws_request_id": request_id,
            "log_group_name": f"/aws/lambda/{spec.function_name}",
            "log_stream_name": f"{date:%Y/%m/%d}/[$LATEST]{uuid.uuid4().hex}",
        }
        request = {
            "request_id": request_id,
            "event": event_json,
            "context": context,
            "timeout_ms": spec.timeout * 1000,
        }
        try:
            self._requests.write(json.dumps(request).encode("utf-8") + b"\n")
            message = self._read_message(spec.timeout)
        except _Timeout:
            self.kill()
            logs = self.read_logs()
            message_text = (
                f"RequestId: {request_id} Error: Task timed out after {spec.timeout:.2f} seconds"
            )
            logs += f"{_now_iso()} {message_text}\n"
            payload = {"errorMessage": message_text, "errorType": "Sandbox.Timedout"}
            return InvokeResult(json.dumps(payload), True, logs, request_id, self.pid)
        except (_Died, OSError):
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.kill()
            logs = self.read_logs()
            code = self.proc.returncode
            if code == -signal.SIGKILL:
                how = "signal: killed"
            elif code < 0:
                how = f"signal: {signal.Signals(-code).name.removeprefix('SIG').lower()}"
            else:
                how = f"exit status {code}"
            message_text = f"RequestId: {request_id} Error: Runtime exited with error: {how}"
            payload = {"errorMessage": message_text, "errorType": "Runtime.ExitError"}
            return InvokeResult(json.dumps(payload), True, logs, request_id, self.pid)
        return InvokeResult(
            message["payload"], not message["ok"], self.read_logs(), request_id, self.pid
        )

    def kill(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                self.proc.kill()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:  # pragma: no cover
            LOG.error("worker %s did not die", self.proc.pid)

    def close(self) -> None:
        """End of the request pipe: the worker exits; killed if it doesn't within 0.5 s."""
        with contextlib.suppress(OSError):
            self._requests.close()
        if self.proc.poll() is None:
            try:
                self.proc.wait(timeout=0.5)
            except subprocess.TimeoutExpired:
                self.kill()
        with contextlib.suppress(OSError):
            os.close(self._resp_fd)
        with contextlib.suppress(OSError):
            os.unlink(self.log_path)
        shutil.rmtree(self.tmp_dir, ignore_errors=True)


class FunctionPool:
    """Warm workers of one function: reuse an idle one, start another (up to `max_workers`),
    else wait for one to come back, as Lambda scales execution environments."""

    def __init__(
        self,
        spec: FunctionSpec,
        *,
        python: str = sys.executable,
        max_workers: int = 4,
        init_timeout: float = 60.0,
        log_sink: Any = None,
    ) -> None:
        self.spec = spec
        self.python = python
        self.max_workers = max_workers
        self.init_timeout = init_timeout
        self.log_sink = log_sink
        self._cond = threading.Condition()
        self._idle: list[Worker] = []
        self._all: set[Worker] = set()
        #: Workers running an invocation (between taking the request and giving the result).
        self._busy: set[Worker] = set()
        #: Workers `kill_busy` signalled: never reused, even if they still look alive.
        self._doomed: set[Worker] = set()
        self._starting = 0
        self._closed = False
        self.started_workers = 0
        self.invocations = 0
        self._door = threading.Event()
        self._door.set()
        #: Invocations that had to wait at a held door (see `held`).
        self.held_invocations = 0
        #: Workers killed by `kill_busy`.
        self.killed = 0

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        """Invocations wait at the door until the block ends (at most HOLD_LIMIT_SECONDS): a slow
        start on demand, so tests can order events that are otherwise a race."""
        self._door.clear()
        try:
            yield
        finally:
            self._door.set()

    def _acquire(self) -> Worker:
        with self._cond:
            while True:
                if self._closed:
                    raise WorkerError(f"{self.spec.logical_id}: the stack is stopped")
                while self._idle:
                    worker = self._idle.pop()
                    if worker.alive() and worker not in self._doomed:
                        return worker
                    self._discard(worker)
                if len(self._all) + self._starting < self.max_workers:
                    self._starting += 1
                    break
                self._cond.wait(1.0)
        try:
            worker = Worker(self.spec, self.python, self.init_timeout)
        except BaseException:
            with self._cond:
                self._starting -= 1
                self._cond.notify_all()
            raise
        with self._cond:
            self._starting -= 1
            self._all.add(worker)
            self.started_workers += 1
            if self._closed:
                self._discard(worker)
                raise WorkerError(f"{self.spec.logical_id}: the stack is stopped")
        return worker

    def _discard(self, worker: Worker) -> None:
        self._all.discard(worker)
        self._doomed.discard(worker)
        worker.close()
        self._cond.notify_all()

    def _release(self, worker: Worker, reusable: bool) -> None:
        with self._cond:
            self._busy.discard(worker)
            if reusable and worker.alive() and worker not in self._doomed and not self._closed:
                self._idle.append(worker)
                self._cond.notify_all()
            else:
                self._discard(worker)

    def invoke(self, event_json: str) -> InvokeResult:
        request_id = str(uuid.uuid4())
        with self._cond:
            self.invocations += 1
        if not self._door.is_set():
            with self._cond:
                self.held_invocations += 1
            self._door.wait(HOLD_LIMIT_SECONDS)
        try:
            worker = self._acquire()
        except WorkerError as exc:
            payload = {"errorMessage": str(exc), "errorType": "Runtime.Unknown"}
            return InvokeResult(json.dumps(payload), True, str(exc), request_id)
        if worker.init_error is not None:
            # Like Lambda: the failed init is reported and retried in a fresh environment.
            payload = dict(worker.init_error, requestId=request_id)
            self._release(worker, reusable=False)
            result = InvokeResult(json.dumps(payload), True, worker.init_logs, request_id)
        else:
            with self._cond:
                self._busy.add(worker)
            try:
                result = worker.invoke(event_json, request_id)
            except BaseException:
                self._release(worker, reusable=False)
                raise
            self._release(worker, reusable=worker.alive())
        self._emit_logs(result)
        return result

    def _emit_logs(self, result: InvokeResult) -> None:
        if self.log_sink is not None:
            try:
                self.log_sink(self.spec, result)
            except Exception:  # pragma: no cover
                LOG.exception("log sink failed")
        elif LOG.isEnabledFor(logging.DEBUG):
            for line in result.logs.splitlines():
                LOG.debug("[%s] %s", self.spec.logical_id, line)

    def worker_pids(self) -> list[int]:
        with self._cond:
            return [w.pid for w in self._all]

    def busy_pids(self) -> list[int]:
        """Workers running an invocation right now."""
        with self._cond:
            return [w.pid for w in self._busy]

    def busy_count(self) -> int:
        """How many workers are running an invocation right now."""
        with self._cond:
            return len(self._busy)

    def kill_busy(self, count: int = 1) -> list[int]:
        """Chaos: SIGKILL up to `count` workers that are running an invocation (never idle
        ones); their pids. Each interrupted invocation returns `Runtime.ExitError` ("signal:
        killed"), and the next invoke starts a fresh worker, as after a crashed environment."""
        killed: list[int] = []
        with self._cond:
            victims = [w for w in self._busy if w not in self._doomed and w.alive()]
            for worker in victims[: max(0, count)]:
                # Under the lock: the worker cannot go back to the idle list meanwhile.
                try:
                    os.killpg(worker.pid, signal.SIGKILL)  # its own session: children too
                except (ProcessLookupError, PermissionError):
                    with contextlib.suppress(ProcessLookupError):
                        worker.proc.send_signal(signal.SIGKILL)
                self._doomed.add(worker)
                killed.append(worker.pid)
            self.killed += len(killed)
        if killed:
            LOG.info("[%s] killed busy worker(s) %s", self.spec.logical_id, killed)
        return killed

    def close(self) -> None:
        with self._cond:
            self._closed = True
            workers = list(self._all)
            self._idle.clear()
            self._all.clear()
            self._busy.clear()
            self._doomed.clear()
            self._cond.notify_all()
        # Every worker told at once, then each reaped: they exit side by side.
        with ThreadPoolExecutor(max_workers=max(1, len(workers))) as closing:
            list(closing.map(_end, workers))


def _end(worker: Worker) -> None:
    worker.close()
    worker.kill()


# --------------------------------------------------------------------------------------------
# The moto hook
# --------------------------------------------------------------------------------------------

_REGISTRY: dict[str, FunctionPool] = {}
_REGISTRY_LOCK = threading.Lock()
_ORIGINAL_INVOKE_LAMBDA: Any = None


def register(pool: FunctionPool) -> None:
    with _REGISTRY_LOCK:
        _REGISTRY[pool.spec.function_arn] = pool


def unregister(pool: FunctionPool) -> None:
    with _REGISTRY_LOCK:
        if _REGISTRY.get(pool.spec.function_arn) is pool:
            del _REGISTRY[pool.spec.function_arn]


def pool_for(function_arn: str) -> FunctionPool | None:
    with _REGISTRY_LOCK:
        return _REGISTRY.get(function_arn)


def _hooked_invoke_lambda(self: Any, event: Any = None) -> tuple[str, bool, str]:
    """Replacement for moto's `LambdaFunction._invoke_lambda` (same signature and result)."""
    pool = pool_for(self.function_arn)
    if pool is None:
        message = (
            f"devstack: function {self.function_name} was not created from the template; "
            "the local stack can only run template functions"
        )
        return json.dumps({"errorMessage": message, "errorType": "Runtime.Unknown"}), True, ""
    # moto parses the request body; an empty body becomes the string "{}".
    if event is None or event == "{}":
        event = {}
    result = pool.invoke(json.dumps(event))
    try:
        self.logs_backend.ensure_log_group(self.logs_group_name)
        self.save_logs(result.logs or "(no output)")
    except Exception:  # pragma: no cover - CloudWatch copy is best effort
        LOG.debug("could not store logs of %s in moto", self.function_name, exc_info=True)
    return result.payload, result.errored, result.logs


_hooked_invoke_lambda.devstack_hook = True  # type: ignore[attr-defined]


def install_hook() -> None:
    """Replace moto's Docker-based `_invoke_lambda` (idempotent)."""
    global _ORIGINAL_INVOKE_LAMBDA
    import moto
    from moto.awslambda.models import LambdaFunction

    if moto.__version__ != MOTO_VERSION:
        raise RuntimeError(
            f"devstack patches moto internals tested with moto {MOTO_VERSION}, "
            f"found {moto.__version__}: re-check LambdaFunction._invoke_lambda and the tests"
        )
    if LambdaFunction._invoke_lambda is not _hooked_invoke_lambda:
        _ORIGINAL_INVOKE_LAMBDA = LambdaFunction._invoke_lambda
        LambdaFunction._invoke_lambda = _hooked_invoke_lambda
