"""The jobs table (template.yaml, JobsTable): job and part records in DynamoDB, written with
conditions so that each transition happens at most once; the one home of its index queries."""

from __future__ import annotations

import time
from collections.abc import Iterator
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from boto3.dynamodb.conditions import ConditionBase, Key

from dropcut.model.jobs import JobRecord, JobStatus, PartRecord, phase_of
from dropcut.model.phases import JobPhase, sources_of
from dropcut.observability import logger, metrics

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.service_resource import Table

#: The jobs table item that reserves an output key for one input (JobStore.claim_output).
OUTPUT_CLAIM_PREFIX = "output#"
#: The jobs table's index of records by status, then creation time (template.yaml, JobsTable).
STATUS_INDEX = "by_status"


def to_item(value: Any) -> Any:
    """JSON-ish value -> DynamoDB-safe value (floats become Decimal, None fields dropped)."""
    if isinstance(value, float):
        return Decimal(str(value))
    if isinstance(value, dict):
        return {k: to_item(v) for k, v in value.items() if v is not None}
    if isinstance(value, list | tuple):
        return [to_item(v) for v in value]
    return value


def from_item(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: from_item(v) for k, v in value.items()}
    if isinstance(value, list):
        return [from_item(v) for v in value]
    return value


class JobStore:
    """Job records in DynamoDB. Conditional writes make each transition happen at most once."""

    def __init__(self, table: Table):
        self.table = table

    def create(self, record: PartRecord) -> bool:
        """Insert the record (a job's, or a split job's part's) unless it exists; True when this
        call created it. A record
        without a phase starts in the one its status begins with (phase_of)."""
        if record.phase is None:
            record = record.model_copy(update={"phase": phase_of(record.status)})
        try:
            self.table.put_item(
                Item=to_item(record.model_dump(mode="json")),
                ConditionExpression="attribute_not_exists(job_id)",
            )
        except self.table.meta.client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def claim_output(self, output_key: str, input_key: str) -> str:
        """Claim `output_key` for `input_key` (every version of it); returns the input key that
        holds the claim: `input_key` itself, or the other input that took it first. Claims live
        in the jobs table as `output#<key>` items (no status: never in the by_status index)."""
        claim = {"job_id": OUTPUT_CLAIM_PREFIX + output_key, "input_key": input_key}
        try:
            self.table.put_item(
                Item={**claim, "claimed_at": to_item(time.time())},
                ConditionExpression="attribute_not_exists(job_id) OR input_key = :input",
                ExpressionAttributeValues={":input": input_key},
            )
        except self.table.meta.client.exceptions.ConditionalCheckFailedException:
            item = self.table.get_item(Key={"job_id": claim["job_id"]}, ConsistentRead=True)
            return str(item.get("Item", {}).get("input_key", ""))
        return input_key

    def _item(self, key: str) -> dict[str, Any] | None:
        """The item under `key` (a consistent read), as plain values, or None."""
        item = self.table.get_item(Key={"job_id": key}, ConsistentRead=True).get("Item")
        return from_item(item) if item else None

    def get(self, job_id: str) -> JobRecord | None:
        """The job's record (a consistent read), or None."""
        item = self._item(job_id)
        return JobRecord.model_validate(item) if item else None

    def part(self, part_id: str) -> PartRecord | None:
        """A part's record (a consistent read): a split job's part, or the job itself in the
        one-part case (its record read as its part's). None when there is none."""
        item = self._item(part_id)
        return PartRecord.model_validate(item) if item else None

    def require_part(self, part_id: str) -> PartRecord:
        """`part`, or LookupError."""
        record = self.part(part_id)
        if record is None:
            raise LookupError(f"no part record for {part_id}")
        return record

    def in_status(
        self,
        status: JobStatus,
        *,
        created_after: float | None = None,
        created_before: float | None = None,
    ) -> Iterator[JobRecord]:
        """Records in `status`, oldest first, created at or after `created_after` and strictly
        before `created_before` (epoch s): the by_status index (STATUS_INDEX; its key is status,
        created_at), page by page. Jobs and parts alike (a part has `part_of`)."""
        condition: ConditionBase = Key("status").eq(status.value)
        if created_after is not None and created_before is not None:
            condition &= Key("created_at").between(to_item(created_after), to_item(created_before))
        elif created_after is not None:
            condition &= Key("created_at").gte(to_item(created_after))
        elif created_before is not None:
            condition &= Key("created_at").lt(to_item(created_before))
        kwargs: dict[str, Any] = {"IndexName": STATUS_INDEX, "KeyConditionExpression": condition}
        while True:
            page = self.table.query(**kwargs)
            for item in page["Items"]:
                record = JobRecord.model_validate(from_item(item))
                if created_before is None or record.created_at < created_before:  # BETWEEN's end
                    yield record
            if "LastEvaluatedKey" not in page:
                return
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def require(self, job_id: str) -> JobRecord:
        record = self.get(job_id)
        if record is None:
            raise LookupError(f"no job record for {job_id}")
        return record

    def update(
        self,
        job_id: str,
        fields: dict[str, Any],
        *,
        condition: str | None = None,
        condition_names: dict[str, str] | None = None,
        condition_values: dict[str, Any] | None = None,
    ) -> bool:
        """Set `fields` (None removes an attribute); False when `condition` did not hold.

        Conditions name attributes through placeholders (`#status`), since many names
        (status, name, ...) are DynamoDB reserved words.
        """
        kwargs = _update_request(job_id, fields, condition, condition_names, condition_values)
        try:
            self.table.update_item(**kwargs)
        except self.table.meta.client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def move_phase(self, job_id: str, phase: JobPhase) -> bool:
        """Write the job's (or part's) phase, if the table of moves (dropcut.phases.MOVES)
        allows it from the stored one (a record of before phases may move anywhere); False,
        logged and counted, when it does not. Never raises for a refused move."""
        sources = sorted(sources_of(phase))
        values = {f":from{index}": source.value for index, source in enumerate(sources)}
        allowed = f"#phase IN ({', '.join(values)})" if values else ""
        condition = "attribute_not_exists(#phase)" + (f" OR {allowed}" if allowed else "")
        moved = self.update(
            job_id,
            {"phase": phase.value},
            condition=f"attribute_exists(job_id) AND ({condition})",
            condition_names={"#phase": "phase"},
            condition_values=values,
        )
        if not moved:
            logger.warning("phase move refused", extra={"job_id": job_id, "to": phase.value})
            metrics.add_metric(name="PhaseMovesRefused", unit="Count", value=1)
        return moved

    def update_returning(
        self,
        job_id: str,
        fields: dict[str, Any],
        *,
        condition: str,
        condition_names: dict[str, str] | None = None,
        condition_values: dict[str, Any] | None = None,
    ) -> JobRecord | None:
        """Like `update`, returning the record as this write left it (None: condition failed).

        The record comes from the same atomic write, so of two writers racing on one job the
        later one always sees the earlier one's change: callback hand-offs rely on that.
        """
        kwargs = _update_request(job_id, fields, condition, condition_names, condition_values)
        try:
            answer = self.table.update_item(**kwargs, ReturnValues="ALL_NEW")
        except self.table.meta.client.exceptions.ConditionalCheckFailedException:
            return None
        return JobRecord.model_validate(from_item(answer["Attributes"]))


def _update_request(
    job_id: str,
    fields: dict[str, Any],
    condition: str | None,
    condition_names: dict[str, str] | None,
    condition_values: dict[str, Any] | None,
) -> dict[str, Any]:
    fields = {**fields, "updated_at": time.time()}
    names: dict[str, str] = dict(condition_names or {})
    values: dict[str, Any] = {k: to_item(v) for k, v in (condition_values or {}).items()}
    sets: list[str] = []
    removes: list[str] = []
    for index, (name, value) in enumerate(sorted(fields.items())):
        names[f"#f{index}"] = name
        if value is None:
            removes.append(f"#f{index}")
        else:
            values[f":v{index}"] = to_item(value)
            sets.append(f"#f{index} = :v{index}")
    expression = ("SET " + ", ".join(sets)) if sets else ""
    if removes:
        expression += " REMOVE " + ", ".join(removes)
    kwargs: dict[str, Any] = {
        "Key": {"job_id": job_id},
        "UpdateExpression": expression.strip(),
        "ExpressionAttributeNames": names,
    }
    if values:
        kwargs["ExpressionAttributeValues"] = values
    if condition:
        kwargs["ConditionExpression"] = condition
    return kwargs
