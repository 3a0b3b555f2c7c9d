"""Tables as template.yaml defines them, for in-process moto (unit tests, benchmarks): one home,
so what is tested and measured cannot drift from what deploys."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cfnlint.decode import decode  # type: ignore[import-untyped]

TEMPLATE = Path(__file__).resolve().parents[1] / "template.yaml"


def table_from_template(dynamodb: Any, logical_id: str, name: str) -> Any:
    """Create the table `name` with the key schema, indexes and billing mode template.yaml
    gives `logical_id`; returns it (a boto3 DynamoDB resource's Table)."""
    template, _ = decode(str(TEMPLATE))
    props = template["Resources"][logical_id]["Properties"]
    extra = (
        {"GlobalSecondaryIndexes": props["GlobalSecondaryIndexes"]}
        if "GlobalSecondaryIndexes" in props
        else {}
    )
    return dynamodb.create_table(
        TableName=name,
        AttributeDefinitions=props["AttributeDefinitions"],
        KeySchema=props["KeySchema"],
        BillingMode=props["BillingMode"],
        **extra,
    )
