"""The daily credit budget's ledger (dropcut.model.budget: the layout) in the slots table:
reservations of estimated credits, charges of the provider's own figures, the day's spend.

A slot is given only together with a reservation (dropcut.aws.slots, one transaction); when a
task ends its reservation is corrected to the credits the provider reported, within the bounds
of dropcut.model.budget.clamp_credits (`charge`); a part whose task failed is charged for it and
its new task (TaskRetries) takes a reservation of its own (`reserve`) before it is created.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from dropcut.model.budget import KEEP_SECONDS, DailyBudget, budget_entry, clamp_credits, spend_entry
from dropcut.observability import logger, metrics

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.service_resource import Table


def number(value: float) -> Decimal:
    return Decimal(str(round(value, 6)))


@dataclass(frozen=True)
class BudgetLedger:
    """The daily credit budget's ledger of one provider account (dropcut.budget: the layout),
    in the slots table: reservations, charges and the day's spend. Takes no slot and resumes
    nobody: CheckStatus uses it alone (a part's failed task charged, its new task reserved)."""

    table: Table
    pool: str
    budget: DailyBudget

    def charge(self, job_id: str, credits: float | None, *, task: int) -> bool:
        """Correct the reservation of the job's `task` (PartRecord.task_number) to `credits`,
        the provider's own figure for that ended task (0 when no task was created), kept within
        dropcut.budget.clamp_credits' bounds; the day's spend moves by the difference. Once per
        task (a repeat finds it charged); None (the provider said nothing) keeps the estimate.
        A figure out of bounds is counted as its bound, kept as `reported`, logged and counted
        in CreditCorrectionsClamped. False when nothing changed: no reservation, already
        charged, or no figure."""
        if credits is None or not self.budget.enabled:
            return False
        client = self.table.meta.client
        entry = spend_entry(job_id, task)
        item = self.table.get_item(
            Key={"pool": self.pool, "entry": entry}, ConsistentRead=True
        ).get("Item")
        if not item or "charged" in item:
            return False
        reserved = float(str(item["reserved"]))
        counted = clamp_credits(credits, reserved)
        clamped = counted != credits
        charged = {":charged": number(counted), ":now": number(time.time())}
        if clamped and math.isfinite(credits):
            charged[":reported"] = number(credits)
        delta = charged[":charged"] - Decimal(str(item["reserved"]))
        try:
            transact(
                client,
                [
                    {
                        "Update": {
                            "TableName": self.table.name,
                            "Key": {"pool": self.pool, "entry": entry},
                            "UpdateExpression": "SET charged = :charged, charged_at = :now"
                            + (", reported = :reported" if ":reported" in charged else ""),
                            "ConditionExpression": "attribute_not_exists(charged)",
                            "ExpressionAttributeValues": charged,
                        }
                    },
                    {
                        "Update": {
                            "TableName": self.table.name,
                            "Key": {"pool": self.pool, "entry": budget_entry(str(item["day"]))},
                            "UpdateExpression": "SET spent = if_not_exists(spent, :zero) + :delta",
                            "ExpressionAttributeValues": {":delta": delta, ":zero": Decimal(0)},
                        }
                    },
                ],
            )
        except client.exceptions.TransactionCanceledException:
            return False  # charged meanwhile by a repeat
        if clamped:
            metrics.add_metric(name="CreditCorrectionsClamped", unit="Count", value=1)
            logger.warning(
                "provider credits out of bounds; the ledger counts the bound",
                extra={
                    "budget_job_id": job_id,
                    "task_number": task,
                    "reported_credits": str(credits),
                    "credits": counted,
                    "reserved": reserved,
                },
            )
        else:
            logger.info("credits charged", extra={"credits": counted, "reserved": reserved})
        return True

    def reserve(self, job_id: str, task: int, estimate: float) -> bool:
        """Reserve `estimate` credits on today's spend for the job's `task` (n >= 1: a part's
        n-th new task after a failed one, TaskRetries) before it is created, if the daily budget
        has room; the job keeps the slot it holds. True when the task has its reservation (a
        repeat finds it taken) or there is no budget; False when the budget has no room."""
        if not self.budget.enabled:
            return True
        day, now, client = self.budget.day(), time.time(), self.table.meta.client
        try:
            transact(client, self.reservation_items(job_id, task, number(estimate), day, now))
        except client.exceptions.TransactionCanceledException:
            return self.reservation(job_id, task) is not None
        return True

    def spent(self, day: str | None = None) -> float:
        """Credits reserved or charged on `day` (YYYY-MM-DD; default today, UTC)."""
        item = self.table.get_item(
            Key={"pool": self.pool, "entry": budget_entry(day or self.budget.day())},
            ConsistentRead=True,
        ).get("Item", {})
        return float(str(item.get("spent", 0)))

    def reservation(self, job_id: str, task: int = 0) -> dict[str, Any] | None:
        """The reservation of the job's `task` (`day`, `reserved`, `charged` once corrected,
        `reported` when the provider's figure was out of bounds), if it has one."""
        item = self.table.get_item(
            Key={"pool": self.pool, "entry": spend_entry(job_id, task)}, ConsistentRead=True
        ).get("Item")
        return dict(item) if item else None

    def reservation_items(
        self, job_id: str, task: int, estimate: Decimal, day: str, now: float
    ) -> list[dict[str, Any]]:
        """The transaction items of a reservation: `estimate` added to the day's spend if the
        budget has room for it, and the task's reservation record, if it has none yet. An
        estimate over the whole budget never has room, not even on a day with no spend yet."""
        room = number(self.budget.limit) - estimate
        # A day's first reservation finds no spend: it fits when the estimate alone does.
        fits = "attribute_not_exists(spent) OR spent <= :room" if room >= 0 else "spent <= :room"
        return [
            {
                "Update": {
                    "TableName": self.table.name,
                    "Key": {"pool": self.pool, "entry": budget_entry(day)},
                    "UpdateExpression": "SET spent = if_not_exists(spent, :zero) + "
                    ":estimate, expires_at = :expires",
                    "ConditionExpression": fits,
                    "ExpressionAttributeValues": {
                        ":zero": Decimal(0),
                        ":estimate": estimate,
                        ":room": room,
                        ":expires": int(now + KEEP_SECONDS),
                    },
                }
            },
            {
                "Put": {
                    "TableName": self.table.name,
                    "Item": {
                        "pool": self.pool,
                        "entry": spend_entry(job_id, task),
                        "job_id": job_id,
                        "day": day,
                        "reserved": estimate,
                        "reserved_at": number(now),
                        "expires_at": int(now + KEEP_SECONDS),
                    },
                    "ConditionExpression": "attribute_not_exists(entry)",
                }
            },
        ]


def transact(client: Any, items: list[dict[str, Any]]) -> None:
    """TransactWriteItems through the table resource's client, which takes Python values as
    the resource does (its stubs type the wire format)."""
    client.transact_write_items(TransactItems=items)
