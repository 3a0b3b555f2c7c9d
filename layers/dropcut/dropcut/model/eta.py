"""When a queued job should start: its place in the backlog under fair turns, and the pace at
which this stack's slots come free.

The backlog admits folders in turn, each in proportion to its weight (dropcut.aws.backlog): a
job with `ahead` jobs before it in its own folder waits for those, and for as many turns of each
other folder as its folder takes meanwhile, up to what that folder has queued. The slots admit
`limit` jobs per `hold_seconds` (how long a job holds its slot, measured on this stack): the
job's admission comes after the admissions before it, plus half a hold for the slot in use to
come free.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field


@dataclass(frozen=True)
class FolderBacklog:
    """One other folder's part in the rotation: the jobs it has queued and its weight."""

    queued: int
    weight: int


def admissions_before(ahead: int, weight: int, others: Iterable[FolderBacklog]) -> int:
    """How many jobs are admitted before a job with `ahead` jobs before it in its own folder of
    `weight`, while the `others` folders take their turns (each at most what it has queued)."""
    turns = ahead + 1  # the turns its folder takes, its own included
    return ahead + sum(
        min(other.queued, math.ceil(turns * other.weight / weight)) for other in others
    )


def start_in_seconds(admissions: int, limit: int, hold_seconds: float) -> float:
    """Seconds until the job after `admissions` others is admitted, with `limit` slots each
    held `hold_seconds` per job."""
    return (admissions + 0.5) * hold_seconds / max(1, limit)


class QueueEta(BaseModel):
    """A queued job's estimate, as its record and its `submitted` event carry it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    before: int = Field(description="Jobs admitted before it under fair turns.")
    backlog: int = Field(description="Jobs queued in all when it was estimated.")
    starts_at: float | None = Field(
        default=None,
        description="When it should start (epoch seconds; null before this stack has measured "
        "how long a slot is held).",
    )
    estimated_at: float = Field(description="When this was estimated (epoch seconds).")
