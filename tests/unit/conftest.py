"""Unit tests run in-process with no network: sockets are blocked (moto mocks need none)."""

import pytest
from pytest_socket import disable_socket, enable_socket


@pytest.fixture(autouse=True)
def _no_network():
    disable_socket(allow_unix_socket=True)
    yield
    enable_socket()


@pytest.fixture
def jobs_table():
    """The jobs table, created in moto (in-process) from template.yaml's JobsTable properties."""
    from pathlib import Path

    import boto3
    from cfnlint.decode import decode
    from moto import mock_aws

    template, _ = decode(str(Path(__file__).resolve().parents[2] / "template.yaml"))
    props = template["Resources"]["JobsTable"]["Properties"]
    with mock_aws():
        dynamodb = boto3.resource("dynamodb", region_name="us-east-1")
        table = dynamodb.create_table(
            TableName="jobs",
            AttributeDefinitions=props["AttributeDefinitions"],
            KeySchema=props["KeySchema"],
            BillingMode=props["BillingMode"],
            GlobalSecondaryIndexes=props.get("GlobalSecondaryIndexes", []),
        )
        yield table
