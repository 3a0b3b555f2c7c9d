"""The simulator's configuration (``SimConfig``) and the fault rules it may hold.

See the package docstring (``devstack.simulator``) for what each field and fault kind does.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

REQUEST_FAULTS = (
    "throttle",
    "unavailable",
    "slow",
    "reset",
    "malformed",
    "accept_then_slow",
    "accept_then_error",
    "html_page",
    "redirect",
    "gone",
    "noise_video",
)
#: What a gateway may answer for a create its backend accepted: its 5xx and 408, or (200) a 2xx
#: whose body is cut off.
ACCEPT_THEN_ERROR_STATUSES = (200, 408, 500, 502, 503, 504)
CALLBACK_FAULTS = ("lost_callback", "duplicate_callback", "out_of_order_callback", "slow")
TASK_FAULTS = ("fail_task",)
FAULT_KINDS = tuple(dict.fromkeys(REQUEST_FAULTS + CALLBACK_FAULTS + TASK_FAULTS))
#: The short form of a fail_task rule: {"fail_task_when_input_contains": "part-0001", "times": 1}.
FAIL_TASK_SHORTHAND = "fail_task_when_input_contains"
APIS = ("aimlapi", "evolink")
OPS = ("create", "query", "result", "callback")


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
    # True: an input outside the model's documented limits (devstack.simulator.limits) makes the
    # task fail as the provider reports a bad input. Off by default until dropcut prepares media.
    strict: bool = False

    def to_json(self) -> dict[str, Any]:
        """The config as JSON-ready data (``api_keys`` as a sorted list)."""
        d = dataclasses.asdict(self)
        d["api_keys"] = sorted(self.api_keys)
        return d


_CONFIG_FIELDS = {f.name for f in dataclasses.fields(SimConfig)}


def coerce_config(changes: dict[str, Any]) -> dict[str, Any]:
    """Check and normalise config ``changes`` (as sent to ``/_sim/config``); ValueError if bad."""
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
        out["faults"] = [normalise_fault(f) for f in faults]
    if "strict" in out and not isinstance(out["strict"], bool):
        raise ValueError("strict must be true or false")
    if "callback_retry_delays" in out:
        out["callback_retry_delays"] = [float(x) for x in out["callback_retry_delays"]]
    return out


def normalise_fault(rule: Any) -> dict[str, Any]:
    """Check a fault rule and fill in its defaults (api and op ``*``, ``times`` 1)."""
    if not isinstance(rule, dict):
        raise ValueError("a fault rule must be an object")
    r = dict(rule)
    if FAIL_TASK_SHORTHAND in r:
        if r.setdefault("kind", "fail_task") != "fail_task":
            raise ValueError(f"{FAIL_TASK_SHORTHAND} makes a fail_task rule")
        r["input_contains"] = r.pop(FAIL_TASK_SHORTHAND)
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
    _check_create_only(kind, r)
    if kind == "fail_task":
        if r["op"] not in ("create", "*"):
            raise ValueError("fail_task applies to op 'create' only")
        r["op"] = "create"
        needle = r.get("input_contains")
        if needle is not None and (not isinstance(needle, str) or not needle):
            raise ValueError("fail_task.input_contains must be a non-empty string")
    if kind == "unavailable" and int(r.get("status", 503)) not in (500, 502, 503):
        raise ValueError("unavailable.status must be 500, 502 or 503")
    if kind == "gone" and int(r.get("status", 404)) not in (403, 404, 410):
        raise ValueError("gone.status must be 403, 404 or 410")
    return r


def _check_create_only(kind: str, rule: dict[str, Any]) -> None:
    """The rules that act on a create the provider accepted: op create, and a gateway status."""
    if kind not in ("accept_then_slow", "accept_then_error"):
        return
    if rule["op"] not in ("create", "*"):
        raise ValueError(f"{kind} applies to op 'create' only")
    if (
        kind == "accept_then_error"
        and int(rule.get("status", 502)) not in ACCEPT_THEN_ERROR_STATUSES
    ):
        raise ValueError(f"accept_then_error.status must be one of {ACCEPT_THEN_ERROR_STATUSES}")
