"""How fast a pool's slots come free, and when a queued job should start.

The pace is a ring of recent slot holds (seconds from admission to release) in the slots table,
`<pool>#pace` / `holds`, recorded by SlotPool.release; a queued job's expected start is its
place in the backlog under fair turns (dropcut.aws.backlog) at that pace (dropcut.model.eta).
Submit, the reconciler (dropcut.services.estimates) and the command line read it.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import TYPE_CHECKING

from dropcut.aws.backlog import Backlog, Place, Queued
from dropcut.aws.pace import RING, PaceBook
from dropcut.model.eta import start_in_seconds
from dropcut.model.jobs import JobRecord
from dropcut.model.layout import BucketLayout

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.service_resource import Table

#: The ring of recent slot holds (s) in the slots table (`<pool>#pace`), for the ETA.
HOLDS_RING = "holds"


@dataclass(frozen=True)
class Eta:
    """A queued job's place in the backlog and its expected start, in seconds from now (None
    before the stack has measured how long a slot is held)."""

    place: Place
    start_in: float | None


def min_holds(limit: int) -> int:
    """How many slot holds the pace is measured from: more than twice the slots, so that their
    median outweighs the first hold of each slot (a fresh stack's, or after a quiet spell: cold
    starts, measured at 3-4 times a warm hold on the local stack's big drop)."""
    return 2 * max(1, limit) + 1


def hold_pace(table: Table, pool: str, limit: int) -> PaceBook:
    """How long jobs held the pool's slots, recently (s): a ring in the slots table, of twice
    min_holds(limit) at least (two releases at once may trim it by one too many)."""
    return PaceBook(
        table,
        ring=max(RING, 2 * min_holds(limit)),
        item_key=lambda ring: {"pool": f"{pool}#pace", "entry": ring},
    )


def queue_eta(backlog: Backlog, layout: BucketLayout, limit: int, record: JobRecord) -> Eta | None:
    """Where a queued job stands in the backlog and when it should start (None when it is not
    queued): its place under fair turns and the pace at which the pool's `limit` slots came
    free lately (dropcut.model.eta; no start time before the pool has seen min_holds(limit)
    slots given back)."""
    place = backlog.place(Queued.of(record, layout, 0.0))
    if place is None:
        return None
    holds = hold_pace(backlog.table, backlog.pool, limit).recent(HOLDS_RING)
    if len(holds) < min_holds(limit):
        return Eta(place, None)
    return Eta(place, start_in_seconds(place.admissions_before, limit, statistics.median(holds)))
