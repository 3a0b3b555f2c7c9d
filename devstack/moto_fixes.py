"""Fixes for moto 5.2.5 behaviours that differ from AWS and that dropcut depends on, one call it
lacks (IAM's SimulatePrincipalPolicy), and one for its speed under a burst (a Lambda client per
invocation).

Each fix names the moto function it wraps; `install()` is idempotent. tests/devstack checks
that the wrapped functions still exist, so a moto upgrade that moves them fails loudly.
"""

from __future__ import annotations

import functools
import threading
from typing import Any

import boto3

_installed = False
#: The item operations of moto's DynamoDB backend that read or write items.
DYNAMODB_ITEM_OPERATIONS = (
    "put_item",
    "get_item",
    "query",
    "scan",
    "update_item",
    "delete_item",
    "transact_write_items",
)


def install() -> None:
    """Apply every fix (once per process)."""
    global _installed
    if _installed:
        return
    _early_task_success_reaches_a_heartbeat_wait()
    _catch_may_name_its_own_state()
    _dynamodb_writes_are_atomic()
    _one_lambda_client_per_region()
    _iam_simulates_principal_policies()
    _installed = True


def _early_task_success_reaches_a_heartbeat_wait() -> None:
    # On AWS, SendTaskSuccess may come while the waitForTaskToken task's own Lambda is still
    # running (our ArmCallback does that when the callback came first). moto creates the
    # heartbeat endpoint only after that Lambda returns, so an earlier success never wakes the
    # heartbeat wait: the task times out although it has an outcome. Wake it if there is one.
    from moto.stepfunctions.parser.asl.eval.callback.callback import CallbackEndpoint

    original = CallbackEndpoint.setup_heartbeat_endpoint

    def setup_heartbeat_endpoint(self: Any, heartbeat_seconds: int) -> Any:
        endpoint = original(self, heartbeat_seconds)
        if self.get_outcome() is not None:
            endpoint.notify()
        return endpoint

    CallbackEndpoint.setup_heartbeat_endpoint = setup_heartbeat_endpoint  # type: ignore[method-assign]


def _catch_may_name_its_own_state() -> None:
    # On AWS a Catcher's Next is followed whatever state it names, the failed state itself
    # included (AcquireSlot's heartbeat timeout joins the line again that way). moto's
    # State._set_next takes "the next state is still this one" for "nothing overrode Next" and
    # goes on to the state's own Next: a wait whose heartbeat ran out went to StartTask without
    # a slot, and the provider answered 429 (the 200-clip burst). When the state's output is a
    # caught error, the Catcher has set the next state already: keep it.
    from moto.stepfunctions.parser.asl.component.common.catch.catch_outcome import CatchOutcome
    from moto.stepfunctions.parser.asl.component.state.exec.execute_state import ExecutionState

    original = ExecutionState._set_next

    def _set_next(self: Any, env: Any) -> None:
        if env.stack and env.stack[-1] == CatchOutcome.Caught:
            return
        original(self, env)

    ExecutionState._set_next = _set_next  # type: ignore[method-assign]


def _dynamodb_writes_are_atomic() -> None:
    # On AWS every write to an item is atomic: a reader sees the item before or after it. moto's
    # UpdateItem on a new item first stores the bare key, then applies the update expression, so
    # a concurrent Query or GetItem (moto server is threaded) can see an item with only its keys:
    # the chaos test's slot line once read a waiter without job_id (KeyError in dispatch, a paid
    # result's Finalize failed). One lock per backend around its item operations gives AWS's
    # per-item atomicity (and more: moto is not the thing under load test).
    from moto.dynamodb.models import DynamoDBBackend

    lock = threading.RLock()
    for name in DYNAMODB_ITEM_OPERATIONS:
        original = getattr(DynamoDBBackend, name)
        if getattr(original, "_dropcut_atomic", False):
            continue

        def serialized(*args: Any, __original: Any = original, **kwargs: Any) -> Any:
            with lock:
                return __original(*args, **kwargs)

        functools.update_wrapper(serialized, original)
        serialized._dropcut_atomic = True  # type: ignore[attr-defined]
        setattr(DynamoDBBackend, name, serialized)


def _one_lambda_client_per_region() -> None:
    # Speed, not behaviour: moto's Step Functions builds a new boto3 client for every Lambda Task
    # it runs (`boto_client_for`), which copies botocore's event handlers and loads the service
    # model each time: about 7 % of the serving process during a 200-clip burst, in the process
    # that also answers every AWS call of the stack. boto3 clients are thread-safe, and moto's
    # function ignores the state's credentials, so one client per region, service and moto
    # server serves every invocation: moto's client settings, with a connection pool for many
    # invocations at once (moto's client is built once per key only to read those settings).
    from botocore.config import Config
    from moto.core.models import botocore_stubber
    from moto.settings import moto_server_port
    from moto.stepfunctions.parser.asl.component.state.exec.state_task import lambda_eval_utils

    original = lambda_eval_utils.boto_client_for
    if getattr(original, "_dropcut_cached", False):
        return
    clients: dict[tuple[str, str, str, bool], Any] = {}
    lock = threading.Lock()
    # moto's parameter_validation=False is not kept in client.meta.config: set again here.
    ours = Config(max_pool_connections=64, parameter_validation=False)

    def boto_client_for(region: str, service: str, state_credentials: Any = None) -> Any:
        # moto reads its server's port at each call: one process may run stacks one after
        # another (a test session), each on its own port.
        key = (region, service, moto_server_port(), botocore_stubber.enabled)
        with lock:
            if key not in clients:
                moto_client = original(region=region, service=service)
                meta = moto_client.meta
                clients[key] = boto3.client(
                    service,
                    region_name=region,
                    endpoint_url=meta.endpoint_url,
                    aws_access_key_id="ak",
                    aws_secret_access_key="sk",
                    config=meta.config.merge(ours),
                )
            return clients[key]

    boto_client_for._dropcut_cached = True  # type: ignore[attr-defined]
    lambda_eval_utils.boto_client_for = boto_client_for


def _iam_simulates_principal_policies() -> None:
    # AWS: iam:SimulatePrincipalPolicy evaluates a user's or a role's identity policies (inline
    # and attached; a user's groups' too) for each action on each resource. moto 5.2.5 has no
    # such call, and the actors rule (dropcut.services.actors, ActorPrefixes "writers": may the caller
    # upload the input?) makes it. This one evaluates those policies with moto's own evaluator
    # (moto.iam.access_control.IAMPolicy: Action and Resource with wildcards, Allow and Deny;
    # an explicit Deny wins). Unlike AWS, it evaluates no condition (moto counts a statement
    # with an unmet condition as a deny) and no permissions boundary.
    from moto.core.responses import ActionResult
    from moto.iam.access_control import IAMPolicy, PermissionResult
    from moto.iam.responses import IamResponse

    if getattr(IamResponse, "simulate_principal_policy", None) is not None:
        return

    def simulate_principal_policy(self: Any) -> ActionResult:
        source = self._get_param("PolicySourceArn")
        actions = self._get_param("ActionNames", [])
        resources = self._get_param("ResourceArns", []) or ["*"]
        policies = _identity_policies(self.backend, source)
        results = []
        for action in actions:
            for resource in resources:
                decision = "implicitDeny"
                for policy in policies:
                    verdict = IAMPolicy(policy).is_action_permitted(action, resource)
                    if verdict == PermissionResult.DENIED:
                        decision = "explicitDeny"
                        break
                    if verdict == PermissionResult.PERMITTED:
                        decision = "allowed"
                results.append(
                    {
                        "EvalActionName": action,
                        "EvalResourceName": resource,
                        "EvalDecision": decision,
                        "MatchedStatements": [],
                        "MissingContextValues": [],
                    }
                )
        return ActionResult({"EvaluationResults": results, "IsTruncated": False})

    IamResponse.simulate_principal_policy = simulate_principal_policy  # type: ignore[attr-defined]


def _identity_policies(backend: Any, arn: str) -> list[Any]:
    """The identity policies of the user or role `arn` (moto's shapes, as
    moto.iam.access_control collects a caller's); NoSuchEntity or InvalidInput as IAM says."""
    from moto.iam.exceptions import InvalidInput

    kind, _, name = arn.partition(":iam::")[2].partition(":")[2].partition("/")
    name = name.rsplit("/", 1)[-1]  # the path is not part of the name
    policies: list[Any] = []
    if kind == "user":
        backend.get_user(name)  # NoSuchEntity if there is none
        owners = [("user", name)] + [("group", g.name) for g in backend.get_groups_for_user(name)]
        for owner_kind, owner in owners:
            if owner_kind == "user":
                inline = [
                    backend.get_user_policy(owner, p) for p in backend.list_user_policies(owner)
                ]
                attached = backend.list_attached_user_policies(owner)[0]
            else:
                inline = [
                    backend.get_group_policy(owner, p) for p in backend.list_group_policies(owner)
                ]
                attached = backend.list_attached_group_policies(owner)[0]
            policies += inline + list(attached)
    elif kind == "role":
        backend.get_role(name)
        policies += [backend.get_role_policy(name, p)[1] for p in backend.list_role_policies(name)]
        policies += list(backend.list_attached_role_policies(name)[0])
    else:
        raise InvalidInput(f"PolicySourceArn {arn} is not a user or a role")
    return policies
