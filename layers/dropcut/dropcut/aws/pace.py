"""How long this stack's provider tasks take: a bounded ring of recent durations per provider,
model and clip length, kept in the jobs table, so a task with no provider estimate is first
checked about when tasks like it have ended, not on the cold-start schedule.

Items are `pace#<provider>#<model>#<bucket>` in the jobs table (no `status`: never in the
by_status index), each with `durations`: the latest RING seconds from task creation to the
moment its end was seen (a status check or a confirmed callback). CheckStatus and Finalize
append (UpdateItem), StartTask reads (GetItem): no grant beyond what those steps already have.
Writing is best-effort: a lost sample never fails a job.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from decimal import Decimal
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

from dropcut.observability import logger

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.service_resource import Table

PACE_PREFIX = "pace#"
#: Recent durations kept per key.
RING = 16
#: Clip length buckets (upper bounds, s): Kling O1 edits 3-10 s clips.
BUCKETS = (3, 5, 8, 10)


def clip_bucket(seconds: float | None) -> str:
    """The clip length bucket of a video of `seconds` ("unknown" when its length is not known)."""
    if seconds is None:
        return "unknown"
    low = 0
    for high in BUCKETS:
        if seconds <= high:
            return f"{low}-{high}s"
        low = high
    return f"{low}s+"


def pace_key(provider: str, model: str, clip_seconds: float | None) -> str:
    return f"{PACE_PREFIX}{provider}#{model}#{clip_bucket(clip_seconds)}"


def learned_wait(durations: list[float], step_seconds: int) -> int | None:
    """The first wait learned from recent durations: half a follow-up step before their median
    (None without history). A check that finds the task running is followed by one step, so
    a task as long as the median is seen at most half a step late, and one that ends earlier
    (seen at the first check) pulls the median down: the schedule follows the provider both
    ways."""
    if not durations:
        return None
    return max(1, round(statistics.median(durations) - step_seconds / 2))


def jobs_table_key(key: str) -> dict[str, str]:
    """A pace item's key in the jobs table."""
    return {"job_id": key}


class PaceBook:
    """Rings of recent durations: task durations in the jobs table (`pace#...` items), and
    slot holds in the slots table (dropcut.aws.slots: how long a job holds its slot, for the
    backlog's ETA); `item_key` makes a ring's name the table's key."""

    def __init__(
        self,
        table: Table,
        ring: int = RING,
        item_key: Callable[[str], dict[str, str]] = jobs_table_key,
    ) -> None:
        self.table = table
        self.ring = ring
        self.item_key = item_key

    def recent(self, key: str) -> list[float]:
        """The durations recorded under `key`, oldest first ([] when none, or unreadable)."""
        try:
            item = self.table.get_item(Key=self.item_key(key)).get("Item") or {}
        except (ClientError, BotoCoreError) as exc:
            logger.warning("task pace unreadable", extra={"error": type(exc).__name__})
            return []
        return [float(str(value)) for value in item.get("durations") or []]  # type: ignore[union-attr]

    def record(self, key: str, seconds: float) -> None:
        """Append one duration, keeping the latest `ring` (two conditional writes; a race at
        worst trims one sample too few, corrected by the next record)."""
        try:
            answer = self.table.update_item(
                Key=self.item_key(key),
                UpdateExpression="SET durations = list_append(if_not_exists(durations, :empty), "
                ":new)",
                ExpressionAttributeValues={
                    ":empty": [],
                    ":new": [Decimal(str(round(seconds, 3)))],
                },
                ReturnValues="UPDATED_NEW",
            )
            extra = len(answer["Attributes"].get("durations") or []) - self.ring  # type: ignore[arg-type]
            if extra > 0:
                self.table.update_item(
                    Key=self.item_key(key),
                    UpdateExpression="REMOVE " + ", ".join(f"durations[{i}]" for i in range(extra)),
                    ConditionExpression="size(durations) > :ring",
                    ExpressionAttributeValues={":ring": self.ring},
                )
        except self.table.meta.client.exceptions.ConditionalCheckFailedException:
            pass  # another writer trimmed it
        except (ClientError, BotoCoreError) as exc:
            logger.warning("task pace not recorded", extra={"error": type(exc).__name__})
