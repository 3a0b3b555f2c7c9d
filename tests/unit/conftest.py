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


@pytest.fixture
def stored_job(jobs_table):
    """`stored_job(**fields)`: put the job of inbox/a.mp4 (version v1, evolink, prompt "sepia"),
    with `fields` changed, in the jobs table; returns (store, job id)."""
    from dropcut.jobs import JobRecord, JobSpec, JobStatus, JobStore, job_id_for

    def store_one(**fields):
        store = JobStore(jobs_table)
        record = JobRecord(
            **{
                "job_id": job_id_for("media", "inbox/a.mp4", "v1"),
                "status": JobStatus.RECEIVED,
                "bucket": "media",
                "key": "inbox/a.mp4",
                "version": "v1",
                "spec": JobSpec(prompt="sepia"),
                "provider": "evolink",
                **fields,
            }
        )
        store.create(record)
        return store, record.job_id

    return store_one
