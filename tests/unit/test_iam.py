"""Least privilege: each function's role, as the SAM transform expands template.yaml (policy
templates included), allows exactly the actions its code calls, on the resources it uses.

EXPECTED is the table to keep in step with the code: a new boto3 call needs its line here and
its statement in the template; a grant no code needs fails the test.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import boto3
import pytest
from cfnlint.decode import decode
from samtranslator.parser.parser import Parser
from samtranslator.translator.translator import Translator

ROOT = Path(__file__).resolve().parents[2]
SAM_TEMPLATE, _ = decode(str(ROOT / "template.yaml"))
FUNCTIONS = sorted(
    name
    for name, resource in SAM_TEMPLATE["Resources"].items()
    if resource["Type"] == "AWS::Serverless::Function"
)

#: How pseudo parameters read in the rendered resources below.
PSEUDO = {
    "AWS::Partition": "aws",
    "AWS::Region": "region",
    "AWS::AccountId": "account",
    "AWS::StackName": "stack",
    "AWS::URLSuffix": "amazonaws.com",
}


def _expanded_template() -> dict[str, Any]:
    """template.yaml through the SAM translator, as `sam deploy` hands it to CloudFormation.

    Local code locations become S3 stand-ins (the translator takes only S3 URIs); no AWS call
    is made: the region comes from the session, and no policy names a managed policy by name.
    """
    template = json.loads(json.dumps(SAM_TEMPLATE))
    for name, resource in template["Resources"].items():
        for prop in ("CodeUri", "ContentUri", "DefinitionUri"):
            if prop in resource.get("Properties", {}):
                resource["Properties"][prop] = f"s3://stand-in/{name}.zip"
    translator = Translator(None, Parser(), boto_session=boto3.Session(region_name="us-east-1"))
    parameters = {
        "ProviderBaseUrl": "https://provider.example",
        "ProviderApiKeySecretArn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:key",
    }
    return translator.translate(copy.deepcopy(template), parameters, get_managed_policy_map=dict)


EXPANDED = _expanded_template()["Resources"]


def render(value: Any, variables: dict[str, Any] | None = None) -> str:
    """A resource ARN as a readable string: pseudo parameters filled in (PSEUDO), references to
    parameters and resources kept as {Name} or {Resource.Attribute}."""
    if isinstance(value, str):
        return value
    if "Ref" in value:
        return PSEUDO.get(value["Ref"], "{" + value["Ref"] + "}")
    if "Fn::GetAtt" in value:
        target = value["Fn::GetAtt"]
        return "{" + (target if isinstance(target, str) else ".".join(target)) + "}"
    if "Fn::Sub" in value:
        text, bound = (
            (value["Fn::Sub"], {}) if isinstance(value["Fn::Sub"], str) else value["Fn::Sub"]
        )

        def fill(match: re.Match[str]) -> str:
            name = match[1]
            if name in bound:
                return render(bound[name])
            return PSEUDO.get(name, "{" + name + "}")

        return re.sub(r"\$\{([^}]+)\}", fill, text)
    raise AssertionError(f"cannot render {value!r}")


def _role(function: str) -> dict[str, Any]:
    role = EXPANDED[function]["Properties"]["Role"]
    assert role == {"Fn::GetAtt": [f"{function}Role", "Arn"]}, "SAM makes one role per function"
    return EXPANDED[f"{function}Role"]["Properties"]


def _statements(function: str) -> list[dict[str, Any]]:
    return [
        statement
        for policy in _role(function).get("Policies", [])
        for statement in policy["PolicyDocument"]["Statement"]
    ]


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def grants(function: str) -> set[tuple[str, str]]:
    """(action, resource) for every Allow statement of the function's role."""
    found: set[tuple[str, str]] = set()
    for statement in _statements(function):
        assert statement["Effect"] == "Allow"
        assert {"Action", "Resource"} <= set(statement), "no NotAction / NotResource"
        assert "Condition" not in statement, "conditions would need their own column here"
        for action in _as_list(statement["Action"]):
            for resource in _as_list(statement["Resource"]):
                found.add((action, render(resource)))
    return found


def allow(actions: list[str], *resources: str) -> set[tuple[str, str]]:
    return {(action, resource) for action in actions for resource in resources}


BUCKET = "arn:aws:s3:::stack-media-account"
INBOX, OUTBOX, ERRORS = f"{BUCKET}/inbox/*", f"{BUCKET}/outbox/*", f"{BUCKET}/errors/*"
WORK = f"{BUCKET}/work/*"
JOBS = "{JobsTable.Arn}"
JOBS_BY_STATUS = "{JobsTable.Arn}/index/by_status"
SLOTS = "{SlotsTable.Arn}"
BATCHES = "{BatchesTable.Arn}"
BATCHES_BY_STATE = "{BatchesTable.Arn}/index/by_state"
OUTBOX_BATCHES = (f"{BUCKET}/outbox/_batches/*", f"{BUCKET}/outbox/*/_batches/*")
#: Named from the stack (template.yaml, JobStateMachine.Name): the functions the state machine
#: calls start admitted jobs' executions, and a reference would make a circle of the template.
STATE_MACHINE = "arn:aws:states:region:account:stateMachine:stack-job"
EXECUTIONS = "arn:aws:states:region:account:execution:{JobStateMachine.Name}:*"
PROVIDER_KEY = "{ProviderApiKeySecretArn}"
CALLBACK_KEY = "{CallbackSigningSecret}"
DEFAULT_BUS = "arn:aws:events:region:account:event-bus/default"

#: dropcut.aws.slots.SlotPool (acquire, release, hold_until, dispatch, waiters, leave_line, queue)
#: ends with a hand-over: resume_wait -> SendTaskSuccess, which IAM allows only on Resource "*";
#: and an admission from the backlog (dropcut.aws.backlog): a transaction that flips the job's
#: record (UpdateItem; GetItem when it is refused), then Executions.start.
SLOT_POOL = (
    allow(
        [
            "dynamodb:GetItem",
            "dynamodb:PutItem",
            "dynamodb:UpdateItem",
            "dynamodb:Query",
            "dynamodb:DeleteItem",
        ],
        SLOTS,
    )
    | allow(["states:SendTaskSuccess"], "*")
    | allow(["dynamodb:GetItem", "dynamodb:UpdateItem"], JOBS)
    | allow(["states:StartExecution"], STATE_MACHINE)
)
#: A queued job's place (dropcut.aws.backlog.Backlog.place and queued: each folder's counters by
#: BatchGetItem): Submit and Retry estimate what they queue, the reconciler the rest and its gauge.
BACKLOG_COUNTS = allow(["dynamodb:BatchGetItem"], SLOTS)
#: wiring.fetch_secret (Powertools parameters.get_secret) of the provider key / callback secret.
PROVIDER_SECRET = allow(["secretsmanager:GetSecretValue"], PROVIDER_KEY)
CALLBACK_SECRET = allow(["secretsmanager:GetSecretValue"], CALLBACK_KEY)
#: wiring.job_events (dropcut.aws.job_events.JobEvents.publish: PutEvents on the default bus).
JOB_EVENTS = allow(["events:PutEvents"], DEFAULT_BUS)
#: wiring.actor_deps (dropcut.services.actors.ActorPolicy, ActorPrefixes "writers"): may the caller upload
#: the input? SimulatePrincipalPolicy of a user or of a role session's role (GetRole: its ARN).
IAM_USERS, IAM_ROLES = "arn:aws:iam::account:user/*", "arn:aws:iam::account:role/*"
ACTORS = allow(["iam:SimulatePrincipalPolicy"], IAM_USERS, IAM_ROLES) | allow(
    ["iam:GetRole"], IAM_ROLES
)

#: dropcut.services.batches.Batches.job_ended (JobEvents' ending hook, in every function that
#: ends jobs): the member and the header updated in one transaction (UpdateItem), the header
#: read (GetItem); the last ending claims the summary (UpdateItem), reads the members (Query)
#: and writes the summary beside the outputs (PutObject under _batches/).
BATCH_ENDINGS = allow(
    ["dynamodb:GetItem", "dynamodb:UpdateItem", "dynamodb:Query"], BATCHES
) | allow(["s3:PutObject"], *OUTBOX_BATCHES)
#: Batches.join (Submit, Retry): the folder's open batch read, moved (PutItem) and made
#: (PutItem of the header), the member put in a transaction with the header's count.
BATCH_JOINS = BATCH_ENDINGS | allow(["dynamodb:PutItem"], BATCHES)

EXPECTED: dict[str, set[tuple[str, str]]] = {
    # steps.submit: storage.head_or_none (HEAD, by version), probe via s3_range_reader (ranged
    # GETs of the version), _read_manifest (GET of manifest and presets), validation (HEAD + GET
    # of images); ListBucket so a missing key answers 404 (read as "absent"), not 403;
    # error_reports.put_error_report (PutObject under errors/); JobStore get/create/update;
    # Executions.start; SlotPool.queue (the backlog, an admission); job events (submitted,
    # refused).
    "SubmitFunction": allow(["s3:GetObject", "s3:GetObjectVersion"], INBOX)
    | allow(["s3:ListBucket"], BUCKET)
    | allow(["s3:PutObject", "s3:DeleteObject"], ERRORS)
    | allow(["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"], JOBS)
    | SLOT_POOL
    | BACKLOG_COUNTS
    | JOB_EVENTS
    | BATCH_JOINS,
    # steps.acquire_slot: JobStore.require and move_phase, SlotPool.acquire.
    "AcquireSlotFunction": SLOT_POOL,
    # steps.start_task: storage.presign_get (the URL works only if its signer may GET the
    # version), JobStore require/update, PaceBook.recent (GetItem of a pace# item), provider
    # key, callback signer.
    # The provider is sent the input version, or Prepare's mezzanine or part (work/); HEADs of the
    # input version and its key first (storage.input_absence; ListBucket: 404 not 403).
    "StartTaskFunction": allow(["s3:GetObject", "s3:GetObjectVersion"], INBOX)
    | allow(["s3:ListBucket"], BUCKET)
    | allow(["s3:GetObject", "s3:GetObjectVersion"], WORK)
    | allow(["dynamodb:GetItem", "dynamodb:UpdateItem"], JOBS)
    # dropcut.aws.breaker: paused_until read, outages counted (UpdateItem), a trip (GetItem).
    | allow(["dynamodb:GetItem", "dynamodb:UpdateItem"], SLOTS)
    | PROVIDER_SECRET
    | CALLBACK_SECRET,
    # steps.check_status: JobStore.update, PaceBook.record (UpdateItem of a pace# item), a
    # failed part's record read and reset for a new task (_retry_part), its failed task charged
    # and its new task reserved (BudgetLedger charge, reserve, spent: GetItem, and transactions
    # of UpdateItem and PutItem; no slot hand-over), provider key.
    "CheckStatusFunction": allow(["dynamodb:GetItem", "dynamodb:UpdateItem"], JOBS)
    | allow(["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"], SLOTS)
    | PROVIDER_SECRET,
    # steps.finalize: result_copy (create_multipart_upload, upload_part and
    # complete_multipart_upload are s3:PutObject; abort_multipart_upload on a failed copy) into
    # work/, JobStore require/update, SlotPool.release, PaceBook.record (UpdateItem of a pace#
    # item), provider key.
    "FinalizeFunction": allow(["s3:PutObject", "s3:AbortMultipartUpload"], WORK)
    | allow(["dynamodb:GetItem", "dynamodb:UpdateItem"], JOBS)
    | SLOT_POOL
    | PROVIDER_SECRET,
    # steps.prepare: storage.input_absence (HEADs; ListBucket: 404 not 403), download_file of
    # the input version, put_object of each part (work/), JobStore require/update/create (part
    # records).
    "PrepareFunction": allow(["s3:GetObject", "s3:GetObjectVersion"], INBOX)
    | allow(["s3:ListBucket"], BUCKET)
    | allow(["s3:PutObject"], WORK)
    | allow(["dynamodb:GetItem", "dynamodb:UpdateItem", "dynamodb:PutItem"], JOBS),
    # steps.stitch: download_file of the edited parts (work/) and the input version (audio,
    # picture), head of the input (which version is the newest; ListBucket: 404 not 403), the
    # output copied or uploaded (multipart) with its manifest and picture, an older edit moved
    # aside (GET of its manifest, copy), JobStore require/get/update, job events (succeeded).
    "StitchFunction": allow(["s3:GetObject"], WORK)
    | allow(["s3:GetObject", "s3:GetObjectVersion"], INBOX)
    | allow(["s3:ListBucket"], BUCKET)
    | allow(["s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload"], OUTBOX)
    | allow(["dynamodb:GetItem", "dynamodb:UpdateItem"], JOBS)
    | JOB_EVENTS
    | allow(["dynamodb:GetItem", "dynamodb:UpdateItem", "dynamodb:Query"], BATCHES),
    # steps.record_failure: write_error_report, JobStore require/update, settle_slot, job
    # events (failed).
    "RecordFailureFunction": allow(["s3:PutObject"], ERRORS)
    | allow(["dynamodb:GetItem", "dynamodb:UpdateItem"], JOBS)
    | SLOT_POOL
    | JOB_EVENTS
    | BATCH_ENDINGS,
    # steps.reconcile: _records_in (Query on by_status), JobStore get/update, reports,
    # Executions.status/start, the slot pool, job events (failed, cancelled); dead-lettered
    # inbox events (services.dead_letters: receive/delete, send back, a record born failed that
    # joins its folder's batch).
    "ReconcileFunction": allow(["s3:PutObject"], ERRORS)
    | allow(["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"], JOBS)
    | allow(["dynamodb:Query"], JOBS_BY_STATUS)
    | allow(["states:DescribeExecution"], EXECUTIONS)
    | SLOT_POOL
    | BACKLOG_COUNTS
    | JOB_EVENTS
    | BATCH_JOINS
    | allow(["dynamodb:Query"], BATCHES_BY_STATE)
    | allow(["sqs:ReceiveMessage", "sqs:DeleteMessage"], "{InboxDeadLetterQueue.Arn}")
    | allow(["sqs:SendMessage"], "{InboxQueue.Arn}"),
    # steps.cancel (dropcut cancel): actors.admit (the job's record, the caller's IAM
    # question), end_job_once (conditional UpdateItem, the report under errors/),
    # Executions.stop, SlotPool.leave_line_of and settle_slot, job events (cancelled).
    "CancelFunction": allow(["s3:PutObject"], ERRORS)
    | allow(["dynamodb:GetItem", "dynamodb:UpdateItem"], JOBS)
    | allow(["states:StopExecution"], EXECUTIONS)
    | SLOT_POOL
    | JOB_EVENTS
    | ACTORS
    | BATCH_ENDINGS,
    # steps.retry (dropcut retry): actors.admit, the old job claimed (GetItem, UpdateItem), then
    # steps.submit.resubmit: Submit's reads, report and start, without deleting a report.
    "RetryFunction": allow(["s3:GetObject", "s3:GetObjectVersion"], INBOX)
    | allow(["s3:ListBucket"], BUCKET)
    | allow(["s3:PutObject"], ERRORS)
    | allow(["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"], JOBS)
    | SLOT_POOL
    | BACKLOG_COUNTS
    | JOB_EVENTS
    | ACTORS
    | BATCH_JOINS,
    # steps.webhook (internet-facing): JobStore get/update_returning, resume_callback_wait,
    # provider key (the confirming query), callback secret (the capability check).
    "WebhookFunction": allow(["dynamodb:GetItem", "dynamodb:UpdateItem"], JOBS)
    | allow(["states:SendTaskSuccess"], "*")
    | PROVIDER_SECRET
    | CALLBACK_SECRET,
    # steps.notify (NotificationEmailFor=job): the paced per-job emails.
    "NotifyFunction": allow(["sns:Publish"], "{JobEndingsTopic}"),
    # steps.arm_callback: JobStore update_returning/require, resume_callback_wait.
    "ArmCallbackFunction": allow(["dynamodb:GetItem", "dynamodb:UpdateItem"], JOBS)
    | allow(["states:SendTaskSuccess"], "*"),
}

MANAGED = {
    "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole",  # its own logs
    "arn:aws:iam::aws:policy/AWSXrayWriteOnlyAccess",  # Tracing: Active
}
#: SAM adds it to a function with an SQS event source (the poller's Receive/Delete/
#: GetQueueAttributes); it cannot be narrowed without giving up SAM's generated role.
SQS_POLLER = "arn:aws:iam::aws:policy/service-role/AWSLambdaSQSQueueExecutionRole"


def test_the_table_covers_every_function():
    assert set(EXPECTED) == set(FUNCTIONS)


@pytest.mark.parametrize("function", FUNCTIONS)
def test_each_role_allows_exactly_what_its_code_calls(function):
    granted = grants(function)
    expected = EXPECTED[function]
    assert granted == expected, (
        f"{function}: granted but not expected {sorted(granted - expected)}; "
        f"expected but not granted {sorted(expected - granted)}"
    )


@pytest.mark.parametrize("function", FUNCTIONS)
def test_each_role_has_only_the_managed_policies_sam_adds(function):
    managed = {render(arn) for arn in _role(function).get("ManagedPolicyArns", [])}
    events = SAM_TEMPLATE["Resources"][function]["Properties"].get("Events", {}).values()
    sqs = {SQS_POLLER} if any(event["Type"] == "SQS" for event in events) else set()
    assert managed == MANAGED | sqs


def _is_delete_object(action: str) -> bool:
    return action.startswith("s3:DeleteObject")


@pytest.mark.parametrize("function", FUNCTIONS)
def test_no_role_may_change_the_bucket_delete_inputs_or_outputs_scan_or_delete_jobs(function):
    for action, resource in grants(function):
        assert "*" not in action, f"{function}: wildcard action {action}"
        assert action != "s3:PutLifecycleConfiguration", f"{function} may change the lifecycle"
        if _is_delete_object(action):  # only Submit, only a refused job's stale report
            assert (function, action, resource) == ("SubmitFunction", "s3:DeleteObject", ERRORS)
        assert action != "dynamodb:Scan", f"{function} may scan {resource}"
        if resource.startswith(JOBS):
            assert action != "dynamodb:DeleteItem", f"{function} may delete job records"
        if resource == "*":
            assert action == "states:SendTaskSuccess", f"{function}: {action} on every resource"
        if action.startswith("s3:") and resource.startswith(f"{BUCKET}/"):
            assert resource in (INBOX, OUTBOX, ERRORS, WORK, *OUTBOX_BATCHES), (
                f"{function}: {action} on {resource}"
            )
        if resource == INBOX:
            assert action in ("s3:GetObject", "s3:GetObjectVersion"), "the inbox is read-only"


def test_no_allow_statement_anywhere_grants_a_wildcard_action():
    # Every role and policy of the deployed template, the state machine's and the schedule's too.
    for name, resource in EXPANDED.items():
        if resource["Type"] not in ("AWS::IAM::Role", "AWS::IAM::Policy"):
            continue
        properties = resource["Properties"]
        documents = [policy["PolicyDocument"] for policy in properties.get("Policies", [])]
        if "PolicyDocument" in properties:
            documents.append(properties["PolicyDocument"])
        for document in documents:
            for statement in document["Statement"]:
                if statement["Effect"] == "Allow":
                    for action in _as_list(statement["Action"]):
                        assert "*" not in action, f"{name} allows {action}"


def test_the_prefixes_in_the_arns_are_the_ones_the_code_uses():
    env = SAM_TEMPLATE["Globals"]["Function"]["Environment"]["Variables"]
    assert (env["INBOX_PREFIX"], env["OUTBOX_PREFIX"], env["ERRORS_PREFIX"]) == (
        "inbox/",
        "outbox/",
        "errors/",
    )
    assert env["MEDIA_BUCKET"] == {"Fn::Sub": "${AWS::StackName}-media-${AWS::AccountId}"}
    assert render(env["MEDIA_BUCKET"]) == BUCKET.removeprefix("arn:aws:s3:::")


#: What a handler builds through dropcut.wiring, and the grants it cannot work without
#: (wiring.submit_deps builds Submit's: S3, the jobs table, executions, the slot pool, job
#: events; wiring.slot_pool builds the backlog's admission: the jobs table and executions).
#: Checked both ways: a client the handler builds needs its grants, and a grant on these
#: resources needs the client (a handler that stops using a client must lose its grants).
CLIENT_NEEDS: dict[str, Any] = {
    "s3": (
        r"wiring\.(s3_client|presigning_s3_client|submit_deps)\(",
        lambda g: {a for a, _ in g if a.startswith("s3:")},
    ),
    "jobs": (
        r"wiring\.(job_store|submit_deps|slot_pool)\(",
        lambda g: {r for _, r in g if r.startswith(JOBS)},
    ),
    "slots": (
        r"wiring\.(slot_pool|budget_ledger|submit_deps|breaker)\(",
        lambda g: {r for _, r in g if r == SLOTS},
    ),
    "executions": (
        r"wiring\.(executions|submit_deps|slot_pool)\(",
        lambda g: {r for _, r in g if r in (STATE_MACHINE, EXECUTIONS)},
    ),
    "resume": (
        r"wiring\.(sfn_client|slot_pool|submit_deps)\(",
        lambda g: g & allow(["states:SendTaskSuccess"], "*"),
    ),
    "provider key": (r"wiring\.provider_factory\(", lambda g: g & PROVIDER_SECRET),
    "job events": (r"wiring\.(job_events|submit_deps)\(", lambda g: g & JOB_EVENTS),
    "iam": (r"wiring\.actor_deps\(", lambda g: {a for a, _ in g if a.startswith("iam:")}),
    "callback key": (
        r"wiring\.(callback_signer|callback_url_factory)\(",
        lambda g: g & CALLBACK_SECRET,
    ),
}


@pytest.mark.parametrize("function", FUNCTIONS)
def test_grants_follow_the_clients_each_handler_builds(function):
    code_uri = SAM_TEMPLATE["Resources"][function]["Properties"]["CodeUri"]
    source = (ROOT / code_uri / "app.py").read_text()
    granted = grants(function)
    for what, (pattern, granted_for) in CLIENT_NEEDS.items():
        uses = re.search(pattern, source) is not None
        has = bool(granted_for(granted))
        assert uses == has, (
            f"{function}: {'builds' if uses else 'does not build'} the {what} client but "
            f"{'has no' if uses else 'has'} grants for it"
        )
    if re.search(r"wiring\.(slot_pool|submit_deps)\(", source):
        assert granted >= SLOT_POOL, f"{function} hands slots over: it needs all of SLOT_POOL"
