"""The batches table (template.yaml, BatchesTable): batch headers, their members, and each
folder's open batch (dropcut.model.batches says what a batch is).

Items (partition key `batch_id`, sort key `entry`):

    <batch id>      batch           the header (Batch): counters, state, summary keys
    <batch id>      job#<job id>    a member (BatchMember): set `ended_at` once, at its ending
    open#<folder>   open            the folder's open batch: {open_batch}

A member and its header change in one transaction, conditioned on the member, so a job joins and
ends once in its batch however often its steps run. The index `by_state` (state, created_at)
lists batches by state: the reconciler's open ones, `dropcut batches`. No scan anywhere; the
members of a batch are one paginated Query.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from boto3.dynamodb.conditions import Attr, Key

from dropcut.aws.job_store import from_item, to_item
from dropcut.aws.ledger import number, transact
from dropcut.model.batches import Batch, BatchMember, BatchState, MemberEnding

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.service_resource import Table

HEADER = "batch"
MEMBER_PREFIX = "job#"
OPEN = "open"
#: The index that lists batches by state, newest or oldest first.
STATE_INDEX = "by_state"


class Joined(StrEnum):
    """What a join did."""

    JOINED = "joined"
    #: The job was already a member (a redelivered event): nothing counted twice.
    ALREADY = "already"
    #: The batch no longer takes jobs (its summary is being written or done).
    CLOSED = "closed"


@dataclass(frozen=True)
class BatchStore:
    """Batch headers and members in the batches table."""

    table: Table

    def get(self, batch_id: str) -> Batch | None:
        """The header (a strongly consistent read), or None."""
        item = self.table.get_item(
            Key={"batch_id": batch_id, "entry": HEADER}, ConsistentRead=True
        ).get("Item")
        return Batch.model_validate(_fields(item)) if item else None

    def create(self, batch: Batch) -> bool:
        """Write a new header; False when the id is taken."""
        client = self.table.meta.client
        try:
            self.table.put_item(
                Item={**to_item(batch.model_dump(mode="json")), "entry": HEADER},
                ConditionExpression="attribute_not_exists(batch_id)",
            )
        except client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def open_batch(self, folder: str) -> str | None:
        """The id of the folder's open batch (the last one it formed), or None."""
        item = self.table.get_item(
            Key={"batch_id": f"{OPEN}#{folder}", "entry": OPEN}, ConsistentRead=True
        ).get("Item")
        return str(item["open_batch"]) if item else None

    def point(self, folder: str, batch_id: str, replacing: str | None) -> bool:
        """Make `batch_id` the folder's open batch, if it still is `replacing` (None: if it has
        none); False when another upload moved it first."""
        condition = (
            Attr("batch_id").not_exists() if replacing is None else Attr("open_batch").eq(replacing)
        )
        client = self.table.meta.client
        try:
            self.table.put_item(
                Item={"batch_id": f"{OPEN}#{folder}", "entry": OPEN, "open_batch": batch_id},
                ConditionExpression=condition,
            )
        except client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def join(self, batch_id: str, job_id: str, key: str, now: float) -> Joined:
        """Add the job to the batch (member + header count, one transaction) if the batch is
        open and the job not in it yet."""
        member = BatchMember(job_id=job_id, key=key, joined_at=now)
        items = [
            {
                "Put": {
                    "TableName": self.table.name,
                    "Item": {
                        **to_item(member.model_dump(mode="json")),
                        **_member_key(batch_id, job_id),
                    },
                    "ConditionExpression": "attribute_not_exists(batch_id)",
                }
            },
            {
                "Update": {
                    "TableName": self.table.name,
                    "Key": {"batch_id": batch_id, "entry": HEADER},
                    "UpdateExpression": "ADD jobs :one SET last_arrival = :now",
                    "ConditionExpression": "#state = :open",
                    "ExpressionAttributeNames": {"#state": "state"},
                    "ExpressionAttributeValues": {
                        ":one": 1,
                        ":now": number(now),
                        ":open": BatchState.OPEN.value,
                    },
                }
            },
        ]
        client = self.table.meta.client
        try:
            transact(client, items)
        except client.exceptions.TransactionCanceledException as exc:
            member_code, _ = _codes(exc)
            return Joined.ALREADY if member_code == "ConditionalCheckFailed" else Joined.CLOSED
        return Joined.JOINED

    def count_ending(self, batch_id: str, ending: MemberEnding) -> bool:
        """Record a member's ending and add it to the header's counters (one transaction);
        False when it was counted before, or the job is not a member."""
        fields = ending.model_dump(mode="json", exclude={"job_id"}, exclude_none=True)
        names = {f"#{name}": name for name in fields}
        values = {f":{name}": to_item(value) for name, value in fields.items()}
        sets = ", ".join(f"#{name} = :{name}" for name in fields)
        adds: dict[str, Decimal | int] = {"ended": 1, ending.counter: 1}
        if ending.credits:
            adds["credits_spent"] = number(ending.credits)
        if ending.credits_estimated:
            adds["credits_estimated"] = number(ending.credits_estimated)
        items = [
            {
                "Update": {
                    "TableName": self.table.name,
                    "Key": _member_key(batch_id, ending.job_id),
                    "UpdateExpression": f"SET {sets}",
                    "ConditionExpression": "attribute_exists(batch_id) "
                    "AND attribute_not_exists(ended_at)",
                    "ExpressionAttributeNames": names,
                    "ExpressionAttributeValues": values,
                }
            },
            {
                "Update": {
                    "TableName": self.table.name,
                    "Key": {"batch_id": batch_id, "entry": HEADER},
                    "UpdateExpression": "SET last_ending = :now ADD "
                    + ", ".join(f"{name} :add_{name}" for name in adds),
                    "ExpressionAttributeValues": {
                        ":now": number(ending.ended_at),
                        **{f":add_{n}": v for n, v in adds.items()},
                    },
                }
            },
        ]
        client = self.table.meta.client
        try:
            transact(client, items)
        except client.exceptions.TransactionCanceledException as exc:
            member_code, _ = _codes(exc)
            if member_code == "ConditionalCheckFailed":
                return False
            raise
        return True

    def members(self, batch_id: str, *, unended_only: bool = False) -> Iterator[BatchMember]:
        """The batch's members, page by page (Query, never a scan), ordered by job id."""
        query: dict[str, Any] = {
            "KeyConditionExpression": Key("batch_id").eq(batch_id)
            & Key("entry").begins_with(MEMBER_PREFIX),
        }
        if unended_only:
            query["FilterExpression"] = "attribute_not_exists(ended_at)"
        while True:
            page = self.table.query(**query)
            for item in page.get("Items", []):
                yield BatchMember.model_validate(_fields(item))
            if "LastEvaluatedKey" not in page:
                return
            query["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def in_state(
        self, state: BatchState, *, newest_first: bool = False, limit: int | None = None
    ) -> Iterator[Batch]:
        """Headers in `state` by creation time (the by_state index, paginated), at most `limit`."""
        query: dict[str, Any] = {
            "IndexName": STATE_INDEX,
            "KeyConditionExpression": Key("state").eq(state.value),
            "ScanIndexForward": not newest_first,
        }
        seen = 0
        while True:
            page = self.table.query(**query)
            for item in page.get("Items", []):
                yield Batch.model_validate(_fields(item))
                seen += 1
                if limit is not None and seen >= limit:
                    return
            if "LastEvaluatedKey" not in page:
                return
            query["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def claim_summary(self, batch: Batch, now: float, stale_before: float) -> bool:
        """Move a batch whose jobs have all ended to `summarizing` (one writer: the condition
        sees the count read, every one ended, and no join since); also retakes a summary left
        unfinished since before `stale_before`. False when neither holds."""
        client = self.table.meta.client
        try:
            self.table.update_item(
                Key={"batch_id": batch.batch_id, "entry": HEADER},
                UpdateExpression="SET #state = :summarizing, summarizing_since = :now",
                ConditionExpression="(#state = :open AND jobs = :jobs AND ended = :jobs AND jobs > :none) "
                "OR (#state = :summarizing AND summarizing_since < :stale)",
                ExpressionAttributeNames={"#state": "state"},
                ExpressionAttributeValues={
                    ":summarizing": BatchState.SUMMARIZING.value,
                    ":open": BatchState.OPEN.value,
                    ":jobs": batch.jobs,
                    ":none": 0,
                    ":now": number(now),
                    ":stale": number(stale_before),
                },
            )
        except client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def complete(self, batch_id: str, summary: str, page: str, now: float) -> None:
        """Mark the batch complete with its summary's keys."""
        self.table.update_item(
            Key={"batch_id": batch_id, "entry": HEADER},
            UpdateExpression="SET #state = :completed, completed_at = :now, "
            "summary_key = :summary, page_key = :page",
            ExpressionAttributeNames={"#state": "state"},
            ExpressionAttributeValues={
                ":completed": BatchState.COMPLETED.value,
                ":now": number(now),
                ":summary": summary,
                ":page": page,
            },
        )


def _member_key(batch_id: str, job_id: str) -> dict[str, str]:
    return {"batch_id": batch_id, "entry": f"{MEMBER_PREFIX}{job_id}"}


def _fields(item: dict[str, Any]) -> dict[str, Any]:
    """An item's model fields (its keys' entry dropped)."""
    return {k: v for k, v in from_item(item).items() if k != "entry"}


def _codes(exc: Any) -> tuple[str | None, str | None]:
    """The cancellation codes of a two-item transaction: (first item's, second's)."""
    reasons = exc.response.get("CancellationReasons", [])
    codes = [reason.get("Code") for reason in reasons] + [None, None]
    return codes[0], codes[1]
