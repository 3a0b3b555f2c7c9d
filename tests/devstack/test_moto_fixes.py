"""The local stack's corrections to moto keep the guarantees dropcut relies on."""

from __future__ import annotations

import threading

import boto3
from moto import mock_aws

from devstack import moto_fixes


def test_a_reader_never_sees_an_item_an_update_is_still_creating(monkeypatch):
    # moto's UpdateItem stores a new item's bare key before it applies the update expression;
    # the chaos test's slot line once read such a half-made waiter (KeyError: 'job_id').
    from moto.dynamodb.parsing.executors import UpdateExpressionExecutor

    moto_fixes.install()
    stored, release = threading.Event(), threading.Event()
    original_execute = UpdateExpressionExecutor.execute

    def slow_execute(self, *args):
        stored.set()  # the bare key is in the table now
        release.wait(timeout=10)
        return original_execute(self, *args)

    monkeypatch.setattr(UpdateExpressionExecutor, "execute", slow_execute)
    with mock_aws():
        table = boto3.resource("dynamodb", region_name="us-east-1").create_table(
            TableName="slots",
            KeySchema=[
                {"AttributeName": "pool", "KeyType": "HASH"},
                {"AttributeName": "entry", "KeyType": "RANGE"},
            ],
            AttributeDefinitions=[
                {"AttributeName": "pool", "AttributeType": "S"},
                {"AttributeName": "entry", "AttributeType": "S"},
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        writer = threading.Thread(
            target=table.update_item,
            kwargs={
                "Key": {"pool": "p", "entry": "wait#1"},
                "UpdateExpression": "SET job_id = :job",
                "ExpressionAttributeValues": {":job": "job-1"},
            },
        )
        writer.start()
        assert stored.wait(timeout=10)
        seen: list[list[dict]] = []
        reader = threading.Thread(
            target=lambda: seen.append(
                table.query(
                    KeyConditionExpression="#p = :p",
                    ExpressionAttributeNames={"#p": "pool"},
                    ExpressionAttributeValues={":p": "p"},
                )["Items"]
            )
        )
        reader.start()
        reader.join(timeout=1.0)  # with the fix the query waits for the update to finish
        release.set()
        reader.join(timeout=10)
        writer.join(timeout=10)
    assert seen, "the query answered"
    assert all("job_id" in item for item in seen[0]), seen
