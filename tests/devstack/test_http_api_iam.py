"""The local HTTP API's AWS_IAM routes (devstack.http_api + devstack.iam_auth): the SigV4
signature is checked for real against moto's IAM users and STS sessions (or the placeholder
credentials, the account's root), a request that fails gets API Gateway's 403 and never reaches
the function, and the function sees the caller the signature proves."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import boto3
import httpx
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from moto import mock_aws

from devstack import iam_auth
from devstack.http_api import LocalHttpApi

ACCOUNT = "123456789012"
JOB = "job-" + "a" * 40


class Recorder:
    """The function behind the routes: records each event, answers 200 with its caller."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def __call__(self, function: str, event: dict[str, Any]) -> tuple[Any, str | None]:
        self.events.append(event)
        caller = (event["requestContext"].get("authorizer") or {}).get("iam", {}).get("userArn")
        return {"statusCode": 200, "body": json.dumps({"caller": caller})}, None


@pytest.fixture
def api() -> Iterator[tuple[LocalHttpApi, Recorder]]:
    recorder = Recorder()
    with mock_aws():
        served = LocalHttpApi(recorder, ACCOUNT)
        served.add_route("POST", "/jobs/{job_id}/cancel", "CancelFunction", "api", "AWS_IAM")
        served.add_route("POST", "/callbacks/{job_id}", "WebhookFunction", "api")
        served.start()
        try:
            yield served, recorder
        finally:
            served.stop()


def _post(
    url: str,
    credentials: Credentials | None,
    *,
    service: str = "execute-api",
    region: str = "us-east-1",
    body: bytes = b"",
    send_body: bytes | None = None,
    when: float | None = None,
) -> httpx.Response:
    request = AWSRequest(method="POST", url=url, data=body)
    if credentials is not None:
        auth = SigV4Auth(credentials, service, region)
        if when is None:
            auth.add_auth(request)
        else:  # signed at another time (botocore takes the clock at add_auth)
            import botocore.auth

            real = botocore.auth.get_current_datetime
            botocore.auth.get_current_datetime = lambda: real().fromtimestamp(when, real().tzinfo)
            try:
                auth.add_auth(request)
            finally:
                botocore.auth.get_current_datetime = real
    headers = dict(request.headers.items())
    return httpx.post(url, headers=headers, content=body if send_body is None else send_body)


def _user(name: str, path: str = "/") -> tuple[str, Credentials]:
    iam = boto3.client("iam", region_name="us-east-1")
    arn = iam.create_user(UserName=name, Path=path)["User"]["Arn"]
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return arn, Credentials(key["AccessKeyId"], key["SecretAccessKey"])


def test_an_iam_route_admits_only_a_valid_signature_and_names_the_signer(api):
    served, recorder = api
    url = f"{served.url}/jobs/{JOB}/cancel"
    arn, alice = _user("alice", "/editors/")

    unsigned = _post(url, None)
    assert (unsigned.status_code, unsigned.json()) == (403, {"message": "Forbidden"})

    answer = _post(url, alice)
    assert answer.status_code == 200 and answer.json() == {"caller": arn}
    identity = recorder.events[-1]["requestContext"]["authorizer"]["iam"]
    assert identity["userArn"] == "arn:aws:iam::123456789012:user/editors/alice"
    assert (identity["accessKey"], identity["accountId"]) == (alice.access_key, ACCOUNT)

    placeholder = _post(url, Credentials("test", "test"))
    assert placeholder.json() == {"caller": f"arn:aws:iam::{ACCOUNT}:root"}
    served_before = len(recorder.events)

    refusals = {
        "wrong secret": _post(url, Credentials(alice.access_key, "not-the-secret")),
        "unknown key": _post(url, Credentials("unknown-access-key-id", "whatever")),
        "body changed": _post(url, alice, body=b"{}", send_body=b'{"job":"other"}'),
        "other path": _post_to_other_path(served.url, alice),
        "other service": _post(url, alice, service="s3"),
        "other region": _post(url, alice, region="eu-west-1"),
        "an hour ago": _post(url, alice, when=time.time() - 3600),
    }
    for why, refused in refusals.items():
        assert refused.status_code == 403, why
    assert refusals["wrong secret"].json()["message"] == iam_auth.MISMATCH
    assert refusals["unknown key"].json()["message"] == iam_auth.INVALID_TOKEN
    assert refusals["an hour ago"].json()["message"] == iam_auth.EXPIRED
    assert len(recorder.events) == served_before, "no refused request reached the function"


def _post_to_other_path(base: str, credentials: Credentials) -> httpx.Response:
    """A signature made for one job, sent for another."""
    request = AWSRequest(method="POST", url=f"{base}/jobs/{JOB}/cancel", data=b"")
    SigV4Auth(credentials, "execute-api", "us-east-1").add_auth(request)
    other = f"{base}/jobs/job-{'b' * 40}/cancel"
    return httpx.post(other, headers=dict(request.headers.items()), content=b"")


def test_a_role_session_signs_with_its_token_and_is_named_by_its_session(api):
    served, _ = api
    url = f"{served.url}/jobs/{JOB}/cancel"
    iam = boto3.client("iam", region_name="us-east-1")
    iam.create_role(RoleName="editors", AssumeRolePolicyDocument="{}")
    session = boto3.client("sts", region_name="us-east-1").assume_role(
        RoleArn=f"arn:aws:iam::{ACCOUNT}:role/editors", RoleSessionName="carol"
    )["Credentials"]
    good = Credentials(session["AccessKeyId"], session["SecretAccessKey"], session["SessionToken"])
    answer = _post(url, good)
    assert answer.json() == {"caller": f"arn:aws:sts::{ACCOUNT}:assumed-role/editors/carol"}
    forged = Credentials(good.access_key, good.secret_key, "not-the-token")
    assert _post(url, forged).status_code == 403


def test_a_route_without_auth_stays_open_and_carries_no_caller(api):
    served, recorder = api
    answer = httpx.post(f"{served.url}/callbacks/{JOB}?cap=x", content=b"{}")
    assert answer.json() == {"caller": None}
    assert "authorizer" not in recorder.events[-1]["requestContext"]
