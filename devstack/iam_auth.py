"""API Gateway's AWS_IAM route authorization, locally: the request's SigV4 signature is checked
for real, and the caller it proves goes into the request context as API Gateway puts it
(`requestContext.authorizer.iam`: `userArn`, `accessKey`, `accountId`, `callerId`, `userId`).

Whose secret signs: an access key of one of moto's IAM users (that user), the credentials of a
role session from moto's STS AssumeRole (that session, its token checked), or the local
stack's placeholder credentials (`test`/`test`, `testing`/`testing`: the account's root, which
may act on every job). Anything else is refused as API Gateway refuses it, with a 403 and its
message: no or a malformed `Authorization` header ("Forbidden"), an unknown access key, a
signature that does not match (a wrong secret, a changed request), a date more than 15 minutes
off ("Signature expired"), a scope for another region or service. Presigned query strings are
not accepted (the jobs API is called with a header).
"""

from __future__ import annotations

import calendar
import hmac
import re
import time
from dataclasses import dataclass
from typing import Any

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

#: The placeholder credentials of the local stack (docs/local-stack.md) and of its workers
#: (devstack.stack.lambdas.DUMMY_CREDENTIALS): they act as the account's root here.
PLACEHOLDER_KEYS = {"test": "test", "testing": "testing"}
#: How far the request's date may be from now (AWS: 15 minutes).
MAX_SKEW_SECONDS = 15 * 60
SERVICE = "execute-api"

FORBIDDEN = "Forbidden"
INVALID_TOKEN = "The security token included in the request is invalid."
MISMATCH = (
    "The request signature we calculated does not match the signature you provided. Check your "
    "AWS Secret Access Key and signing method. Consult the service documentation for details."
)
EXPIRED = "Signature expired"

_AUTHORIZATION = re.compile(
    r"^AWS4-HMAC-SHA256 Credential=(?P<key>[^/\s]+)/(?P<date>\d{8})/(?P<region>[^/\s]+)/"
    r"(?P<service>[^/\s]+)/aws4_request,\s*SignedHeaders=(?P<signed>[a-z0-9;-]+),\s*"
    r"Signature=(?P<signature>[0-9a-f]{64})$"
)


class Refused(Exception):
    """The request is not authenticated: API Gateway's 403, with its message."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class Identity:
    """Who signed, as API Gateway reports it to the integration."""

    access_key: str
    account_id: str
    user_arn: str
    user_id: str
    secret: str
    session_token: str | None = None

    def context(self) -> dict[str, Any]:
        """`requestContext.authorizer` of a payload-2.0 event."""
        return {
            "iam": {
                "accessKey": self.access_key,
                "accountId": self.account_id,
                "callerId": self.user_id,
                "cognitoIdentity": None,
                "principalOrgId": None,
                "userArn": self.user_arn,
                "userId": self.user_id,
            }
        }


def authenticate(
    method: str,
    path: str,
    query: str,
    headers: dict[str, str],
    body: bytes,
    *,
    region: str,
    account_id: str,
    now: float | None = None,
) -> Identity:
    """Check the request's SigV4 signature (`headers` with lower-case names); the identity it
    proves, or Refused."""
    found = _AUTHORIZATION.match(headers.get("authorization", "").strip())
    if found is None or "host" not in headers:
        raise Refused(FORBIDDEN)
    signed = found["signed"].split(";")
    stamp = headers.get("x-amz-date", "")
    if "host" not in signed or "x-amz-date" not in signed or not stamp.startswith(found["date"]):
        raise Refused(FORBIDDEN)
    if found["service"] != SERVICE or found["region"] != region:
        raise Refused(
            f"Credential should be scoped to a valid region or service: {found['region']}/"
            f"{found['service']}"
        )
    try:
        signed_at = calendar.timegm(time.strptime(stamp, "%Y%m%dT%H%M%SZ"))
    except ValueError:
        raise Refused(FORBIDDEN) from None
    if abs((time.time() if now is None else now) - signed_at) > MAX_SKEW_SECONDS:
        raise Refused(EXPIRED)
    identity = _identity(found["key"], headers.get("x-amz-security-token"), account_id)
    request = AWSRequest(
        method=method,
        url=f"http://{headers['host']}{path}" + (f"?{query}" if query else ""),
        data=body,
        headers={name: headers.get(name, "") for name in signed},
    )
    request.context["timestamp"] = stamp
    credentials = Credentials(identity.access_key, identity.secret, identity.session_token)
    auth = SigV4Auth(credentials, SERVICE, region)
    expected = auth.signature(
        auth.string_to_sign(request, auth.canonical_request(request)), request
    )
    if not hmac.compare_digest(expected, found["signature"]):
        raise Refused(MISMATCH)
    return identity


def _identity(access_key: str, token: str | None, account_id: str) -> Identity:
    """Whose access key it is, with its secret (moto's IAM users and STS sessions)."""
    if access_key in PLACEHOLDER_KEYS:
        return Identity(
            access_key=access_key,
            account_id=account_id,
            user_arn=f"arn:aws:iam::{account_id}:root",
            user_id=account_id,
            secret=PLACEHOLDER_KEYS[access_key],
            session_token=token,
        )
    from moto.iam.models import iam_backends
    from moto.sts.models import sts_backends

    for user in iam_backends[account_id]["aws"].users.values():
        for key in user.access_keys:
            if key.access_key_id == access_key and key.status == "Active":
                if token is not None:
                    raise Refused(INVALID_TOKEN)
                return Identity(access_key, account_id, user.arn, user.id, key.secret_access_key)
    for session in sts_backends[account_id]["aws"].assumed_roles:
        if session.access_key_id == access_key:
            if token != session.session_token:
                raise Refused(INVALID_TOKEN)
            if session.expiration.timestamp() < time.time():
                raise Refused("The security token included in the request is expired")
            return Identity(
                access_key,
                account_id,
                session.arn,
                session.user_id,
                session.secret_access_key,
                session_token=token,
            )
    raise Refused(INVALID_TOKEN)
