"""Which dropcut stack to talk to, found the way a deployed one is: its CloudFormation stack.

`--stack NAME` reads that stack's Outputs (MediaBucketName, JobsTableName, ...) and Parameters
(Provider, ProviderConcurrency) with the usual AWS configuration (`--region`, `--profile`, or
the AWS_* environment variables and config files, as the AWS CLI does). `--local` and
`--endpoint-url URL` send every call to another endpoint (the local stack of `make stack`
registers a stack record named `dropcut-local`), so the same code path finds the stack.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient
    from mypy_boto3_dynamodb.service_resource import Table
    from mypy_boto3_s3.client import S3Client
    from mypy_boto3_stepfunctions.client import SFNClient

LOCAL_ENDPOINT = "http://127.0.0.1:4566"
LOCAL_STACK = "dropcut-local"
DEFAULT_STACK = "dropcut"
#: Where a local endpoint runs when nothing else names a region.
LOCAL_REGION = "us-east-1"


class ConnectionFailed(Exception):
    """The stack could not be found or reached; the message says which and why."""


@dataclass(frozen=True)
class Target:
    """What the user asked to connect to (global options)."""

    stack: str | None = None
    local: bool = False
    endpoint_url: str | None = None
    region: str | None = None
    profile: str | None = None

    @property
    def given(self) -> bool:
        """True when the user named a stack or an endpoint."""
        return bool(self.stack or self.local or self.endpoint_url)

    @property
    def endpoint(self) -> str | None:
        return self.endpoint_url or (LOCAL_ENDPOINT if self.local else None)

    @property
    def flags(self) -> str:
        """The global options that name this target again, for a command to suggest."""
        named = [
            f"--stack {self.stack}" if self.stack else "",
            "--local" if self.local else "",
            f"--endpoint-url {self.endpoint_url}" if self.endpoint_url else "",
            f"--region {self.region}" if self.region else "",
            f"--profile {self.profile}" if self.profile else "",
        ]
        return " ".join(flag for flag in named if flag)

    @property
    def stack_name(self) -> str:
        return self.stack or (LOCAL_STACK if self.endpoint else DEFAULT_STACK)


@dataclass
class Stack:
    """A dropcut stack: its outputs and parameters, and clients on its endpoint."""

    name: str
    outputs: dict[str, str]
    parameters: dict[str, str]
    session: boto3.Session
    endpoint_url: str | None

    @property
    def bucket(self) -> str:
        return self._output("MediaBucketName")

    @property
    def jobs_table_name(self) -> str:
        return self._output("JobsTableName")

    @property
    def batches_table_name(self) -> str:
        """The batches (dropcut.aws.batch_store): `dropcut batches`, `watch --batch`."""
        return self._output("BatchesTableName")

    @property
    def provider(self) -> str | None:
        return self.parameters.get("Provider")

    @property
    def concurrency(self) -> int:
        return int(self.parameters.get("ProviderConcurrency") or 5)

    @property
    def region(self) -> str | None:
        return self.session.region_name

    @property
    def jobs_api_url(self) -> str:
        """The jobs API (cancel, retry: AWS_IAM routes of the stack's HTTP API)."""
        url = self.outputs.get("JobsApiUrl")
        if not url:
            raise ConnectionFailed(
                f"stack {self.name!r} has no output JobsApiUrl: deploy a dropcut version with "
                f"the jobs API (or check that it is a dropcut stack)"
            )
        return url

    def _client(self, service: str) -> Any:
        """A boto3 client of `service` on the stack's endpoint (the typed properties below)."""
        return self.session.client(
            service,  # type: ignore[call-overload]
            endpoint_url=self.endpoint_url,
            config=Config(retries={"max_attempts": 4, "mode": "standard"}),
        )

    @functools.cached_property
    def s3(self) -> S3Client:
        """S3 on the stack's endpoint (the media bucket's uploads, results, reports)."""
        client: S3Client = self._client("s3")
        return client

    @functools.cached_property
    def dynamodb(self) -> DynamoDBClient:
        """DynamoDB on the stack's endpoint (listing tables; records go through `table`)."""
        client: DynamoDBClient = self._client("dynamodb")
        return client

    @functools.cached_property
    def sfn(self) -> SFNClient:
        """Step Functions on the stack's endpoint (the slot pool hands waits over with it)."""
        client: SFNClient = self._client("stepfunctions")
        return client

    def table(self, name: str) -> Table:
        resource = self.session.resource("dynamodb", endpoint_url=self.endpoint_url)
        return resource.Table(name)

    @functools.cached_property
    def slots_table_name(self) -> str | None:
        """The provider slots table: CloudFormation names it `<stack>-SlotsTable-<suffix>` (the
        local stack `<stack>-SlotsTable`). None when it cannot be listed."""
        prefix = f"{self.name}-SlotsTable"
        try:
            pages = self.dynamodb.get_paginator("list_tables").paginate()
            names = [name for page in pages for name in page["TableNames"]]
        except (BotoCoreError, ClientError):
            return None
        found = [name for name in names if name == prefix or name.startswith(prefix + "-")]
        return found[0] if len(found) == 1 else None

    def _output(self, name: str) -> str:
        try:
            return self.outputs[name]
        except KeyError:
            raise ConnectionFailed(
                f"stack {self.name!r} has no output {name}: is it a dropcut stack?"
            ) from None


def session_for(target: Target) -> boto3.Session:
    """A boto3 session as the AWS CLI would build it; a local endpoint gets a region and
    placeholder credentials when none are configured (the local stack takes any; its jobs API
    checks signatures and takes test/test as the account's root)."""
    session = boto3.Session(profile_name=target.profile, region_name=target.region)
    if target.endpoint is None:
        return session
    region = session.region_name or LOCAL_REGION
    if session.get_credentials() is None:
        # Not a secret: moto accepts any credentials, and the local jobs API takes these as the
        # account's root (devstack.iam_auth).
        placeholder = "test"
        return boto3.Session(
            aws_access_key_id=placeholder, aws_secret_access_key=placeholder, region_name=region
        )
    return boto3.Session(profile_name=target.profile, region_name=region)


def connect(target: Target) -> Stack:
    """Find the stack (DescribeStacks) and read its outputs and parameters."""
    try:
        session = session_for(target)
        cloudformation = session.client("cloudformation", endpoint_url=target.endpoint)
        [described] = cloudformation.describe_stacks(StackName=target.stack_name)["Stacks"]
    except ClientError as exc:
        raise ConnectionFailed(
            f"stack {target.stack_name!r} not found: {exc.response['Error'].get('Message', exc)}"
            + _where(target)
        ) from None
    except BotoCoreError as exc:
        raise ConnectionFailed(f"cannot reach AWS: {exc}{_where(target)}") from None
    return Stack(
        name=target.stack_name,
        outputs={o["OutputKey"]: o["OutputValue"] for o in described.get("Outputs", [])},
        parameters={
            p["ParameterKey"]: p.get("ParameterValue", "") for p in described.get("Parameters", [])
        },
        session=session,
        endpoint_url=target.endpoint,
    )


def _where(target: Target) -> str:
    if target.endpoint:
        return f" (endpoint {target.endpoint}; is `make stack` running?)"
    return " (pass --stack NAME, --region or --profile; or --local for the local stack)"
