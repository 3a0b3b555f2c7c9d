"""The provider breaker: when the provider answers an outage (5xx, 429, 402, or cannot be
reached) again and again, admission pauses instead of sending the backlog into it, and resumes
by itself.

- StartTask (a create) and CheckStatus (a status query) record each outage answer here.
  TRIP_OUTAGES of them within WINDOW_SECONDS, from any function, trip the breaker: admission is
  paused for a while (PAUSE_SECONDS, doubled each time it trips again soon after, at most
  MAX_PAUSE_SECONDS), counted in ProviderOutages (ProviderOutageAlarm) and logged.
- While paused, nothing is admitted from the backlog (queued jobs wait, unpaid, without a clock)
  and StartTask sends no create: it raises an undelivered ProviderUnavailable, which the state
  machine retries 5 to 120 s apart (about 4.5 minutes); status queries go on (a paid task is
  followed whatever happens).
- When the pause is over, everything goes on: a provider still down trips it again at once, for
  longer. Nothing needs to close it.

Items (slots table): `<pool>#breaker`/`outages` counts the outage answers of the current window;
the pause itself, `paused_until`, is on the backlog's turns item (dropcut.aws.backlog), which
every admission reads anyway: pausing costs an admission nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from dropcut.aws.backlog import Backlog
from dropcut.errors import ProviderError, ProviderUnavailable
from dropcut.observability import logger, metrics

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.service_resource import Table

#: Outage answers within WINDOW_SECONDS that trip the breaker (a lone 503 or 429 does not).
TRIP_OUTAGES = 5
WINDOW_SECONDS = 20.0
#: How long admission pauses on a trip, and at most when it trips again soon after (s).
PAUSE_SECONDS = 15.0
MAX_PAUSE_SECONDS = 120.0
#: The answers that count as an outage: 402 (no credit), 429 (throttled), any 5xx.
OUTAGE_STATUSES = frozenset({402, 429})


def is_outage(error: Exception) -> bool:
    """Whether a provider call's failure says the provider (or the account) is out: a 402, a
    429, a 5xx, or no answer at all (a connection that failed, a timeout)."""
    if not isinstance(error, ProviderError):
        return False
    if error.status is None:
        return isinstance(error, ProviderUnavailable)
    return error.status in OUTAGE_STATUSES or error.status >= 500


@dataclass(frozen=True)
class Breaker:
    """The breaker of one provider account (pool), in the slots table."""

    table: Table
    pool: str

    @property
    def counter_key(self) -> dict[str, str]:
        return {"pool": f"{self.pool}#breaker", "entry": "outages"}

    @property
    def turns_key(self) -> dict[str, str]:
        """The backlog's turns item, which holds `paused_until` (dropcut.aws.backlog)."""
        return Backlog(self.table, self.pool).turns_key

    def paused_until(self) -> float | None:
        """Until when admission is paused (epoch s; None: it never was). One read."""
        item = self.table.get_item(Key=self.turns_key, ConsistentRead=True).get("Item") or {}
        until = item.get("paused_until")
        return float(str(until)) if until is not None else None

    def record(self, error: Exception, now: float) -> bool:
        """Count `error` if it is an outage (is_outage); True when this count tripped the
        breaker. Never raises: a breaker that cannot be written must not fail the step."""
        if not is_outage(error):
            return False
        try:
            window = self._count(now)
            if int(str(window["outages"])) < TRIP_OUTAGES:
                return False
            return self._trip(now, window)
        except (BotoCoreError, ClientError) as exc:
            logger.warning("breaker not written", extra={"error": f"{type(exc).__name__}: {exc}"})
            return False

    def _count(self, now: float) -> dict[str, Any]:
        """Add one outage to the current window (a window older than WINDOW_SECONDS starts
        over); the counter item as it is now (`outages`, and the last trip's `tripped_at` and
        `pause`)."""
        client = self.table.meta.client
        try:
            answer = self.table.update_item(
                Key=self.counter_key,
                UpdateExpression="ADD outages :one",
                ConditionExpression="window_start >= :cutoff",
                ExpressionAttributeValues={":one": 1, ":cutoff": _number(now - WINDOW_SECONDS)},
                ReturnValues="ALL_NEW",
            )
        except client.exceptions.ConditionalCheckFailedException:
            answer = self.table.update_item(
                Key=self.counter_key,
                UpdateExpression="SET window_start = :now, outages = :one",
                ExpressionAttributeValues={":now": _number(now), ":one": 1},
                ReturnValues="ALL_NEW",
            )
        return dict(answer["Attributes"])

    def _trip(self, now: float, window: dict[str, Any]) -> bool:
        """Pause admission (once per window: the first to see the count trips, and starts a new
        window); the pause doubles when the last trip was recent. `window`: the counter item
        as this outage's count left it."""
        outages = int(str(window["outages"]))
        last_trip = float(str(window.get("tripped_at", 0)))
        last_pause = float(str(window.get("pause", PAUSE_SECONDS)))
        soon_again = now - last_trip < last_pause + WINDOW_SECONDS
        pause = min(last_pause * 2, MAX_PAUSE_SECONDS) if soon_again else PAUSE_SECONDS
        client = self.table.meta.client
        try:
            self.table.update_item(
                Key=self.counter_key,
                UpdateExpression="SET tripped_at = :now, pause = :pause, window_start = :now, "
                "outages = :zero",
                ConditionExpression="outages = :seen",
                ExpressionAttributeValues={
                    ":now": _number(now),
                    ":pause": _number(pause),
                    ":zero": 0,
                    ":seen": outages,
                },
            )
        except client.exceptions.ConditionalCheckFailedException:
            return False  # another function tripped it with this window
        self.table.update_item(
            Key=self.turns_key,
            UpdateExpression="SET paused_until = :until, folders = if_not_exists(folders, :none)",
            ExpressionAttributeValues={":until": _number(now + pause), ":none": {}},
        )
        logger.warning(
            "provider outage: admission paused",
            extra={"pool": self.pool, "outages": outages, "pause_seconds": pause},
        )
        metrics.add_metric(name="ProviderOutages", unit="Count", value=1)
        return True


def _number(value: float) -> Decimal:
    return Decimal(str(round(value, 3)))
