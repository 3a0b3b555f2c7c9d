"""The provider's circuit breaker: when the provider refuses creates for a reason of its own (5xx,
429, a lost answer, 402 out of credit), admission from the backlog pauses instead of starting job
after job into the outage; it resumes by itself.

StartTask counts a create answered so, CheckStatus a status query; the third in a row opens it
(a lone 429 in a busy hour does not pause anything); a create or query the provider answers
closes it and forgets the count. While it is open, SlotPool.dispatch admits nothing and
StartTask sends no create (a 5xx to a create may hide a task: the job would end uncertain); the
state machine's backed-off retries (5 to 120 s, about 4.5 minutes in all) carry the jobs already
admitted over the outage. When the pause is over, admission takes one job (half-open): refused
again, the pause doubles (30 s, 60 s, ... at most 5 minutes); answered, it closes. The
reconciler publishes `AdmissionPaused` (1 while open), which `ProviderOutageAlarm` watches.

One item per provider account in the jobs table, `breaker#<pool>` (no `status`: never in the
by_status index), beside the pace rings: StartTask and every function that admits already have
the jobs table (StartTask writes it with UpdateItem, as it writes job records; admission reads
it); writing is best effort (a lost trip costs one more refused create).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

from dropcut.errors import ProviderOutOfCredits, ProviderThrottled, ProviderUnavailable
from dropcut.observability import logger

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.service_resource import Table

BREAKER_PREFIX = "breaker#"
#: What the provider answers when it (or our account with it) cannot take requests now: these
#: trip the breaker, where a refusal of one job's request does not.
OUTAGES = (ProviderUnavailable, ProviderThrottled, ProviderOutOfCredits)
#: Refusals in a row (no answer between) that open it: one 429 in a busy hour does not.
TRIP_AFTER = 3
#: The first pause after a refused create, and the longest (each trip while open doubles it).
FIRST_PAUSE_SECONDS = 30.0
MAX_PAUSE_SECONDS = 300.0


@dataclass(frozen=True)
class BreakerState:
    """An open breaker: since when, until when admission pauses, and why."""

    opened_at: float
    open_until: float
    reason: str
    #: The last pause (s): a trip while it is open or half-open doubles it.
    pause_seconds: float

    def paused(self, now: float) -> bool:
        return now < self.open_until


@dataclass(frozen=True)
class Breaker:
    """The circuit breaker of one provider account (pool)."""

    table: Table
    pool: str
    #: The first pause (s); each refusal after one doubles it, up to MAX_PAUSE_SECONDS.
    first_pause_seconds: float = FIRST_PAUSE_SECONDS

    @property
    def key(self) -> dict[str, str]:
        return {"job_id": f"{BREAKER_PREFIX}{self.pool}"}

    def state(self) -> BreakerState | None:
        """The breaker, when open or half-open (None: closed; or unreadable)."""
        try:
            item = self.table.get_item(Key=self.key, ConsistentRead=True).get("Item")
        except (ClientError, BotoCoreError) as exc:
            logger.warning("provider breaker unreadable", extra={"error": type(exc).__name__})
            return None
        if not item or "open_until" not in item:
            return None
        return BreakerState(
            float(str(item["opened_at"])),
            float(str(item["open_until"])),
            str(item["reason"]),
            float(str(item.get("pause_seconds", self.first_pause_seconds))),
        )

    def trip(self, reason: str) -> None:
        """Count a refusal for `reason`; the TRIP_AFTER-th in a row (no answer between) opens it,
        and one while it is open or half-open keeps it open (twice as long when half-open)."""
        now = time.time()
        current = self.state()
        try:
            if current is None:
                counted = self.table.update_item(
                    Key=self.key,
                    UpdateExpression="ADD failures :one",
                    ExpressionAttributeValues={":one": 1},
                    ReturnValues="UPDATED_NEW",
                )
                if int(str(counted["Attributes"]["failures"])) < TRIP_AFTER:
                    return
            pause = self.first_pause_seconds
            if current is not None:  # half-open: refused again; open: the same spell
                pause = current.pause_seconds
                if not current.paused(now):
                    pause = min(MAX_PAUSE_SECONDS, 2 * current.pause_seconds)
            self.table.update_item(
                Key=self.key,
                UpdateExpression="SET opened_at = :opened, open_until = :until, reason = :reason, "
                "pause_seconds = :pause",
                ExpressionAttributeValues={
                    ":opened": Decimal(str(current.opened_at if current else now)),
                    ":until": Decimal(str(round(now + pause, 3))),
                    ":reason": reason,
                    ":pause": Decimal(str(pause)),
                },
            )
        except (ClientError, BotoCoreError) as exc:
            logger.warning("provider breaker not tripped", extra={"error": type(exc).__name__})
            return
        logger.warning(
            "the provider keeps refusing: admission paused",
            extra={"reason": reason, "pause_seconds": pause},
        )

    def close(self) -> None:
        """Close it, and forget the refusals counted: the provider answered (nothing when there
        is nothing to forget)."""
        try:
            self.table.update_item(
                Key=self.key,
                UpdateExpression="REMOVE failures, opened_at, open_until, reason, pause_seconds",
                ConditionExpression="attribute_exists(failures) OR attribute_exists(open_until)",
            )
        except self.table.meta.client.exceptions.ConditionalCheckFailedException:
            return
        except (ClientError, BotoCoreError) as exc:
            logger.warning("provider breaker not closed", extra={"error": type(exc).__name__})
            return
        logger.info("provider answers again: admission resumed")
