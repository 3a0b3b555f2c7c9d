"""Who may act on a job (`dropcut cancel`, `dropcut retry`): the caller AWS authenticated, and
one rule, from the stack's `ActorPrefixes`, that decides whether it may act on the job's input.

The caller: Cancel and Retry are the routes `POST /jobs/{job_id}/cancel` and `.../retry` of the
stack's HTTP API, with AWS_IAM authorization. API Gateway checks the request's SigV4 signature
and puts the caller's ARN in the request context (`requestContext.authorizer.iam.userArn`);
nothing the caller sends names anyone. That ARN is what a cancel or retry records.

The rule (`ActorPrefixes`, JSON): `{"<principal pattern>": ["inbox/team/", ...] | "writers"}`.
A caller may act on a job when an entry whose pattern matches the caller allows the job's
input key:
- a list of prefixes: the key starts with one of them;
- "writers": IAM lets that principal `s3:PutObject` the input key (its identity policies, as
  `iam:SimulatePrincipalPolicy` evaluates them): whoever may upload an input may cancel and
  retry its jobs. The account's root may write everything; a principal of another account, a
  federated user, or a grant made only in a bucket policy is not seen (name those in a list).
The default, `{"*": "writers"}`, is that rule for every caller. `{}` lets nobody act.

Patterns are principal ARNs where `*` matches any run of characters and `?` one. A role
session (`arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION`) also matches its role's ARN without
its path (`arn:aws:iam::ACCOUNT:role/ROLE`), so an entry can name a role.

A caller's text (the session name is the caller's choice; paths and names are an admin's) is
shown in reports, events and emails only through `shown`: printable, and inert in a mail client.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol

from botocore.exceptions import ClientError
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from dropcut.aws.job_store import JobStore
from dropcut.model.jobs import JOB_ID_PATTERN, JobRecord
from dropcut.observability import logger, metrics

if TYPE_CHECKING:
    from aws_lambda_powertools.event_handler import Response

#: The grant of an entry that defers to IAM: the principal may act where it may upload.
WRITERS: Literal["writers"] = "writers"
#: The actions, each a route of the HTTP API (Powertools' `<job_id>` syntax).
ACTIONS = ("cancel", "retry")
#: The IAM action "writers" asks about, on the job's input key.
UPLOAD_ACTION = "s3:PutObject"
#: What an ARN from API Gateway looks like (printable ASCII, no spaces; IAM caps paths at 512
#: and names at 64 characters).
CALLER_ARN_PATTERN = r"^arn:aws[a-z-]*:(iam|sts)::[0-9]{12}:[\x21-\x7e]{1,1000}$"
#: Longest text `shown` gives.
MAX_SHOWN_CHARS = 256

_USER = re.compile(r"^arn:(?P<partition>aws[a-z-]*):iam::(?P<account>[0-9]{12}):user/.+$")
_ROOT = re.compile(r"^arn:(?P<partition>aws[a-z-]*):iam::(?P<account>[0-9]{12}):root$")
_SESSION = re.compile(
    r"^arn:(?P<partition>aws[a-z-]*):sts::(?P<account>[0-9]{12}):assumed-role/"
    r"(?P<role>[^/]+)/(?P<session>[^/]+)$"
)
_ANY = re.compile(r"^arn:(?P<partition>aws[a-z-]*):(iam|sts)::(?P<account>[0-9]{12}):")
#: What `shown` keeps: the characters of ARNs and IAM names; anything else is "?".
_SHOWN_CHARS = re.compile(r"[^A-Za-z0-9_+=,.@:/-]")


def action_path(job_id: str, action: str) -> str:
    """The HTTP API path of `action` on `job_id` (the command line's request)."""
    if action not in ACTIONS:
        raise ValueError(f"unknown action {action!r}")
    return f"/jobs/{job_id}/{action}"


def route(action: str) -> str:
    """The resolver's route of `action` (`/jobs/<job_id>/cancel`)."""
    return action_path("<job_id>", action)


def shown(text: str) -> str:
    """Caller-provided text as a report, an event or an email may show it: the characters of an
    ARN only (anything else becomes "?"), defanged so that no mail client or terminal makes a
    link or an address of it ("[.]", "[@]", "[:]//"), at most MAX_SHOWN_CHARS. The record keeps
    the exact ARN."""
    kept = _SHOWN_CHARS.sub("?", text)
    defanged = kept.replace("://", "[:]//").replace(".", "[.]").replace("@", "[@]")
    if len(defanged) > MAX_SHOWN_CHARS:
        return defanged[: MAX_SHOWN_CHARS - 3] + "..."
    return defanged


# -- the caller, from the HTTP API's request context -------------------------------------------


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class IamIdentity(_Lenient):
    """`requestContext.authorizer.iam` of a route with AWS_IAM authorization (payload 2.0)."""

    userArn: str = Field(pattern=CALLER_ARN_PATTERN)
    accountId: str | None = None
    accessKey: str | None = None


class IamAuthorizer(_Lenient):
    iam: IamIdentity


class ActorRequestContext(_Lenient):
    #: The API owner's account: the stack's own.
    accountId: str = Field(pattern=r"^[0-9]{12}$")
    authorizer: IamAuthorizer


class ActorRequest(_Lenient):
    """What Cancel and Retry read of their HTTP API event: who AWS says is calling (the job id is
    the route's path parameter)."""

    requestContext: ActorRequestContext


@dataclass(frozen=True)
class Caller:
    """An authenticated principal, as API Gateway names it."""

    arn: str

    @property
    def account(self) -> str:
        found = _ANY.match(self.arn)
        return found["account"] if found else ""

    @property
    def partition(self) -> str:
        found = _ANY.match(self.arn)
        return found["partition"] if found else "aws"

    @property
    def role(self) -> str | None:
        """The role of a role session (None for any other principal)."""
        found = _SESSION.match(self.arn)
        return found["role"] if found else None

    @property
    def is_root(self) -> bool:
        return _ROOT.match(self.arn) is not None

    @property
    def is_user(self) -> bool:
        return _USER.match(self.arn) is not None

    @property
    def names(self) -> tuple[str, ...]:
        """What an ActorPrefixes pattern is matched against: the ARN, and for a role session
        its role's ARN (without the role's path, which the session ARN does not carry)."""
        if self.role is None:
            return (self.arn,)
        return (self.arn, f"arn:{self.partition}:iam::{self.account}:role/{self.role}")


# -- the rule ----------------------------------------------------------------------------------


Grant = tuple[str, ...] | Literal["writers"]
#: ActorPrefixes' default (template.yaml): every principal, where it may upload.
DEFAULT_ACTOR_PREFIXES = json.dumps({"*": WRITERS})


def _pattern(text: str) -> re.Pattern[str]:
    """A principal pattern: `*` any run of characters, `?` one, everything else literal."""
    parts = (".*" if c == "*" else "." if c == "?" else re.escape(c) for c in text)
    return re.compile("".join(parts))


@dataclass(frozen=True)
class ActorRules:
    """ActorPrefixes, parsed: (pattern text, compiled, grant), in the order given."""

    entries: tuple[tuple[str, re.Pattern[str], Grant], ...]

    @classmethod
    def parse(cls, text: str, inbox_prefix: str) -> ActorRules:
        """Parse ActorPrefixes; ValueError says what is wrong (the function fails at its cold
        start: a typo must not open or close every job silently)."""
        try:
            document = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"ActorPrefixes is not JSON: {exc}") from None
        if not isinstance(document, dict):
            raise ValueError('ActorPrefixes must be a JSON object: {"<principal>": [prefixes]}')
        entries = []
        for pattern, grant in document.items():
            if pattern != "*" and not pattern.startswith("arn:"):
                raise ValueError(f"ActorPrefixes: {pattern!r} is not a principal ARN or '*'")
            entries.append((pattern, _pattern(pattern), _grant(pattern, grant, inbox_prefix)))
        return cls(tuple(entries))

    def matching(self, caller: Caller) -> list[tuple[str, Grant]]:
        """The entries whose pattern matches the caller, in order."""
        return [
            (text, grant)
            for text, compiled, grant in self.entries
            if any(compiled.fullmatch(name) for name in caller.names)
        ]


def _grant(pattern: str, grant: Any, inbox_prefix: str) -> Grant:
    if grant == WRITERS:
        return WRITERS
    if not isinstance(grant, list) or not grant or not all(isinstance(p, str) for p in grant):
        raise ValueError(
            f'ActorPrefixes[{pattern!r}] must be "{WRITERS}" or a non-empty list of prefixes'
        )
    for prefix in grant:
        if not prefix.startswith(inbox_prefix):
            raise ValueError(
                f"ActorPrefixes[{pattern!r}]: {prefix!r} is not under the inbox ({inbox_prefix})"
            )
    return tuple(grant)


class IamReader(Protocol):
    """The two IAM calls "writers" makes (boto3's iam client)."""

    def get_role(self, *, RoleName: str) -> Any: ...

    def simulate_principal_policy(
        self, *, PolicySourceArn: str, ActionNames: list[str], ResourceArns: list[str]
    ) -> Any: ...


@dataclass(frozen=True)
class Decision:
    allowed: bool
    #: Why, for the log and the refusal (no key: the caller may not know it).
    why: str


@dataclass(frozen=True)
class ActorPolicy:
    """Decides whether a caller may act on an input key of the stack's bucket."""

    rules: ActorRules
    bucket: str
    #: The IAM client, built on first use (only "writers" needs it).
    iam: Callable[[], IamReader]

    def decide(self, caller: Caller, key: str, account: str) -> Decision:
        """May `caller` act on the job of input `key` in this stack (of `account`)?"""
        matched = self.rules.matching(caller)
        for pattern, grant in matched:
            if grant == WRITERS:
                if self._may_upload(caller, key, account):
                    return Decision(True, f"{pattern}: may upload the input ({UPLOAD_ACTION})")
            elif any(key.startswith(prefix) for prefix in grant):
                return Decision(True, f"{pattern}: a prefix of the input")
        if not matched:
            return Decision(False, "ActorPrefixes names no entry for this caller")
        return Decision(
            False,
            "the input is outside every prefix ActorPrefixes gives this caller"
            + (
                f", and IAM does not let it upload there ({UPLOAD_ACTION})"
                if any(grant == WRITERS for _, grant in matched)
                else ""
            ),
        )

    def _may_upload(self, caller: Caller, key: str, account: str) -> bool:
        """IAM's answer for s3:PutObject of the key, by the caller's identity policies."""
        if caller.account != account:
            return False  # another account's policies cannot be read from here
        if caller.is_root:
            return True
        iam = self.iam()
        try:
            if caller.is_user:
                source = caller.arn
            elif caller.role is not None:
                source = str(iam.get_role(RoleName=caller.role)["Role"]["Arn"])
            else:
                return False  # a federated user or another kind: name it in a list
            answer = iam.simulate_principal_policy(
                PolicySourceArn=source,
                ActionNames=[UPLOAD_ACTION],
                ResourceArns=[f"arn:{caller.partition}:s3:::{self.bucket}/{key}"],
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "NoSuchEntity":
                return False  # deleted since it signed
            raise
        results = answer.get("EvaluationResults") or []
        return bool(results) and all(r.get("EvalDecision") == "allowed" for r in results)


# -- the gate both handlers put before their step ------------------------------------------------


@dataclass(frozen=True)
class Answer:
    """An HTTP answer of the jobs API."""

    status_code: int
    body: dict[str, Any]

    @property
    def body_json(self) -> str:
        return json.dumps(self.body)

    def response(self) -> Response[str]:
        """The answer as the HTTP API's Lambda proxy response (JSON)."""
        from aws_lambda_powertools.event_handler import Response

        return Response(
            status_code=self.status_code, content_type="application/json", body=self.body_json
        )


@dataclass(frozen=True)
class Admitted:
    caller: Caller
    record: JobRecord


@dataclass(frozen=True)
class ActorDeps:
    policy: ActorPolicy
    store: JobStore


def admit(deps: ActorDeps, event: dict[str, Any], job_id: str, action: str) -> Admitted | Answer:
    """Who calls (from AWS), and whether they may `action` the job: Admitted, or the answer
    that refuses (403 no IAM caller or not allowed; 400 not a job id; 404 no such job). A
    refusal changes nothing; it is logged and counted (ActorRequestsRefused)."""
    try:
        request = ActorRequest.model_validate(event)
    except ValidationError:
        # API Gateway always sends it on an AWS_IAM route: this is a misrouted invoke.
        return _refused(None, job_id, action, "the request carries no IAM caller")
    caller = Caller(request.requestContext.authorizer.iam.userArn)
    if re.fullmatch(JOB_ID_PATTERN, job_id) is None:
        return Answer(400, {"message": "not a job id", "job_id": job_id[:100]})
    record = deps.store.get(job_id)
    if record is None:
        return Answer(404, {"job_id": job_id, "outcome": "not_found"})
    decision = deps.policy.decide(caller, record.key, request.requestContext.accountId)
    if not decision.allowed:
        return _refused(caller, job_id, action, decision.why, record.key)
    logger.info(
        "request admitted",
        extra={"caller": caller.arn, "action": action, "job_id": job_id, "rule": decision.why},
    )
    return Admitted(caller, record)


def _refused(
    caller: Caller | None, job_id: str, action: str, why: str, key: str | None = None
) -> Answer:
    who = caller.arn if caller is not None else None
    logger.warning(
        "request refused",
        extra={"caller": who, "action": action, "job_id": job_id, "key": key, "why": why},
    )
    metrics.add_metric(name="ActorRequestsRefused", unit="Count", value=1)
    job_id = job_id[:100]
    message = f"{who or 'this caller'} may not {action} {job_id}: {why}"
    return Answer(403, {"message": message, "caller": who, "job_id": job_id, "action": action})
