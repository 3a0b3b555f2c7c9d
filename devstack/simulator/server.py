"""Provider simulator: both Kling O1 video-edit APIs (aimlapi and evolink) on one local HTTP server.

See the package docstring (``devstack.simulator``) for the behaviour, directives and faults.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import ipaddress
import json
import math
import re
import secrets
import shutil
import socket
import string
import struct
import tempfile
import threading
import time
import urllib.parse
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

from devstack.simulator.editor import EditSpec, MediaError, edit_video, fetch, probe_video_bytes

AIMLAPI_MODEL = "klingai/video-o1-video-to-video-edit"
EVOLINK_MODEL = "kling-o1-video-edit"
EVOLINK_ASPECT_RATIOS = ("16:9", "9:16", "1:1")
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp")

REQUEST_FAULTS = (
    "throttle",
    "unavailable",
    "slow",
    "reset",
    "malformed",
    "accept_then_slow",
)
CALLBACK_FAULTS = ("lost_callback", "duplicate_callback", "out_of_order_callback", "slow")
FAULT_KINDS = tuple(dict.fromkeys(REQUEST_FAULTS + CALLBACK_FAULTS))
APIS = ("aimlapi", "evolink")
OPS = ("create", "query", "result", "callback")

EVOLINK_ERROR_TYPES = {
    400: ("invalid_request_error", "Invalid request parameter", None),
    401: ("authentication_error", "Invalid or expired token", None),
    402: (
        "insufficient_quota_error",
        "Insufficient quota",
        "https://ai.odkkk.com/apiv1/dashboard/billing",
    ),
    403: ("permission_error", "Access denied for this model", None),
    404: ("not_found_error", "Specified model not found", "kling-o1-video-edit"),
    429: ("rate_limit_error", "Rate limit exceeded", "retry after 60 seconds"),
    500: ("internal_server_error", "Internal server error", "try again later"),
    502: ("upstream_error", "Upstream AI service unavailable", "try different model"),
    503: ("service_unavailable_error", "Service temporarily unavailable", "retry after 30 seconds"),
}

_DIRECTIVE_SECONDS = re.compile(r"\[sim:seconds=([0-9]+(?:\.[0-9]+)?)\]", re.IGNORECASE)


@dataclass
class SimConfig:
    """Simulator behaviour. Every field can be changed at run time (``/_sim/config``)."""

    api_keys: set[str] = field(default_factory=lambda: {"sim-key"})
    task_seconds: float = 3.0
    queue_seconds: float = 0.5
    estimated_time: int | None = None  # None: ceil(queue_seconds + task_seconds)
    result_url_ttl_seconds: float = 86400.0
    allow_insecure_callbacks: bool = False
    concurrency_limit: int | None = None
    credits: float | None = None
    faults: list[dict[str, Any]] = field(default_factory=list)
    callback_timeout_seconds: float = 10.0
    callback_retry_delays: list[float] = field(default_factory=lambda: [1.0, 2.0, 4.0])
    # Extras (simulator-only knobs)
    credits_per_second: float = 1.0
    max_video_bytes: int = 100 * 1024 * 1024
    max_image_bytes: int = 10 * 1024 * 1024
    fetch_timeout_seconds: float = 30.0
    edit_workers: int = 2
    public_base_url: str | None = None

    def to_json(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["api_keys"] = sorted(self.api_keys)
        return d


_CONFIG_FIELDS = {f.name for f in dataclasses.fields(SimConfig)}


def _coerce_config(changes: dict[str, Any]) -> dict[str, Any]:
    unknown = set(changes) - _CONFIG_FIELDS
    if unknown:
        raise ValueError(f"unknown config field(s): {sorted(unknown)}")
    out = dict(changes)
    if "api_keys" in out:
        keys = out["api_keys"]
        out["api_keys"] = {keys} if isinstance(keys, str) else set(keys)
    if "faults" in out:
        faults = out["faults"]
        if not isinstance(faults, list):
            raise ValueError("faults must be a list")
        out["faults"] = [_normalise_fault(f) for f in faults]
    if "callback_retry_delays" in out:
        out["callback_retry_delays"] = [float(x) for x in out["callback_retry_delays"]]
    return out


def _normalise_fault(rule: Any) -> dict[str, Any]:
    if not isinstance(rule, dict):
        raise ValueError("a fault rule must be an object")
    r = dict(rule)
    r.setdefault("api", "*")
    r.setdefault("op", "*")
    r.setdefault("times", 1)
    kind = r.get("kind")
    if kind not in FAULT_KINDS:
        raise ValueError(f"unknown fault kind {kind!r}; expected one of {FAULT_KINDS}")
    if r["api"] not in (*APIS, "*"):
        raise ValueError(f"unknown api {r['api']!r}")
    if r["op"] not in (*OPS, "*"):
        raise ValueError(f"unknown op {r['op']!r}")
    if kind == "accept_then_slow" and r["op"] not in ("create", "*"):
        raise ValueError("accept_then_slow applies to op 'create' only")
    if kind == "unavailable" and int(r.get("status", 503)) not in (500, 502, 503):
        raise ValueError("unavailable.status must be 500, 502 or 503")
    return r


@dataclass
class Task:
    id: str
    api: str
    prompt: str
    body: dict[str, Any]
    created: int  # unix seconds
    created_mono: float
    queue_seconds: float
    duration: float
    directive: str  # "" | "fail" | "never"
    video_url: str
    image_url: str | None
    keep_audio: bool
    aspect_ratio: str | None
    callback_url: str | None
    video_duration: int
    credits: float
    generation: int
    status: str = "queued"  # internal: queued | running | completed | failed
    started_mono: float | None = None
    finished_mono: float | None = None
    edit_state: str = "idle"  # idle | running | done | error
    error_code: str | None = None
    error_message: str | None = None
    output: Path | None = None
    token: str | None = None
    expires_at: float | None = None  # monotonic
    callbacks: list[dict[str, Any]] = field(default_factory=list)

    @property
    def finished(self) -> bool:
        return self.status in ("completed", "failed")


class _Answer(Exception):
    """Raised by routes to answer with a status and JSON body."""

    def __init__(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        super().__init__(status)
        self.status = status
        self.body = body
        self.headers = headers or {}


def _aiml_error(status: int, message: str) -> _Answer:
    # NestJS-style body, as aimlapi's gateway answers: {"statusCode", "message", "error"}.
    return _Answer(
        status, {"statusCode": status, "message": message, "error": HTTPStatus(status).phrase}
    )


def _evo_error(
    status: int,
    message: str | None = None,
    *,
    param: str | None = None,
    code: int | str | None = None,
    type_: str | None = None,
    fallback: str | None = None,
) -> _Answer:
    etype, emsg, efallback = EVOLINK_ERROR_TYPES.get(status, ("api_error", "Error", None))
    err: dict[str, Any] = {
        "code": status if code is None else code,
        "message": message or emsg,
        "type": type_ or etype,
    }
    if param:
        err["param"] = param
    fb = fallback if fallback is not None else efallback
    if fb and status in (402, 404, 429, 500, 502, 503) and not (status == 404 and param != "model"):
        err["fallback_suggestion"] = fb
    return _Answer(status, {"error": err})


def _api_error(api: str, status: int, message: str | None = None, **kw: Any) -> _Answer:
    if api == "aimlapi":
        return _aiml_error(status, message or HTTPStatus(status).phrase)
    return _evo_error(status, message, **kw)


def _is_loopback_host(host: str) -> bool:
    host = host.lower().strip("[]")
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _is_private_host(host: str) -> bool:
    host = host.lower().strip("[]")
    if _is_loopback_host(host):
        return True
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return False
    return (
        ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_reserved
        or ip.is_unspecified
        or ip.is_multicast
    )


def _valid_input_url(value: Any, *, allow_data: bool) -> bool:
    """https URL, data URI (aimlapi), or the simulator allowance: http on a loopback host."""
    if not isinstance(value, str) or not value:
        return False
    if allow_data and value.startswith("data:"):
        return "," in value
    try:
        parts = urllib.parse.urlsplit(value)
    except ValueError:
        return False
    if not parts.hostname:
        return False
    if parts.scheme == "https":
        return True
    return parts.scheme == "http" and _is_loopback_host(parts.hostname)


def _is_uri(value: Any) -> bool:
    if not isinstance(value, str) or not value:
        return False
    if value.startswith("data:"):
        return True
    try:
        parts = urllib.parse.urlsplit(value)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def _billed_seconds(duration: float) -> int:
    return int(min(10, max(3, math.ceil(duration - 1e-6))))


def _directive(prompt: str) -> tuple[str, float | None]:
    p = prompt.lower()
    seconds = None
    m = _DIRECTIVE_SECONDS.search(prompt)
    if m:
        seconds = float(m.group(1))
    if "[sim:never]" in p:
        return "never", seconds
    if "[sim:fail]" in p:
        return "fail", seconds
    return "", seconds


class Simulator:
    """The provider simulator. ``start()`` serves in a background thread; ``stop()`` ends it."""

    def __init__(
        self, config: SimConfig | None = None, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        self._initial_config = copy.deepcopy(config or SimConfig())
        self.config = copy.deepcopy(self._initial_config)
        self.config.faults = [_normalise_fault(f) for f in self.config.faults]
        self.host = host
        self.port = port
        self._lock = threading.RLock()
        self._wake = threading.Condition(self._lock)
        self._stopping = threading.Event()
        self._tasks: dict[str, Task] = {}
        self._tokens: dict[str, Task] = {}
        self._generation = 0
        self._counters = self._new_counters()
        self._workdir = Path(tempfile.mkdtemp(prefix="dropcut-sim-"))
        self._pool: ThreadPoolExecutor | None = None
        self._server: ThreadingHTTPServer | None = None
        self._threads: list[threading.Thread] = []

    # ---- lifecycle ----------------------------------------------------------------------------

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("simulator not started")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def base_url(self) -> str:
        return (self.config.public_base_url or self.url).rstrip("/")

    def start(self) -> Simulator:
        if self._server is not None:
            return self
        handler = type("_BoundHandler", (_Handler,), {"sim": self})
        server = _Server((self.host, self.port), handler)
        self._workdir.mkdir(parents=True, exist_ok=True)
        self._server = server
        self._pool = ThreadPoolExecutor(
            max_workers=max(1, self.config.edit_workers), thread_name_prefix="sim-edit"
        )
        self._stopping.clear()
        t1 = threading.Thread(
            target=server.serve_forever, args=(0.05,), name="sim-http", daemon=True
        )
        t2 = threading.Thread(target=self._scheduler, name="sim-scheduler", daemon=True)
        self._threads = [t1, t2]
        t1.start()
        t2.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        with self._wake:
            self._wake.notify_all()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        for t in self._threads:
            t.join(timeout=5)
        self._threads = []
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
        self._server = None
        shutil.rmtree(self._workdir, ignore_errors=True)

    def __enter__(self) -> Simulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- control ------------------------------------------------------------------------------

    def configure(self, **changes: Any) -> SimConfig:
        """Merge ``changes`` into the config (``faults`` is replaced as a whole)."""
        changes = _coerce_config(changes)
        with self._lock:
            for k, v in changes.items():
                setattr(self.config, k, v)
            return self.config

    def add_fault(self, **rule: Any) -> None:
        with self._lock:
            self.config.faults.append(_normalise_fault(rule))

    def reset(self, *, config: bool = False) -> None:
        """Forget tasks, counters and faults; with ``config=True`` also restore the start config."""
        with self._lock:
            self._generation += 1
            self._tasks.clear()
            self._tokens.clear()
            self._counters = self._new_counters()
            if config:
                self.config = copy.deepcopy(self._initial_config)
            self.config.faults = []
        out = self._workdir / "results"
        shutil.rmtree(out, ignore_errors=True)

    @staticmethod
    def _new_counters() -> dict[str, Any]:
        return {
            "tasks_created": 0,
            "tasks_created_by_api": {"aimlapi": 0, "evolink": 0},
            "max_in_flight": 0,
            "requests": {},
            "callbacks_sent": 0,
            "callbacks_delivered": 0,
            "callbacks_failed": 0,
            "callbacks_dropped": 0,
            "status_429": 0,
            # 429s for going over concurrency_limit (the client's doing, unlike throttle faults)
            "status_429_concurrency": 0,
            "faults_applied": 0,
            "credits_spent": 0,
        }

    def _in_flight(self) -> int:
        return sum(1 for t in self._tasks.values() if not t.finished)

    def stats(self) -> dict[str, Any]:
        with self._lock:
            s = copy.deepcopy(self._counters)
            s["in_flight"] = self._in_flight()
            s["credits_remaining"] = self.config.credits
            s["faults_pending"] = copy.deepcopy(self.config.faults)
            s["tasks"] = [
                {
                    "id": t.id,
                    "api": t.api,
                    "prompt": t.prompt,
                    "status": self._public_status(t),
                    "internal_status": t.status,
                    "created": t.created,
                    "created_at": time.time() - (time.monotonic() - t.created_mono),
                    # wall clock, so it compares with the pipeline's own timestamps
                    "finished_at": (
                        time.time() - (time.monotonic() - t.finished_mono)
                        if t.finished_mono is not None
                        else None
                    ),
                    "credits": t.credits,
                    "error": (
                        {"code": t.error_code, "message": t.error_message}
                        if t.status == "failed"
                        else None
                    ),
                    "callbacks": list(t.callbacks),
                }
                for t in self._tasks.values()
            ]
            return s

    def task(self, task_id: str) -> Task | None:
        with self._lock:
            return self._tasks.get(task_id)

    # ---- counting & faults --------------------------------------------------------------------

    def _count_request(self, api: str, op: str) -> None:
        with self._lock:
            key = f"{api}.{op}"
            reqs = self._counters["requests"]
            reqs[key] = reqs.get(key, 0) + 1

    def _take_fault(
        self, api: str, op: str, kinds: tuple[str, ...], prompt: str | None = None
    ) -> dict[str, Any] | None:
        with self._lock:
            for rule in self.config.faults:
                if rule["kind"] not in kinds or rule["times"] == 0:
                    continue
                if rule["api"] not in (api, "*") or rule["op"] not in (op, "*"):
                    continue
                if rule["kind"] == "accept_then_slow" and op != "create":
                    continue
                if op == "callback" and rule["kind"] == "slow" and rule["op"] != "callback":
                    continue  # a generic "slow" rule is meant for requests
                needle = rule.get("prompt_contains")
                if needle and (prompt is None or needle.lower() not in prompt.lower()):
                    continue
                if rule["times"] > 0:
                    rule["times"] -= 1
                self._counters["faults_applied"] += 1
                return dict(rule)
        return None

    def _sleep(self, seconds: float) -> None:
        self._stopping.wait(max(0.0, float(seconds)))

    # ---- statuses & bodies --------------------------------------------------------------------

    def _public_status(self, t: Task) -> str:
        if t.api == "aimlapi":
            return {
                "queued": "queued",
                "running": "generating",
                "completed": "completed",
                "failed": "error",
            }[t.status]
        return {
            "queued": "pending",
            "running": "processing",
            "completed": "completed",
            "failed": "failed",
        }[t.status]

    def _result_url(self, t: Task) -> str:
        return f"{self.base_url}/_sim/results/{t.token}/output.mp4"

    def _progress(self, t: Task) -> int:
        if t.status == "queued":
            return 0
        if t.status == "completed":
            return 100
        if t.started_mono is None:
            return 0
        end = t.finished_mono if t.finished_mono is not None else time.monotonic()
        elapsed = end - t.started_mono
        return int(max(1, min(99, 100 * elapsed / max(t.duration, 1e-3))))

    def _aiml_body(self, t: Task) -> dict[str, Any]:
        body: dict[str, Any] = {"id": t.id, "status": self._public_status(t)}
        if t.status == "completed":
            body["video"] = {"url": self._result_url(t)}
            body["meta"] = {"usage": {"credits_used": t.credits}}
        elif t.status == "failed":
            body["error"] = {"name": t.error_code or "Error", "message": t.error_message or ""}
        return body

    def _evo_body(self, t: Task, *, creation: bool = False) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": t.id,
            "object": "video.generation.task",
            "created": t.created,
            "model": EVOLINK_MODEL,
            "status": self._public_status(t),
            "progress": self._progress(t),
            "type": "video",
        }
        info: dict[str, Any] = {"can_cancel": t.status == "queued"}
        if creation:
            est = self.config.estimated_time
            if est is None:
                est = math.ceil(t.queue_seconds + t.duration)
            info["estimated_time"] = int(est)
            info["video_duration"] = t.video_duration
        body["task_info"] = info
        if t.status == "completed":
            body["results"] = [self._result_url(t)]
        elif t.status == "failed":
            body["error"] = {"code": t.error_code or "failed", "message": t.error_message or ""}
        body["usage"] = {
            "billing_rule": "per_second",
            "credits_reserved": t.credits,
            "user_group": "default",
        }
        return body

    def body_for(self, t: Task) -> dict[str, Any]:
        with self._lock:
            return self._aiml_body(t) if t.api == "aimlapi" else self._evo_body(t)

    # ---- task creation ------------------------------------------------------------------------

    def _probe_duration(self, url: str) -> float | None:
        try:
            data = fetch(
                url,
                max_bytes=self.config.max_video_bytes,
                timeout=min(self.config.fetch_timeout_seconds, 10.0),
            )
            return probe_video_bytes(data)
        except MediaError:
            return None

    def _create_task(
        self,
        api: str,
        *,
        prompt: str,
        body: dict[str, Any],
        video_url: str,
        image_url: str | None,
        keep_audio: bool,
        aspect_ratio: str | None,
        callback_url: str | None,
    ) -> Task:
        """Check limits (429/402) and create the task. Raises ``_Answer`` when refused."""
        # The real providers read the clip's duration at creation (task_info.video_duration,
        # credits_reserved): probe it now; an unreadable input still creates a task that then
        # fails when it starts (as the providers report media problems).
        duration = self._probe_duration(video_url)
        video_duration = round(duration) if duration is not None else 0
        cost: float = _billed_seconds(duration or 0.0) * self.config.credits_per_second
        if float(cost).is_integer():
            cost = int(cost)
        directive, seconds = _directive(prompt)
        with self._lock:
            cfg = self.config
            if cfg.concurrency_limit is not None and self._in_flight() >= cfg.concurrency_limit:
                self._counters["status_429"] += 1
                self._counters["status_429_concurrency"] += 1
                if api == "aimlapi":
                    raise _Answer(
                        429,
                        {
                            "statusCode": 429,
                            "message": "Too many concurrent generations",
                            "error": "Too Many Requests",
                        },
                        {"Retry-After": "1"},
                    )
                ans = _evo_error(429, "Too many concurrent tasks")
                ans.headers["Retry-After"] = "60"
                raise ans
            if cfg.credits is not None and cfg.credits < cost:
                if api == "aimlapi":
                    raise _aiml_error(402, "Insufficient credits")
                raise _evo_error(402)
            if cfg.credits is not None:
                cfg.credits -= cost
            if api == "aimlapi":
                task_id = f"{uuid.uuid4()}:{AIMLAPI_MODEL}"
            else:
                alphabet = string.ascii_lowercase + string.digits
                suffix = "".join(secrets.choice(alphabet) for _ in range(8))
                task_id = f"task-unified-{int(time.time())}-{suffix}"
            t = Task(
                id=task_id,
                api=api,
                prompt=prompt,
                body=body,
                created=int(time.time()),
                created_mono=time.monotonic(),
                queue_seconds=float(cfg.queue_seconds),
                duration=float(seconds if seconds is not None else cfg.task_seconds),
                directive=directive,
                video_url=video_url,
                image_url=image_url,
                keep_audio=keep_audio,
                aspect_ratio=aspect_ratio,
                callback_url=callback_url,
                video_duration=video_duration,
                credits=cost,
                generation=self._generation,
            )
            self._tasks[task_id] = t
            c = self._counters
            c["tasks_created"] += 1
            c["tasks_created_by_api"][api] = c["tasks_created_by_api"].get(api, 0) + 1
            c["credits_spent"] += cost
            c["max_in_flight"] = max(c["max_in_flight"], self._in_flight())
            self._wake.notify_all()
            return t

    # ---- the clock ----------------------------------------------------------------------------

    def _scheduler(self) -> None:
        while not self._stopping.is_set():
            finished: list[Task] = []
            with self._wake:
                now = time.monotonic()
                for t in list(self._tasks.values()):
                    if t.status == "queued" and now >= t.created_mono + t.queue_seconds:
                        t.status = "running"
                        t.started_mono = now
                        if t.directive == "" and self._pool is not None:
                            t.edit_state = "running"
                            self._pool.submit(self._run_edit, t)
                    if t.status == "running" and t.directive != "never":
                        assert t.started_mono is not None
                        due = now >= t.started_mono + t.duration
                        if t.edit_state == "error":
                            t.status = "failed"
                        elif t.directive == "fail" and due:
                            t.status = "failed"
                            t.error_code = (
                                "GenerationError" if t.api == "aimlapi" else "generation_failed"
                            )
                            t.error_message = "Simulated failure ([sim:fail] in the prompt)"
                        elif t.edit_state == "done" and due:
                            t.status = "completed"
                            t.token = secrets.token_urlsafe(24)
                            t.expires_at = now + float(self.config.result_url_ttl_seconds)
                            self._tokens[t.token] = t
                        if t.finished:
                            t.finished_mono = now
                            finished.append(t)
                self._wake.wait(timeout=0.02)
            for t in finished:
                if t.api == "evolink" and t.callback_url:
                    self._schedule_callbacks(t)

    def _run_edit(self, t: Task) -> None:
        cfg = self.config
        out_dir = self._workdir / "results" / uuid.uuid4().hex
        try:
            data = fetch(
                t.video_url, max_bytes=cfg.max_video_bytes, timeout=cfg.fetch_timeout_seconds
            )
            probe_video_bytes(data)
            image = None
            if t.image_url:
                image = fetch(
                    t.image_url,
                    max_bytes=cfg.max_image_bytes,
                    timeout=cfg.fetch_timeout_seconds,
                    what="image",
                )
            out_dir.mkdir(parents=True, exist_ok=True)
            output = out_dir / "output.mp4"
            edit_video(
                data,
                output,
                EditSpec(
                    prompt=t.prompt,
                    keep_audio=t.keep_audio,
                    aspect_ratio=t.aspect_ratio,
                    reference_image=image,
                ),
            )
        except MediaError as exc:
            with self._wake:
                t.edit_state = "error"
                if t.api == "aimlapi":
                    t.error_code = "".join(p.capitalize() for p in exc.code.split("_"))
                else:
                    t.error_code = exc.code
                t.error_message = exc.message
                self._wake.notify_all()
            return
        except Exception as exc:  # a bug in the simulator still ends the task
            with self._wake:
                t.edit_state = "error"
                t.error_code = "InternalError" if t.api == "aimlapi" else "internal_error"
                t.error_message = f"{type(exc).__name__}: {exc}"
                self._wake.notify_all()
            return
        with self._wake:
            t.output = output
            t.edit_state = "done"
            self._wake.notify_all()

    # ---- callbacks ----------------------------------------------------------------------------

    def _schedule_callbacks(self, t: Task) -> None:
        assert t.callback_url
        fault = self._take_fault("evolink", "callback", CALLBACK_FAULTS, t.prompt)
        final = self.body_for(t)
        bodies: list[dict[str, Any]] = [final]
        delay = 0.0
        if fault is not None:
            kind = fault["kind"]
            if kind == "lost_callback":
                with self._lock:
                    self._counters["callbacks_dropped"] += 1
                    t.callbacks.append({"event": "dropped"})
                return
            if kind == "duplicate_callback":
                bodies = [final] * max(1, int(fault.get("count", 2)))
            elif kind == "out_of_order_callback":
                stale = copy.deepcopy(final)
                stale["status"] = "processing"
                stale["progress"] = 50
                stale.pop("results", None)
                stale.pop("error", None)
                bodies = [final, stale]
            elif kind == "slow":
                delay = float(fault.get("delay", 5.0))
        generation = t.generation
        th = threading.Thread(
            target=self._deliver_all,
            args=(t, t.callback_url, bodies, delay, generation),
            name=f"sim-callback-{t.id}",
            daemon=True,
        )
        th.start()

    def _deliver_all(
        self, t: Task, url: str, bodies: list[dict[str, Any]], delay: float, generation: int
    ) -> None:
        if delay:
            self._sleep(delay)
        for body in bodies:
            self._deliver(t, url, body, generation)

    def _deliver(self, t: Task, url: str, body: dict[str, Any], generation: int) -> None:
        delays = [0.0, *self.config.callback_retry_delays]
        payload = json.dumps(body).encode()
        for attempt, wait in enumerate(delays):
            if wait:
                self._sleep(wait)
            if self._stopping.is_set() or generation != self._generation:
                return
            with self._lock:
                self._counters["callbacks_sent"] += 1
            status: int | None = None
            err: str | None = None
            try:
                resp = httpx.post(
                    url,
                    content=payload,
                    headers={"Content-Type": "application/json", "User-Agent": "dropcut-sim"},
                    timeout=self.config.callback_timeout_seconds,
                )
                status = resp.status_code
            except httpx.HTTPError as exc:
                err = f"{type(exc).__name__}: {exc}"
            ok = status is not None and 200 <= status < 300
            with self._lock:
                if generation != self._generation:
                    return
                t.callbacks.append(
                    {
                        "attempt": attempt + 1,
                        "status": status,
                        "error": err,
                        "body_status": body["status"],
                    }
                )
                if ok:
                    self._counters["callbacks_delivered"] += 1
                    return
        with self._lock:
            if generation == self._generation:
                self._counters["callbacks_failed"] += 1

    # ---- request handling (called by the handler) ---------------------------------------------

    def _check_auth(self, api: str, headers: Any) -> None:
        auth = headers.get("Authorization", "")
        scheme, _, key = auth.partition(" ")
        if scheme.lower() != "bearer" or key.strip() not in self.config.api_keys:
            if api == "aimlapi":
                raise _aiml_error(401, "Unauthorized: invalid or missing API key")
            raise _evo_error(401)

    def aiml_create(self, body: Any) -> _Answer:
        def bad(msg: str) -> _Answer:
            return _aiml_error(400, msg)

        if not isinstance(body, dict):
            raise bad("Request body must be a JSON object")
        if body.get("model") != AIMLAPI_MODEL:
            raise bad(f"model must be one of: {AIMLAPI_MODEL}")
        prompt = body.get("prompt")
        if not isinstance(prompt, str) or not prompt:
            raise bad("prompt is required and must be a string")
        if len(prompt) > 2500:
            raise bad("prompt must be shorter than or equal to 2500 characters")
        video_url = body.get("video_url")
        if video_url is None:
            raise bad("video_url is required")
        if not _valid_input_url(video_url, allow_data=True):
            raise bad("video_url must be a HTTPS URL or a data URI")
        image_url = None
        if "image_list" in body:
            il = body["image_list"]
            if not isinstance(il, list) or not 1 <= len(il) <= 7:
                raise bad("image_list must contain between 1 and 7 items")
            if not all(_is_uri(u) for u in il):
                raise bad("each value in image_list must be a URL address")
            image_url = il[0]
        if "elements" in body:
            els = body["elements"]
            if not isinstance(els, list) or len(els) > 4:
                raise bad("elements must contain no more than 4 items")
            for i, el in enumerate(els):
                if not isinstance(el, dict):
                    raise bad(f"elements.{i} must be an object")
                if not _is_uri(el.get("frontal_image_url")):
                    raise bad(f"elements.{i}.frontal_image_url must be a URL address")
                refs = el.get("reference_image_urls")
                if not isinstance(refs, list) or not 1 <= len(refs) <= 4:
                    raise bad(f"elements.{i}.reference_image_urls must contain 1 to 4 items")
                if not all(_is_uri(u) for u in refs):
                    raise bad(f"each value in elements.{i}.reference_image_urls must be a URL")
            if image_url is None and els:
                image_url = els[0]["frontal_image_url"]
        keep_audio = body.get("keep_audio", False)
        if not isinstance(keep_audio, bool):
            raise bad("keep_audio must be a boolean value")
        t = self._create_task(
            "aimlapi",
            prompt=prompt,
            body=body,
            video_url=video_url,
            image_url=image_url,
            keep_audio=keep_audio,
            aspect_ratio=None,
            callback_url=None,
        )
        return _Answer(200, {"id": t.id, "status": "queued"})

    def aiml_query(self, query: dict[str, list[str]]) -> _Answer:
        ids = query.get("generation_id")
        if not ids or not ids[0]:
            raise _aiml_error(400, "generation_id is required")
        with self._lock:
            t = self._tasks.get(ids[0])
            if t is None or t.api != "aimlapi":
                raise _aiml_error(404, "Generation not found")
            return _Answer(200, self._aiml_body(t))

    def evo_create(self, body: Any) -> _Answer:
        def bad(msg: str, param: str | None = None) -> _Answer:
            return _evo_error(400, msg, param=param)

        if not isinstance(body, dict):
            raise bad("Request body must be a JSON object")
        model = body.get("model", EVOLINK_MODEL)
        if model != EVOLINK_MODEL:
            raise _evo_error(404, param="model")
        prompt = body.get("prompt")
        if not isinstance(prompt, str) or not prompt:
            raise bad("prompt is required", "prompt")
        if len(prompt) > 5000:
            raise bad("prompt must not exceed 5000 characters", "prompt")
        vids = body.get("video_urls")
        if not isinstance(vids, list) or len(vids) != 1:
            raise bad("video_urls must contain exactly 1 video URL", "video_urls")
        if not _valid_input_url(vids[0], allow_data=False):
            raise bad("video_urls[0] must be a directly accessible video URL", "video_urls")
        image_url = None
        if "image_urls" in body:
            imgs = body["image_urls"]
            if not isinstance(imgs, list) or not 1 <= len(imgs) <= 4:
                raise bad("image_urls supports 1 to 4 reference images", "image_urls")
            for u in imgs:
                if not _is_uri(u) or u.startswith("data:"):
                    raise bad("image_urls must contain image URLs", "image_urls")
                ext = Path(urllib.parse.urlsplit(u).path).suffix.lower()
                # no extension (e.g. an opaque key): the content is checked when fetched
                if ext and ext not in IMAGE_EXTENSIONS:
                    raise bad(
                        "image_urls supports .jpg, .jpeg, .png and .webp images", "image_urls"
                    )
            image_url = imgs[0]
        aspect = body.get("aspect_ratio")
        if aspect is not None and aspect not in EVOLINK_ASPECT_RATIOS:
            raise bad("aspect_ratio must be one of 16:9, 9:16, 1:1", "aspect_ratio")
        keep = body.get("keep_original_sound", False)
        if not isinstance(keep, bool):
            raise bad("keep_original_sound must be a boolean", "keep_original_sound")
        cb = body.get("callback_url")
        if cb is not None:
            self._check_callback_url(cb)
        t = self._create_task(
            "evolink",
            prompt=prompt,
            body=body,
            video_url=vids[0],
            image_url=image_url,
            keep_audio=keep,
            aspect_ratio=aspect,
            callback_url=cb,
        )
        return _Answer(200, self._evo_creation_body(t))

    def _evo_creation_body(self, t: Task) -> dict[str, Any]:
        with self._lock:
            body = self._evo_body(t, creation=True)
            body["status"] = "pending"
            body["progress"] = 0
            body["task_info"]["can_cancel"] = True
            return body

    def _check_callback_url(self, cb: Any) -> None:
        param = "callback_url"
        if not isinstance(cb, str) or not cb:
            raise _evo_error(400, "callback_url must be a string", param=param)
        if len(cb) > 2048:
            raise _evo_error(400, "callback_url must not exceed 2048 characters", param=param)
        try:
            parts = urllib.parse.urlsplit(cb)
            host = parts.hostname
        except ValueError:
            host = None
            parts = None
        if parts is None or not host or parts.scheme not in ("http", "https"):
            raise _evo_error(400, "callback_url must be a valid URL", param=param)
        if self.config.allow_insecure_callbacks:
            return
        if parts.scheme != "https":
            raise _evo_error(400, "callback_url must use HTTPS", param=param)
        if _is_private_host(host):
            raise _evo_error(
                400, "callback_url must not point to an internal IP address", param=param
            )

    def evo_query(self, task_id: str) -> _Answer:
        if not task_id.startswith("task-unified-"):
            raise _evo_error(400, "Invalid task ID format", code="invalid_task_id", param="task_id")
        with self._lock:
            t = self._tasks.get(task_id)
            if t is None or t.api != "evolink":
                raise _evo_error(404, "Task not found", param="task_id", type_="not_found_error")
            return _Answer(200, self._evo_body(t))


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256  # bursts of hundreds of creates must not overflow the backlog


class _Handler(BaseHTTPRequestHandler):
    sim: Simulator
    protocol_version = "HTTP/1.0"
    server_version = "dropcut-sim/1.0"
    sys_version = ""

    def log_message(self, format: str, *args: Any) -> None:
        pass

    # -- plumbing --

    def _send(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        if isinstance(body, bytes | str):
            data = body.encode() if isinstance(body, str) else body
            ctype = "text/plain; charset=utf-8"
        else:
            data = json.dumps(body).encode()
            ctype = "application/json"
        headers = dict(headers or {})
        headers.setdefault("Content-Type", ctype)
        try:
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError, OSError):
            self.close_connection = True

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _json_body(self, api: str, raw: bytes) -> Any:
        try:
            return json.loads(raw or b"null")
        except ValueError as exc:
            raise _api_error(api, 400, "Request body is not valid JSON") from exc

    def _reset_connection(self) -> None:
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        with contextlib.suppress(OSError):
            self.connection.close()
        self.close_connection = True

    def finish(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            super().finish()

    # -- fault handling for provider requests --

    def _apply_request_fault(self, api: str, op: str) -> dict[str, Any] | None:
        """Apply a matching fault. Returns the rule if the request was answered (or dropped)."""
        fault = self.sim._take_fault(api, op, REQUEST_FAULTS)
        if fault is None:
            return None
        kind = fault["kind"]
        if kind == "slow":
            self.sim._sleep(float(fault.get("delay", 30.0)))
            if op != "create":
                return None  # then answer normally
            # a slow create never reaches the backend: no task, a late 503
            ans = _api_error(api, 503)
            self._send(503, ans.body)
            return fault
        if kind == "accept_then_slow":
            return fault  # the create route handles it
        if kind == "throttle":
            retry_after = fault.get("retry_after", 1)
            with self.sim._lock:
                self.sim._counters["status_429"] += 1
            ans = _api_error(api, 429)
            self._send(429, ans.body, {"Retry-After": str(retry_after)})
        elif kind == "unavailable":
            status = int(fault.get("status", 503))
            ans = _api_error(api, status)
            self._send(status, ans.body)
        elif kind == "reset":
            self._reset_connection()
        elif kind == "malformed":
            self._send(200, b'{"id": "task-unified-trunc', {"Content-Type": "application/json"})
        return fault

    # -- routes --

    def do_HEAD(self) -> None:
        self.do_GET()

    def do_GET(self) -> None:
        parts = urllib.parse.urlsplit(self.path)
        path = parts.path
        try:
            if path.startswith("/_sim/"):
                self._control_get(path)
            elif path.endswith("/v2/video/generations"):
                self.sim._count_request("aimlapi", "query")
                if self._apply_request_fault("aimlapi", "query"):
                    return
                self.sim._check_auth("aimlapi", self.headers)
                ans = self.sim.aiml_query(urllib.parse.parse_qs(parts.query))
                self._send(ans.status, ans.body, ans.headers)
            elif m := re.search(r"/v1/tasks/([^/]+)$", path):
                self.sim._count_request("evolink", "query")
                if self._apply_request_fault("evolink", "query"):
                    return
                self.sim._check_auth("evolink", self.headers)
                ans = self.sim.evo_query(urllib.parse.unquote(m.group(1)))
                self._send(ans.status, ans.body, ans.headers)
            else:
                self._send(
                    404, {"error": {"code": 404, "message": "Not found", "type": "not_found_error"}}
                )
        except _Answer as ans:
            self._send(ans.status, ans.body, ans.headers)

    def do_POST(self) -> None:
        path = urllib.parse.urlsplit(self.path).path
        raw = self._read_body()
        try:
            if path.startswith("/_sim/"):
                self._control_post(path, raw)
                return
            if path.endswith("/v2/video/generations"):
                api = "aimlapi"
            elif path.endswith("/v1/videos/generations"):
                api = "evolink"
            else:
                self._send(
                    404, {"error": {"code": 404, "message": "Not found", "type": "not_found_error"}}
                )
                return
            self.sim._count_request(api, "create")
            fault = self._apply_request_fault(api, "create")
            if fault and fault["kind"] != "accept_then_slow":
                return
            self.sim._check_auth(api, self.headers)
            body = self._json_body(api, raw)
            ans = self.sim.aiml_create(body) if api == "aimlapi" else self.sim.evo_create(body)
            if fault:  # accept_then_slow: the task exists, the answer comes too late
                self.sim._sleep(float(fault.get("delay", 30.0)))
            self._send(ans.status, ans.body, ans.headers)
        except _Answer as ans:
            self._send(ans.status, ans.body, ans.headers)

    # -- control & results --

    def _control_get(self, path: str) -> None:
        sim = self.sim
        if path == "/_sim/stats":
            self._send(200, sim.stats())
        elif path == "/_sim/config":
            with sim._lock:
                self._send(200, sim.config.to_json())
        elif path == "/_sim/health":
            self._send(200, {"ok": True})
        elif m := re.fullmatch(r"/_sim/results/([A-Za-z0-9_-]+)/output\.mp4", path):
            self._serve_result(m.group(1))
        else:
            self._send(404, {"error": "not found"})

    def _control_post(self, path: str, raw: bytes) -> None:
        sim = self.sim
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            self._send(400, {"error": "body must be JSON"})
            return
        if path == "/_sim/config":
            if not isinstance(body, dict):
                self._send(400, {"error": "body must be a JSON object"})
                return
            try:
                cfg = sim.configure(**body)
            except (ValueError, TypeError) as exc:
                self._send(400, {"error": str(exc)})
                return
            with sim._lock:
                self._send(200, cfg.to_json())
        elif path == "/_sim/reset":
            sim.reset(config=bool(isinstance(body, dict) and body.get("config")))
            self._send(200, {"ok": True})
        else:
            self._send(404, {"error": "not found"})

    def _serve_result(self, token: str) -> None:
        sim = self.sim
        with sim._lock:
            t = sim._tokens.get(token)
            api = t.api if t else "*"
        sim._count_request(api if t else "unknown", "result")
        if t is not None and self._apply_request_fault(api, "result"):
            return
        if t is None or t.output is None or not t.output.exists():
            self._send(
                404,
                '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>NoSuchKey</Code>'
                "<Message>The specified key does not exist.</Message></Error>",
                {"Content-Type": "application/xml"},
            )
            return
        assert t.expires_at is not None
        if time.monotonic() >= t.expires_at:
            self._send(
                403,
                '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code>'
                "<Message>Request has expired</Message></Error>",
                {"Content-Type": "application/xml"},
            )
            return
        size = t.output.stat().st_size
        try:
            self.send_response(200)
            self.send_header("Content-Type", "video/mp4")
            self.send_header("Content-Length", str(size))
            self.end_headers()
            if self.command == "HEAD":
                return
            with t.output.open("rb") as fh:
                shutil.copyfileobj(fh, self.wfile, 64 * 1024)
        except (BrokenPipeError, ConnectionResetError, OSError):
            self.close_connection = True
