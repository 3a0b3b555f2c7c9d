"""Who may cancel and retry (dropcut.services.actors): the caller comes from the HTTP API's IAM request
context, never from the payload; ActorPrefixes decides by the job's input prefix (by default:
whoever IAM lets upload the input); a refused caller gets 403 and nothing changes; caller text
reaches a report, an event or an email only defanged. The IAM answers come from moto with the
local stack's SimulatePrincipalPolicy (devstack.moto_fixes), in-process."""

from __future__ import annotations

import copy
import importlib
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from cfnlint.decode import decode

from devstack import moto_fixes
from dropcut.aws.job_events import NO_JOB_EVENTS
from dropcut.model.jobs import JobStatus
from dropcut.services.actors import (
    DEFAULT_ACTOR_PREFIXES,
    ActorDeps,
    ActorPolicy,
    ActorRules,
    Admitted,
    Answer,
    Caller,
    admit,
    route,
    shown,
)
from dropcut.steps.cancel import CancelDeps, CancelOutcome, cancel_job

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE, _ = decode(str(ROOT / "template.yaml"))
SAMPLE = json.loads((ROOT / "events" / "cancel.json").read_text())
ACCOUNT = "123456789012"
BUCKET = "media"
FORGED = "arn:aws:iam::123456789012:user/x URGENT re-run at https://evil.example"


@pytest.fixture
def iam(aws):
    moto_fixes._iam_simulates_principal_policies()
    return boto3.client("iam", region_name="us-east-1")


def _writer(iam, name: str, prefix: str, path: str = "/") -> str:
    """An IAM user who may upload under `prefix` of the media bucket; its ARN."""
    iam.create_user(UserName=name, Path=path)
    iam.put_user_policy(UserName=name, PolicyName="upload", PolicyDocument=_upload(prefix))
    return str(iam.get_user(UserName=name)["User"]["Arn"])


def _upload(prefix: str) -> str:
    statement = {
        "Effect": "Allow",
        "Action": "s3:PutObject",
        "Resource": f"arn:aws:s3:::{BUCKET}/{prefix}*",
    }
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})


def _policy(iam, text: str = DEFAULT_ACTOR_PREFIXES) -> ActorPolicy:
    return ActorPolicy(rules=ActorRules.parse(text, "inbox/"), bucket=BUCKET, iam=lambda: iam)


def _event(user_arn: str | None) -> dict[str, Any]:
    event = copy.deepcopy(SAMPLE)
    if user_arn is None:
        del event["requestContext"]["authorizer"]
    else:
        event["requestContext"]["authorizer"]["iam"]["userArn"] = user_arn
    return event


# -- the parameter -------------------------------------------------------------------------------


def test_the_templates_default_is_writers_for_everyone_and_reaches_both_functions():
    parameter = TEMPLATE["Parameters"]["ActorPrefixes"]
    assert (
        json.loads(parameter["Default"]) == json.loads(DEFAULT_ACTOR_PREFIXES) == {"*": "writers"}
    )
    rules = ActorRules.parse(parameter["Default"], "inbox/")
    assert [(text, grant) for text, _, grant in rules.entries] == [("*", "writers")]
    for function, action in (("CancelFunction", "cancel"), ("RetryFunction", "retry")):
        props = TEMPLATE["Resources"][function]["Properties"]
        assert props["Environment"]["Variables"]["ACTOR_PREFIXES"] == {"Ref": "ActorPrefixes"}
        [event] = props["Events"].values()
        assert event["Type"] == "HttpApi" and event["Properties"]["Auth"] == {
            "Authorizer": "AWS_IAM"
        }
        assert event["Properties"]["Path"] == route(action).replace("<job_id>", "{job_id}")
        assert event["Properties"]["Method"] == "POST"
        assert event["Properties"]["ApiId"] == {"Ref": "WebhookApi"}
    api = TEMPLATE["Resources"]["WebhookApi"]["Properties"]
    # IAM is offered to the routes that ask; no default, so the provider's callback stays open.
    assert api["Auth"] == {"EnableIamAuthorizer": True}
    callback = TEMPLATE["Resources"]["WebhookFunction"]["Properties"]["Events"]
    assert all("Auth" not in event["Properties"] for event in callback.values())
    assert "JobsApiUrl" in TEMPLATE["Outputs"]
    assert not {"CancelFunctionName", "RetryFunctionName"} & set(TEMPLATE["Outputs"])


def test_as_deployed_the_jobs_routes_need_sigv4_and_the_callback_route_does_not():
    # What CloudFormation gets from the SAM transform (the OpenAPI body of the HTTP API).
    from tests.unit.test_iam import EXPANDED

    body = EXPANDED["WebhookApi"]["Properties"]["Body"]
    scheme = body["components"]["securitySchemes"]["AWS_IAM"]
    assert scheme["x-amazon-apigateway-authtype"] == "awsSigv4"
    for action in ("cancel", "retry"):
        post = body["paths"][f"/jobs/{{job_id}}/{action}"]["post"]
        assert post["security"] == [{"AWS_IAM": []}]
        assert post["x-amazon-apigateway-integration"]["payloadFormatVersion"] == "2.0"
    assert "security" not in body["paths"]["/callbacks/{part_id}"]["post"]


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("writers", "not JSON"),
        ('["inbox/"]', "JSON object"),
        ('{"alice": ["inbox/"]}', "not a principal ARN"),
        ('{"*": "readers"}', "non-empty list"),
        ('{"*": []}', "non-empty list"),
        ('{"*": ["outbox/"]}', "not under the inbox"),
    ],
)
def test_a_bad_actor_prefixes_fails_at_parse_time(text, complaint):
    with pytest.raises(ValueError, match=complaint):
        ActorRules.parse(text, "inbox/")


# -- the rule ------------------------------------------------------------------------------------


def test_by_default_whoever_may_upload_the_input_may_act_and_nobody_else(iam):
    alice = Caller(_writer(iam, "alice", "inbox/alice/", path="/editors/"))
    bob = Caller(_writer(iam, "bob", "inbox/bob/"))
    policy = _policy(iam)
    assert policy.decide(alice, "inbox/alice/clip.mp4", ACCOUNT).allowed
    refused = policy.decide(bob, "inbox/alice/clip.mp4", ACCOUNT)
    assert not refused.allowed and "s3:PutObject" in refused.why
    assert "inbox/alice" not in refused.why  # the refusal does not tell the caller the key
    # Deleted since it signed: not a writer.
    assert not policy.decide(
        Caller(f"arn:aws:iam::{ACCOUNT}:user/gone"), "inbox/x.mp4", ACCOUNT
    ).allowed


def test_a_role_session_is_a_writer_where_its_role_may_upload(iam):
    iam.create_role(RoleName="editors", Path="/teams/", AssumeRolePolicyDocument="{}")
    iam.put_role_policy(
        RoleName="editors", PolicyName="upload", PolicyDocument=_upload("inbox/team/")
    )
    session = Caller(f"arn:aws:sts::{ACCOUNT}:assumed-role/editors/alice@example.com")
    policy = _policy(iam)
    assert policy.decide(session, "inbox/team/a.mp4", ACCOUNT).allowed
    assert not policy.decide(session, "inbox/other/a.mp4", ACCOUNT).allowed


def test_the_accounts_root_writes_everywhere_another_account_and_federated_users_nowhere(iam):
    policy = _policy(iam)
    assert policy.decide(Caller(f"arn:aws:iam::{ACCOUNT}:root"), "inbox/a.mp4", ACCOUNT).allowed
    for other in (
        "arn:aws:iam::210987654321:root",
        "arn:aws:iam::210987654321:user/alice",
        f"arn:aws:sts::{ACCOUNT}:federated-user/alice",
    ):
        assert not policy.decide(Caller(other), "inbox/a.mp4", ACCOUNT).allowed, other


def test_explicit_entries_by_principal_pattern_and_a_roles_sessions():
    mapping = {
        f"arn:aws:iam::{ACCOUNT}:role/Ops": ["inbox/"],
        f"arn:aws:sts::{ACCOUNT}:assumed-role/Editors-*/*": ["inbox/team-a/", "inbox/shared/"],
        "arn:aws:iam::210987654321:user/partner": ["inbox/partner/"],
    }

    def no_iam() -> Any:
        raise AssertionError("lists of prefixes never ask IAM")

    policy = ActorPolicy(ActorRules.parse(json.dumps(mapping), "inbox/"), BUCKET, no_iam)
    ops = Caller(f"arn:aws:sts::{ACCOUNT}:assumed-role/Ops/bob")  # matches the role's entry
    editor = Caller(f"arn:aws:sts::{ACCOUNT}:assumed-role/Editors-A/carol")
    partner = Caller("arn:aws:iam::210987654321:user/partner")
    assert policy.decide(ops, "inbox/anything/x.mp4", ACCOUNT).allowed
    assert policy.decide(editor, "inbox/shared/x.mp4", ACCOUNT).allowed
    assert not policy.decide(editor, "inbox/team-b/x.mp4", ACCOUNT).allowed
    assert policy.decide(partner, "inbox/partner/x.mp4", ACCOUNT).allowed  # another account, named
    stranger = policy.decide(Caller(f"arn:aws:iam::{ACCOUNT}:user/mallory"), "inbox/x.mp4", ACCOUNT)
    assert not stranger.allowed and "no entry" in stranger.why


def test_an_empty_mapping_lets_nobody_act(iam):
    policy = _policy(iam, "{}")
    assert not policy.decide(Caller(f"arn:aws:iam::{ACCOUNT}:root"), "inbox/a.mp4", ACCOUNT).allowed


# -- the gate: the caller from AWS, 403 before anything changes ----------------------------------


def test_the_caller_is_read_from_the_iam_request_context_and_nothing_else(iam, stored_job):
    store, job_id = stored_job()
    deps = ActorDeps(policy=_policy(iam), store=store)
    # No IAM context (a misrouted or direct invoke): refused, whatever the payload says.
    event = _event(None)
    event["body"] = json.dumps({"requested_by": f"arn:aws:iam::{ACCOUNT}:root"})
    refused = admit(deps, event, job_id, "cancel")
    assert isinstance(refused, Answer) and refused.status_code == 403
    assert refused.body["caller"] is None
    # Something that is no ARN in the context (API Gateway never sends one): refused too.
    assert admit(deps, _event(FORGED), job_id, "cancel") == Answer(
        403,
        {
            "message": f"this caller may not cancel {job_id}: the request carries no IAM caller",
            "caller": None,
            "job_id": job_id,
            "action": "cancel",
        },
    )
    root = admit(deps, _event(f"arn:aws:iam::{ACCOUNT}:root"), job_id, "retry")
    assert isinstance(root, Admitted) and root.caller.arn == f"arn:aws:iam::{ACCOUNT}:root"
    assert root.record.job_id == job_id
    missing = admit(deps, _event(f"arn:aws:iam::{ACCOUNT}:root"), "job-" + "f" * 40, "cancel")
    assert missing == Answer(404, {"job_id": "job-" + "f" * 40, "outcome": "not_found"})
    bad_id = admit(deps, _event(f"arn:aws:iam::{ACCOUNT}:root"), "../etc", "cancel")
    assert isinstance(bad_id, Answer) and bad_id.status_code == 400


def test_a_caller_outside_the_prefix_gets_403_and_the_job_is_unchanged(
    iam, stored_job, media_bucket, settings, pool
):
    store, job_id = stored_job()  # inbox/a.mp4
    before = store.require(job_id)
    bob = _writer(iam, "bob", "inbox/bob/")
    refused = admit(ActorDeps(_policy(iam), store), _event(bob), job_id, "cancel")
    assert isinstance(refused, Answer) and refused.status_code == 403
    assert refused.body["caller"] == bob and bob in refused.body["message"]
    assert store.require(job_id) == before
    assert "Contents" not in media_bucket.list_objects_v2(Bucket=settings.bucket)


class _Sfn:
    def stop_execution(self, executionArn: str, error: str, cause: str) -> None: ...


def test_a_cancel_records_the_callers_arn_and_shows_it_only_defanged(
    iam, stored_job, media_bucket, settings, pool
):
    from dropcut.aws.executions import Executions

    store, job_id = stored_job()
    # An IAM path may hold a URL (an admin typed it); the session name is the caller's.
    iam.create_user(UserName="eve", Path="/https://evil.example/")
    iam.put_user_policy(UserName="eve", PolicyName="upload", PolicyDocument=_upload("inbox/"))
    eve = str(iam.get_user(UserName="eve")["User"]["Arn"])
    admitted = admit(ActorDeps(_policy(iam), store), _event(eve), job_id, "cancel")
    assert isinstance(admitted, Admitted)
    deps = CancelDeps(
        s3=media_bucket,
        store=store,
        layout=settings.layout,
        executions=Executions(_Sfn(), "arn:aws:states:us-east-1:1:stateMachine:jobs"),  # type: ignore[arg-type]
        slots=pool,
        lost_task_hold_seconds=600,
        events=NO_JOB_EVENTS,
    )
    result = cancel_job(deps, job_id, admitted.caller.arn)
    assert result.outcome is CancelOutcome.CANCELLED
    record = store.require(job_id)
    assert (record.status, record.cancel_requested_by) == (JobStatus.FAILED, eve)
    report = json.loads(
        media_bucket.get_object(Bucket=settings.bucket, Key=result.error_report_key)["Body"].read()
    )
    assert "https://" not in report["message"] and "evil.example" not in report["message"]
    assert shown(eve) in report["message"]


def test_shown_keeps_arn_characters_and_defangs_links_and_addresses():
    assert shown("arn:aws:iam::123456789012:user/alice") == "arn:aws:iam::123456789012:user/alice"
    forged = shown(FORGED)
    assert " " not in forged and "https://" not in forged and "evil.example" not in forged
    assert forged.endswith("https[:]//evil[.]example")
    assert (
        shown("arn:aws:sts::1:assumed-role/R/a@b.co") == "arn:aws:sts::1:assumed-role/R/a[@]b[.]co"
    )
    assert shown("<script>\n") == "?script??"
    assert len(shown("x" * 5000)) == 256


# -- the handlers: the whole request, in-process -------------------------------------------------


@dataclass
class _Context:
    function_name: str = "CancelFunction"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:CancelFunction"
    aws_request_id: str = "req-1"


@pytest.mark.parametrize("action", ["cancel", "retry"])
def test_each_handler_answers_403_to_a_caller_outside_the_prefix(
    action, iam, stored_job, media_bucket, monkeypatch
):
    store, job_id = stored_job(status=JobStatus.FAILED, error_reason="cancelled")
    before = store.require(job_id)
    env = {
        "MEDIA_BUCKET": BUCKET,
        "JOBS_TABLE": "jobs",
        "SLOTS_TABLE": "slots",
        "BATCHES_TABLE": "batches",
        "BATCH_QUIET_SECONDS": "600",
        "INBOX_PREFIX": "inbox/",
        "OUTBOX_PREFIX": "outbox/",
        "ERRORS_PREFIX": "errors/",
        "PROVIDER": "evolink",
        "PROVIDER_BASE_URL": "https://provider.invalid",
        "PROVIDER_MODEL": "",
        "PROVIDER_API_KEY_SECRET_ARN": "arn:aws:secretsmanager:us-east-1:123456789012:secret:k",
        "ALLOW_INSECURE_URLS": "false",
        "PROVIDER_CONCURRENCY": "2",
        "QUEUE_WAIT_SECONDS": "60",
        "JOB_DEADLINE_SECONDS": "60",
        "DAILY_CREDIT_BUDGET": "0",
        "CREDITS_PER_BILLED_SECOND": "1",
        "STATE_MACHINE_ARN": "arn:aws:states:us-east-1:123456789012:stateMachine:jobs",
        "DEFAULT_PROMPT": "",
        "MAX_PARTS_PER_JOB": "12",
        "NORMALIZE_INPUTS": "auto",
        "ACTOR_PREFIXES": DEFAULT_ACTOR_PREFIXES,
        "POWERTOOLS_SERVICE_NAME": "stack",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    from dropcut import observability

    # The module-level Metrics was built before the environment had a namespace.
    monkeypatch.setattr(observability.metrics.provider, "namespace", "dropcut")
    module_name = f"functions.{action}.app"
    sys.modules.pop(module_name, None)
    try:
        app = importlib.import_module(module_name)
        bob = _writer(iam, "bob", "inbox/bob/")
        event = _event(bob)
        event["routeKey"] = f"POST /jobs/{{job_id}}/{action}"
        event["rawPath"] = event["requestContext"]["http"]["path"] = f"/jobs/{job_id}/{action}"
        event["pathParameters"] = {"job_id": job_id}
        answer = app.handler(event, _Context())
        assert answer["statusCode"] == 403, answer
        assert json.loads(answer["body"])["caller"] == bob
        assert store.require(job_id) == before
        assert store.get(job_id + "-r2") is None
        root = _event(f"arn:aws:iam::{ACCOUNT}:root")
        root.update({k: event[k] for k in ("routeKey", "rawPath", "pathParameters")})
        root["requestContext"]["http"]["path"] = event["rawPath"]
        missing = copy.deepcopy(root)
        missing["pathParameters"] = {"job_id": "job-" + "e" * 40}
        missing["rawPath"] = missing["requestContext"]["http"]["path"] = (
            f"/jobs/job-{'e' * 40}/{action}"
        )
        answer = app.handler(missing, _Context())
        assert (answer["statusCode"], json.loads(answer["body"])["outcome"]) == (404, "not_found")
    finally:
        sys.modules.pop(module_name, None)
