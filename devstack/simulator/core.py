"""The simulator's task store: tasks, counters, fault rules, stats and the limits on creation.

Both provider APIs share one ``Engine``: one lock, one set of tasks (the concurrency limit and the
credits count both APIs together), one set of counters. What differs between the APIs (task ids,
status words, error bodies, response bodies) is a ``ProviderApi`` subclass, one per API module.
"""

from __future__ import annotations

import copy
import math
import re
import shutil
import tempfile
import threading
import time
import urllib.parse
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from devstack.simulator.config import TASK_FAULTS, SimConfig, coerce_config, normalise_fault
from devstack.simulator.editor import MediaError, fetch, probe_video_bytes

_STATUSES = ("queued", "running", "completed", "failed")  # a task's internal statuses
_DIRECTIVE_SECONDS = re.compile(r"\[sim:seconds=([0-9]+(?:\.[0-9]+)?)\]", re.IGNORECASE)


@dataclass
class TaskRequest:
    """What a create request asks for, once the API module has parsed and checked it."""

    prompt: str
    body: dict[str, Any]
    video_url: str
    image_url: str | None
    keep_audio: bool
    aspect_ratio: str | None
    callback_url: str | None


@dataclass(kw_only=True)
class Task(TaskRequest):
    """A task: its request and its bookkeeping (internal status, timing, edit, result link)."""

    id: str
    api: str
    created: int  # unix seconds
    created_mono: float
    queue_seconds: float
    duration: float
    directive: str  # "" | "fail" | "never"
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
    input_path: str = ""  # the input URL's path, without query string or signature
    fail_reason: str | None = None  # why a "fail" directive fails (prompt or fault rule)

    @property
    def finished(self) -> bool:
        """True once the task has completed or failed."""
        return self.status in ("completed", "failed")


class Answer(Exception):
    """Raised by routes to answer with a status and JSON body."""

    def __init__(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        super().__init__(status)
        self.status = status
        self.body = body
        self.headers = headers or {}


class ProviderApi(ABC):
    """One provider API over the shared ``Engine``: its ids, status words, errors and bodies."""

    name: ClassVar[str]
    status_words: ClassVar[tuple[str, str, str, str]]  # for queued, running, completed, failed
    unauthorized_message: ClassVar[str | None]  # None: the API's default message for the status
    no_credits_message: ClassVar[str | None]
    concurrency_message: ClassVar[str]
    concurrency_retry_after: ClassVar[str]

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @abstractmethod
    def error(self, status: int, message: str | None = None) -> Answer:
        """The API's error answer for ``status`` (its default message when ``message`` is None)."""

    @abstractmethod
    def new_task_id(self) -> str:
        """A fresh task id in the API's format."""

    @abstractmethod
    def create(self, body: Any) -> Answer:
        """Check a create request's JSON body and create the task. Raises ``Answer`` if refused."""

    @abstractmethod
    def body(self, t: Task) -> dict[str, Any]:
        """The task as the API's query answers it (call with the engine lock held)."""

    def public_status(self, t: Task) -> str:
        """The task's status in the API's words."""
        return self.status_words[_STATUSES.index(t.status)]

    def error_code(self, code: str) -> str:
        """The API's form of a snake_case failure code (evolink's business codes as they are)."""
        return code

    def check_auth(self, authorization: str) -> None:
        """Raise the API's 401 unless ``authorization`` is ``Bearer <an accepted key>``."""
        scheme, _, key = authorization.partition(" ")
        if scheme.lower() != "bearer" or key.strip() not in self.engine.config.api_keys:
            raise self.error(401, self.unauthorized_message)

    @abstractmethod
    def task_finished(self, t: Task) -> None:
        """Called (without the lock) once a task of this API has completed or failed."""


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


def input_path(url: str) -> str:
    """The path of an input URL (percent-decoded), without its query string (a presigned URL's
    signature) or host; ``data:`` for a data URI."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme == "data":
        return "data:"
    return urllib.parse.unquote(parts.path)


def _new_counters() -> dict[str, Any]:
    return {
        "tasks_created": 0,
        "tasks_created_by_api": {"aimlapi": 0, "evolink": 0},
        "tasks_created_by_input": {},  # input URL path -> tasks created
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


def _contains(text: str | None, needle: str | None) -> bool:
    """True without a needle; else whether ``text`` has it (case-insensitive)."""
    return not needle or (text is not None and needle.lower() in text.lower())


class Engine:
    """The state both APIs share, behind one lock; ``wake`` is notified when tasks change."""

    def __init__(self, config: SimConfig) -> None:
        self.initial_config = copy.deepcopy(config)
        self.config = copy.deepcopy(config)
        self.config.faults = [normalise_fault(f) for f in self.config.faults]
        self.apis: dict[str, ProviderApi] = {}  # by name; the Simulator fills it in
        self.lock = threading.RLock()
        self.wake = threading.Condition(self.lock)
        self.stopping = threading.Event()
        self.tasks: dict[str, Task] = {}
        self.tokens: dict[str, Task] = {}
        self.generation = 0
        self.counters = _new_counters()
        self.workdir = Path(tempfile.mkdtemp(prefix="dropcut-sim-"))
        self.server_url: str | None = None  # set while the HTTP server runs

    # ---- control ------------------------------------------------------------------------------

    def configure(self, **changes: Any) -> SimConfig:
        """Merge ``changes`` into the config (``faults`` is replaced as a whole)."""
        changes = coerce_config(changes)
        with self.lock:
            for k, v in changes.items():
                setattr(self.config, k, v)
            return self.config

    def add_fault(self, **rule: Any) -> None:
        """Append a fault rule."""
        with self.lock:
            self.config.faults.append(normalise_fault(rule))

    def hurry(self) -> int:
        """End the wait of every unfinished task now: queued ones start, running ones complete
        as soon as their edit is done (a test's fast-forward; ``[sim:never]`` tasks stay). The
        number of tasks hurried."""
        with self.lock:
            waiting = [t for t in self.tasks.values() if not t.finished]
            for t in waiting:
                t.queue_seconds = 0.0
                t.duration = 0.0
            self.wake.notify_all()
            return len(waiting)

    def reset(self, *, config: bool = False) -> None:
        """Forget tasks, counters and faults; with ``config=True`` also restore the start config."""
        with self.lock:
            self.generation += 1
            self.tasks.clear()
            self.tokens.clear()
            self.counters = _new_counters()
            if config:
                self.config = copy.deepcopy(self.initial_config)
            self.config.faults = []
        out = self.workdir / "results"
        shutil.rmtree(out, ignore_errors=True)

    # ---- stats --------------------------------------------------------------------------------

    def in_flight(self) -> int:
        """Unfinished tasks, both APIs together (call with the lock held)."""
        return sum(1 for t in self.tasks.values() if not t.finished)

    def stats(self) -> dict[str, Any]:
        """The counters, the pending faults and every task (see the package docstring)."""
        with self.lock:
            s = copy.deepcopy(self.counters)
            s["in_flight"] = self.in_flight()
            s["credits_remaining"] = self.config.credits
            s["faults_pending"] = copy.deepcopy(self.config.faults)
            s["tasks"] = [
                {
                    "id": t.id,
                    "api": t.api,
                    "prompt": t.prompt,
                    "input_path": t.input_path,
                    "status": self.apis[t.api].public_status(t),
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
                for t in self.tasks.values()
            ]
            return s

    def count(self, counter: str) -> None:
        """Add one to a counter."""
        with self.lock:
            self.counters[counter] += 1

    def count_request(self, api: str, op: str) -> None:
        """Count a request received (``requests["<api>.<op>"]``), faulted or not."""
        with self.lock:
            key = f"{api}.{op}"
            reqs = self.counters["requests"]
            reqs[key] = reqs.get(key, 0) + 1

    # ---- faults -------------------------------------------------------------------------------

    def take_fault(
        self,
        api: str,
        op: str,
        kinds: tuple[str, ...],
        prompt: str | None = None,
        input_path: str | None = None,
    ) -> dict[str, Any] | None:
        """Use up one application of the first rule that matches; a copy of it, or None.

        A rule's ``prompt_contains`` / ``input_contains`` (case-insensitive substrings) restrict
        it to a ``prompt`` / an ``input_path`` that has them; its ``for_seconds`` limits it to
        that long after it first applied (``times`` -1: every request until then)."""
        with self.lock:
            for rule in self.config.faults:
                if rule["kind"] not in kinds or rule["times"] == 0:
                    continue
                if "applies_until" in rule and time.time() >= rule["applies_until"]:
                    continue
                if rule["api"] not in (api, "*") or rule["op"] not in (op, "*"):
                    continue
                if rule["kind"] in ("accept_then_slow", "accept_then_error") and op != "create":
                    continue
                if op == "callback" and rule["kind"] == "slow" and rule["op"] != "callback":
                    continue  # a generic "slow" rule is meant for requests
                if not _contains(prompt, rule.get("prompt_contains")):
                    continue
                if not _contains(input_path, rule.get("input_contains")):
                    continue
                if rule["times"] > 0:
                    rule["times"] -= 1
                if "for_seconds" in rule and "applies_until" not in rule:
                    rule["applies_until"] = time.time() + float(rule["for_seconds"])
                self.counters["faults_applied"] += 1
                return dict(rule)
        return None

    def sleep(self, seconds: float) -> None:
        """Sleep, but wake up when the simulator stops."""
        self.stopping.wait(max(0.0, float(seconds)))

    # ---- tasks --------------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """Where clients reach the simulator (``public_base_url`` or the server's own URL)."""
        url = self.config.public_base_url or self.server_url
        if url is None:
            raise RuntimeError("simulator not started")
        return url.rstrip("/")

    def result_url(self, t: Task) -> str:
        """The completed task's result link."""
        return f"{self.base_url}/_sim/results/{t.token}/output.mp4"

    def progress(self, t: Task) -> int:
        """0 while queued, 1..99 while running (by elapsed run time), 100 once completed."""
        if t.status == "queued":
            return 0
        if t.status == "completed":
            return 100
        if t.started_mono is None:
            return 0
        end = t.finished_mono if t.finished_mono is not None else time.monotonic()
        elapsed = end - t.started_mono
        return int(max(1, min(99, 100 * elapsed / max(t.duration, 1e-3))))

    def find(self, api: str, task_id: str) -> Task | None:
        """The task of that API with that id (call with the lock held)."""
        t = self.tasks.get(task_id)
        return t if t is not None and t.api == api else None

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

    def create_task(self, api: str, request: TaskRequest) -> Task:
        """Check limits (429/402) and create the task. Raises ``Answer`` when refused."""
        # The real providers read the clip's duration at creation (task_info.video_duration,
        # credits_reserved): probe it now; an unreadable input still creates a task that then
        # fails when it starts (as the providers report media problems).
        provider = self.apis[api]
        duration = self._probe_duration(request.video_url)
        video_duration = round(duration) if duration is not None else 0
        cost: float = _billed_seconds(duration or 0.0) * self.config.credits_per_second
        if float(cost).is_integer():
            cost = int(cost)
        directive, seconds = _directive(request.prompt)
        with self.lock:
            cfg = self.config
            if cfg.concurrency_limit is not None and self.in_flight() >= cfg.concurrency_limit:
                self.counters["status_429"] += 1
                self.counters["status_429_concurrency"] += 1
                ans = provider.error(429, provider.concurrency_message)
                ans.headers["Retry-After"] = provider.concurrency_retry_after
                raise ans
            if cfg.credits is not None and cfg.credits < cost:
                raise provider.error(402, provider.no_credits_message)
            if cfg.credits is not None:
                cfg.credits -= cost
            path = input_path(request.video_url)
            fault = None
            if directive != "never":
                fault = self.take_fault(api, "create", TASK_FAULTS, request.prompt, path)
            fail_reason = "Simulated failure ([sim:fail] in the prompt)"
            if fault is not None:
                directive = "fail"
                fail_reason = (
                    "Simulated failure (fault rule fail_task: input path contains "
                    f"{fault.get('input_contains')!r})"
                )
            task_id = provider.new_task_id()
            t = Task(
                **vars(request),
                id=task_id,
                api=api,
                created=int(time.time()),
                created_mono=time.monotonic(),
                queue_seconds=float(cfg.queue_seconds),
                duration=float(seconds if seconds is not None else cfg.task_seconds),
                directive=directive,
                video_duration=video_duration,
                credits=cost,
                generation=self.generation,
                input_path=path,
                fail_reason=fail_reason,
            )
            self.tasks[task_id] = t
            c = self.counters
            c["tasks_created"] += 1
            c["tasks_created_by_api"][api] = c["tasks_created_by_api"].get(api, 0) + 1
            by_input = c["tasks_created_by_input"]
            by_input[path] = by_input.get(path, 0) + 1
            c["credits_spent"] += cost
            c["max_in_flight"] = max(c["max_in_flight"], self.in_flight())
            self.wake.notify_all()
            return t
