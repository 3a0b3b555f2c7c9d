"""A job's opt-in start deadline (`not_after` in the manifest or the folder preset): the job
starts by then, or ends unpaid with a `start_deadline_passed` report. Without it a queued job
waits as long as the backlog needs.

`not_after` is either a moment, an ISO 8601 date-time with its UTC offset
(`2026-12-08T06:00:00Z`, `2026-12-08T07:00:00+01:00`), or a wait counted from the upload's
arrival: a number and a unit, `90s`, `45m`, `6h`, `2d` (the form a folder preset needs).
"""

from __future__ import annotations

import re
from datetime import datetime

#: A wait: a number (decimals allowed) and s, m, h or d.
WAIT_PATTERN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd])\s*$", re.IGNORECASE)
UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
#: The longest wait a deadline may name (a year: a longer one is a typo, not a plan).
MAX_WAIT_SECONDS = 366 * 86400


def wait_seconds(text: str) -> float | None:
    """`90s`, `15m`, `2h`, `3d` -> seconds; None when `text` is not a wait."""
    match = WAIT_PATTERN.match(text)
    if match is None:
        return None
    return float(match.group(1)) * UNIT_SECONDS[match.group(2).lower()]


def check_not_after(text: str) -> str:
    """`text` if it is a `not_after` (module docstring); ValueError saying what it must be."""
    start_deadline(text, 0.0)
    return text


def start_deadline(not_after: str, arrived_at: float) -> float:
    """The epoch second by which a job that arrived at `arrived_at` must start.

    Raises ValueError when `not_after` is neither a wait (at most MAX_WAIT_SECONDS) nor an
    ISO 8601 date-time with a UTC offset."""
    wait = wait_seconds(not_after)
    if wait is not None:
        if not 0 < wait <= MAX_WAIT_SECONDS:
            raise ValueError(f"a wait of more than 0 s and at most {MAX_WAIT_SECONDS // 86400} d")
        return arrived_at + wait
    try:
        moment = datetime.fromisoformat(not_after.strip())
    except ValueError:
        raise ValueError(
            "a wait from the upload (90s, 45m, 6h, 2d) or an ISO 8601 date-time with its UTC "
            "offset (2026-12-08T06:00:00Z)"
        ) from None
    if moment.tzinfo is None:
        raise ValueError("an ISO 8601 date-time with its UTC offset (…Z or …+01:00)")
    return moment.timestamp()
