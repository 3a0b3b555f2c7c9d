"""The backlog benchmark's instruments: DynamoDB calls counted by kind and partition key
(botocore's before-call events), a moto narrowed to what one admission touches, a virtual clock
and a Step Functions stand-in (bench/backlog.py uses them)."""

from __future__ import annotations

import contextlib
import inspect
import json
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from unittest import mock

READS = frozenset({"GetItem", "BatchGetItem", "Query", "Scan", "TransactGetItems"})
WRITES = frozenset({"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"})


# -- the fakes at the boundary -------------------------------------------------------------


class VirtualClock:
    """`time` as the admission code sees it: `time()` is virtual; the rest is the real module."""

    def __init__(self, now: float) -> None:
        self.now = now

    def time(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)


class FakeStepFunctions:
    """The workflow's boundary: executions started are recorded by name (the job id), once."""

    class exceptions:
        class ExecutionAlreadyExists(Exception): ...

    def __init__(self) -> None:
        self.started: list[str] = []
        self._names: set[str] = set()

    def start_execution(self, stateMachineArn: str, name: str, input: str) -> None:
        if name in self._names:
            raise self.exceptions.ExecutionAlreadyExists(name)
        self._names.add(name)
        self.started.append(name)

    def send_task_success(self, taskToken: str, output: str) -> None:
        pass


# -- counting DynamoDB calls ---------------------------------------------------------------


@dataclass
class Tally:
    """DynamoDB calls made while counting: by operation, writes by partition key, items read."""

    calls: Counter[str] = field(default_factory=Counter)
    transact_items: int = 0
    items_read: int = 0
    partitions: Counter[str] = field(default_factory=Counter)

    @property
    def reads(self) -> int:
        return sum(n for op, n in self.calls.items() if op in READS)

    @property
    def writes(self) -> int:
        return sum(n for op, n in self.calls.items() if op in WRITES)

    def per(self, count: int) -> dict[str, Any]:
        """Calls per job over `count` jobs."""
        return {
            "reads": self.reads / count,
            "writes": self.writes / count,
            "transact_write_items": self.calls["TransactWriteItems"] / count,
            "transact_items": self.transact_items / count,
            "items_read": self.items_read / count,
            "by_operation": {op: n / count for op, n in sorted(self.calls.items())},
        }


def _hash_value(key: dict[str, Any], attribute: str) -> str:
    value = key[attribute]
    return str(next(iter(value.values()))) if isinstance(value, dict) else str(value)


class Recorder:
    """botocore event hooks on the tables' client: each call and each write's partition key."""

    def __init__(self, client: Any, hash_keys: dict[str, str]) -> None:
        self.hash_keys = hash_keys
        self.tally: Tally | None = None
        client.meta.events.register("before-call.dynamodb", self._before)
        client.meta.events.register("after-call.dynamodb", self._after)

    @contextlib.contextmanager
    def counting(self) -> Iterator[Tally]:
        self.tally = tally = Tally()
        try:
            yield tally
        finally:
            self.tally = None

    def _write(self, tally: Tally, table: str, key: dict[str, Any]) -> None:
        tally.partitions[f"{table}:{_hash_value(key, self.hash_keys[table])}"] += 1

    def _before(self, model: Any, params: dict[str, Any], **_: Any) -> None:
        tally = self.tally
        if tally is None:
            return
        operation = model.name
        tally.calls[operation] += 1
        if operation not in WRITES:
            return
        body = json.loads(params.get("body") or b"{}")
        if operation == "TransactWriteItems":
            for item in body["TransactItems"]:
                ((_kind, request),) = item.items()
                tally.transact_items += 1
                self._write(tally, request["TableName"], request.get("Key") or request["Item"])
        elif operation == "BatchWriteItem":
            for table, requests in body["RequestItems"].items():
                for request in requests:
                    put = request.get("PutRequest")
                    key = put["Item"] if put else request["DeleteRequest"]["Key"]
                    self._write(tally, table, key)
        else:
            self._write(tally, body["TableName"], body.get("Key") or body["Item"])

    def _after(self, model: Any, parsed: dict[str, Any], **_: Any) -> None:
        tally = self.tally
        if tally is None:
            return
        if "ScannedCount" in parsed:
            tally.items_read += int(parsed["ScannedCount"])
        elif "Item" in parsed:
            tally.items_read += 1
        elif "Responses" in parsed and model.name == "BatchGetItem":
            tally.items_read += sum(len(items) for items in parsed["Responses"].values())


# -- moto, narrowed to what DynamoDB does --------------------------------------------------


@contextlib.contextmanager
def narrowed_moto() -> Iterator[None]:
    """moto's TransactWriteItems without its whole-table backups (a backup of the items it
    touches instead), and its Query over one partition instead of the whole table."""
    import copy

    import moto.dynamodb.models as models
    from moto.dynamodb.models.table import Table

    class _Tables:
        """`copy` as moto's backend module sees it: a table "copy" is the table itself."""

        @staticmethod
        def deepcopy(value: Any, memo: Any = None) -> Any:
            return value if isinstance(value, Table) else copy.deepcopy(value, memo)

    transact = models.DynamoDBBackend.transact_write_items
    query = Table.query
    query_signature = inspect.signature(query)

    def transact_write_items(backend: Any, transact_items: list[dict[str, Any]]) -> None:
        backup = []
        for entry in transact_items:
            for kind, request in entry.items():
                table = backend.get_table(request["TableName"])
                source = request["Item"] if kind == "Put" else request["Key"]
                names = [n for n in (table.hash_key_attr, table.range_key_attr) if n]
                key = {name: source[name] for name in names}
                current = backend.get_item(request["TableName"], key)
                attributes = None if current is None else current.to_json()["Attributes"]
                backup.append((request["TableName"], key, attributes))
        try:
            transact(backend, transact_items)
        except Exception:
            for table_name, key, attributes in reversed(backup):
                if attributes is None:
                    backend.delete_item(table_name, key)
                else:
                    backend.put_item(table_name, attributes)
            raise

    def partition_query(table: Any, *args: Any, **kwargs: Any) -> Any:
        arguments = query_signature.bind(table, *args, **kwargs).arguments
        hash_key = arguments.get("hash_key")
        if arguments.get("index_name") or hash_key is None or not table.range_key_attr:
            return query(table, *args, **kwargs)
        partition = list(table.items.get(hash_key, {}).values())
        table.all_items = lambda: partition  # this call's view: the partition alone
        try:
            return query(table, *args, **kwargs)
        finally:
            del table.all_items

    with (
        mock.patch.object(models, "copy", _Tables),
        mock.patch.object(models.DynamoDBBackend, "transact_write_items", transact_write_items),
        mock.patch.object(Table, "query", partition_query),
    ):
        yield


# -- the stack in moto ---------------------------------------------------------------------
