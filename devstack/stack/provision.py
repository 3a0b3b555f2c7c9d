"""template.yaml -> moto: which resources are created, in what order, and what they are called.

`Provisioner.create_resources` creates every resource of a type it knows, each once, and what a
resource refers to before it (a dead-letter queue before its queue, a secret before the function
that reads its ARN). Names and ARNs are deterministic (`<stack>-<LogicalId>` unless the template
names the resource), so functions and state machines, which refer to each other, can be named
before either exists. The creators live in `resources` (data stores, state machines) and
`lambdas` (functions); `creators.CREATORS` tables them and the `Provisioner` is handed that table,
so this module imports neither (they import it, for the `Provisioner` they are given).

The `Provisioner` reads the stack's settings through `StackSettings` (what deploying needs of a
`DevStack`), not the `DevStack` itself: the stack owns its deployment, not the other way round.
"""

from __future__ import annotations

import json
import logging
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from devstack import lambda_runtime
from devstack.template import Resolver, TemplateError, apply_globals, load_template

if TYPE_CHECKING:
    from devstack.http_api import LocalHttpApi

LOG = logging.getLogger("devstack.stack")

#: Creates one resource of a type: (the provisioner, its logical id, its raw Properties).
Creator = Callable[["Provisioner", str, dict[str, Any]], None]


class StackSettings(Protocol):
    """What deploying reads of the stack (`devstack.stack.DevStack` is one): where the template
    is, its parameters, names, the account, the functions' workers, the endpoint and clients."""

    template_path: Path
    template_dir: Path
    #: Parameters named in `api_url_parameters` get the local HTTP API's URL unless set here.
    parameter_overrides: dict[str, str]
    api_url_parameters: tuple[str, ...]
    stack_name: str
    region: str
    account_id: str
    #: `sam build` output to run the functions and layers from (None: the source tree).
    code_root: Path | None
    extra_env: dict[str, str]
    python: str
    max_workers_per_function: int
    endpoint_url: str
    http_api: LocalHttpApi | None

    def client(self, service: str) -> Any:
        """A boto3 client for `service` on the stack's endpoint."""
        ...


#: The one resource of the stack record (CloudFormation wants one; moto creates nothing for it).
_RECORD_RESOURCE = {"Record": {"Type": "AWS::CloudFormation::WaitConditionHandle"}}

# Types that don't matter locally; created as nothing, listed in a debug line.
_IGNORED_TYPES = {
    "AWS::Serverless::LayerVersion",  # used through the functions' Layers (sys.path)
    "AWS::Lambda::LayerVersion",
    "AWS::S3::BucketPolicy",
    "AWS::SNS::TopicPolicy",
    "AWS::Logs::LogGroup",
    "AWS::CloudWatch::Alarm",
    "AWS::CloudWatch::Dashboard",
    "AWS::IAM::Policy",
    "AWS::IAM::ManagedPolicy",
    "AWS::Lambda::Permission",
    "AWS::Serverless::HttpApi",  # its routes are served by LocalHttpApi
}

# Their names and ARNs are known before creation; they are created after what they refer to
# (functions and state machines refer to each other).
_CREATE_LATE_TYPES = {"AWS::Serverless::Function", "AWS::Serverless::StateMachine"}


class Provisioner:
    """One deployment of the template into the stack's moto server, and what it created."""

    def __init__(self, stack: StackSettings, creators: Mapping[str, Creator]) -> None:
        #: The stack's settings (names, region, code root, workers) and clients.
        self.stack = stack
        #: What each creatable resource type is created with (`creators.CREATORS`).
        self.creators = creators
        self.template: dict[str, Any] = {}
        self.outputs: dict[str, Any] = {}
        self.physical_ids: dict[str, Any] = {}
        #: Each function's environment variables as the template resolves them (Globals merged).
        self.function_env: dict[str, dict[str, str]] = {}
        self.function_specs: dict[str, lambda_runtime.FunctionSpec] = {}
        self.pools: dict[str, lambda_runtime.FunctionPool] = {}
        self.state_machine_definitions: dict[str, str] = {}
        #: EventBridge rule -> target id -> URL of the queue that receives what the target
        #: would (moto delivers to SQS targets only; `resources.create_event_rule`).
        self.event_rule_queues: dict[str, dict[str, str]] = {}
        #: SNS topic -> URL of the queue that receives what its email subscriptions would
        #: (moto sends no email; `resources.create_topic`).
        self.topic_email_queues: dict[str, str] = {}
        #: Bucket name -> its notification configuration (template and SAM events), applied
        #: once every event source is known.
        self.bucket_notifications: dict[str, dict[str, list[dict[str, Any]]]] = {}
        self.lambda_role_arn = ""
        self.states_role_arn = ""
        self._resolver: Resolver | None = None
        self._attributes: dict[str, dict[str, Any]] = {}
        self._created: set[str] = set()
        self._creating: set[str] = set()

    @property
    def resolver(self) -> Resolver:
        """Parameters, conditions and intrinsic functions of the loaded template."""
        assert self._resolver is not None
        return self._resolver

    @property
    def template_dir(self) -> Path:
        """Where the template's relative paths (CodeUri, DefinitionUri, ...) start."""
        return self.stack.template_dir

    def client(self, service: str) -> Any:
        """The stack's boto3 client for `service`."""
        return self.stack.client(service)

    # -- deploying --------------------------------------------------------------------------

    def create_resources(self, api_url: str | None) -> None:
        """Load the template and create its resources. Parameters named in the stack's
        `api_url_parameters` default to `api_url` (the local HTTP API)."""
        stack = self.stack
        self.template = apply_globals(load_template(stack.template_path))
        declared = self.template.get("Parameters") or {}
        if api_url is not None:
            for name in stack.api_url_parameters:
                if name in declared:
                    stack.parameter_overrides.setdefault(name, api_url)
        self._resolver = Resolver(
            self.template,
            parameter_overrides=stack.parameter_overrides,
            stack_name=stack.stack_name,
            region=stack.region,
            account_id=stack.account_id,
            ref_resource=lambda logical_id: self.lookup(logical_id, "Ref"),
            getatt_resource=self.lookup,
        )
        self._create_role()
        ignored: list[str] = []
        for logical_id, resource in self.template["Resources"].items():
            if not self.resolver.resource_enabled(resource):
                ignored.append(f"{logical_id} (condition false)")
                continue
            if resource["Type"] not in self.creators:
                ignored.append(f"{logical_id} ({resource['Type']})")
                continue
            self.ensure_created(logical_id)
        if ignored:
            LOG.debug("not created locally: %s", ", ".join(ignored))

    def record_outputs(self) -> None:
        """Fill `physical_ids` and `outputs` (once every resource exists)."""
        self.physical_ids = {
            lid: self.lookup(lid, "Ref")
            for lid, res in self.template["Resources"].items()
            if res["Type"] not in _IGNORED_TYPES and self.resolver.resource_enabled(res)
        }
        self.outputs = {}
        for name, output in (self.template.get("Outputs") or {}).items():
            if "Condition" in output and not self.resolver.condition(output["Condition"]):
                continue
            self.outputs[name] = self._served_locally(self.resolver.resolve(output["Value"]))

    def _served_locally(self, value: Any) -> Any:
        """An output naming an HTTP API's execute-api URL gets the local HTTP API's URL, which
        serves every HttpApi route of the template (the jobs API's `JobsApiUrl`)."""
        http_api = self.stack.http_api
        if not isinstance(value, str) or http_api is None:
            return value
        for logical_id, resource in self.template["Resources"].items():
            if resource["Type"] == "AWS::Serverless::HttpApi":
                api_id = self.lookup(logical_id, "Ref")
                remote = f"https://{api_id}.execute-api.{self.stack.region}.amazonaws.com"
                value = value.replace(remote, http_api.url)
        return value

    def register_stack_record(self) -> None:
        """Make the deployment discoverable as a deployed stack is: a CloudFormation stack named
        after the dev stack whose Outputs are the template's resolved outputs and whose
        Parameters are the values deployed (`aws cloudformation describe-stacks`, the `dropcut`
        command line). The record's template holds those values as literals and creates nothing.
        """
        record = {
            "Description": f"dropcut development stack record ({self.stack.template_path.name})",
            "Parameters": {
                name: {"Type": "String", "Default": _literal(value)}
                for name, value in self.resolver.parameters.items()
            },
            "Resources": _RECORD_RESOURCE,
            "Outputs": {name: {"Value": _literal(value)} for name, value in self.outputs.items()},
        }
        with warnings.catch_warnings():  # moto's "not supported" for the placeholder resource
            warnings.filterwarnings("ignore", message="Tried to parse AWS::CloudFormation")
            self.client("cloudformation").create_stack(
                StackName=self.stack.stack_name, TemplateBody=json.dumps(record)
            )

    def _create_role(self) -> None:
        trust = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": ["lambda.amazonaws.com", "states.amazonaws.com"]},
                    "Action": "sts:AssumeRole",
                }
            ],
        }
        role = self.client("iam").create_role(
            RoleName=f"{self.stack.stack_name}-local-role",
            AssumeRolePolicyDocument=json.dumps(trust),
        )
        self.lambda_role_arn = self.states_role_arn = role["Role"]["Arn"]

    def ensure_created(self, logical_id: str) -> None:
        """Create the resource unless it exists (or is of a type not created locally)."""
        if logical_id in self._created:
            return
        if logical_id in self._creating:
            raise TemplateError(f"circular reference through {logical_id}")
        resource = self.template["Resources"][logical_id]
        creator = self.creators.get(resource["Type"])
        if creator is None:
            return
        self.names_and_attributes(logical_id)
        self._creating.add(logical_id)
        try:
            creator(self, logical_id, resource.get("Properties") or {})
        finally:
            self._creating.discard(logical_id)
        self._created.add(logical_id)

    def best_effort(self, what: str, call: Callable[[], Any]) -> None:
        """Apply a setting moto may not support; a warning, not a failure, if it refuses."""
        try:
            call()
        except Exception as exc:
            LOG.warning("local stack: %s not applied: %s", what, exc)

    # -- names, Ref and GetAtt --------------------------------------------------------------

    def prop(self, logical_id: str, name: str, default: Any = None) -> Any:
        """A resource's property, resolved; `default` when the template leaves it out."""
        props = self.template["Resources"][logical_id].get("Properties") or {}
        return self.resolver.resolve(props[name]) if name in props else default

    def _name(self, logical_id: str, prop: str, max_len: int, *, lower: bool = False) -> str:
        explicit = self.prop(logical_id, prop)
        if explicit:
            return str(explicit)
        name = f"{self.stack.stack_name}-{logical_id}"
        return (name.lower() if lower else name)[:max_len]

    def names_and_attributes(self, logical_id: str) -> dict[str, Any]:
        """Ref and GetAtt values that are known before creation (deterministic names)."""
        if logical_id in self._attributes:
            return self._attributes[logical_id]
        resource = self.template["Resources"][logical_id]
        rtype = resource["Type"]
        region, account = self.stack.region, self.stack.account_id
        attrs: dict[str, Any]
        if rtype == "AWS::Serverless::Function":
            name = self._name(logical_id, "FunctionName", 64)
            arn = f"arn:aws:lambda:{region}:{account}:function:{name}"
            attrs = {"Ref": name, "Arn": arn}
        elif rtype == "AWS::Serverless::StateMachine":
            name = self._name(logical_id, "Name", 80)
            arn = f"arn:aws:states:{region}:{account}:stateMachine:{name}"
            attrs = {"Ref": arn, "Arn": arn, "Name": name}
        elif rtype == "AWS::S3::Bucket":
            name = self._name(logical_id, "BucketName", 63, lower=True)
            attrs = {
                "Ref": name,
                "Arn": f"arn:aws:s3:::{name}",
                "DomainName": f"{name}.s3.amazonaws.com",
                "RegionalDomainName": f"{name}.s3.{region}.amazonaws.com",
                "WebsiteURL": f"http://{name}.s3-website-{region}.amazonaws.com",
            }
        elif rtype in ("AWS::DynamoDB::Table", "AWS::Serverless::SimpleTable"):
            name = self._name(logical_id, "TableName", 255)
            attrs = {"Ref": name, "Arn": f"arn:aws:dynamodb:{region}:{account}:table/{name}"}
        elif rtype == "AWS::SQS::Queue":
            name = self._name(logical_id, "QueueName", 80)
            if self.prop(logical_id, "FifoQueue") in (True, "true") and not name.endswith(".fifo"):
                name = name[:75] + ".fifo"
            attrs = {
                "QueueName": name,
                "Arn": f"arn:aws:sqs:{region}:{account}:{name}",
            }  # Ref (the URL) once created
        elif rtype in ("AWS::SNS::Topic", "AWS::Events::Rule"):
            attrs = self._messaging_attributes(logical_id, rtype)
        elif rtype == "AWS::SecretsManager::Secret":
            attrs = {}  # Ref (the ARN, with moto's random suffix) once created
        elif rtype in ("AWS::Serverless::LayerVersion", "AWS::Lambda::LayerVersion"):
            name = self._name(logical_id, "LayerName", 64)
            attrs = {"Ref": f"arn:aws:lambda:{region}:{account}:layer:{name}:1"}
        elif rtype == "AWS::Logs::LogGroup":
            name = self._name(logical_id, "LogGroupName", 512)
            attrs = {"Ref": name, "Arn": f"arn:aws:logs:{region}:{account}:log-group:{name}:*"}
        else:
            # Not created locally: a stable placeholder, so Outputs and unused
            # properties still resolve.
            attrs = {"Ref": f"{self.stack.stack_name}-{logical_id}"}
        self._attributes[logical_id] = attrs
        return attrs

    def _messaging_attributes(self, logical_id: str, rtype: str) -> dict[str, Any]:
        """Ref and GetAtt of an SNS topic or an EventBridge rule."""
        region, account = self.stack.region, self.stack.account_id
        if rtype == "AWS::SNS::Topic":
            name = self._name(logical_id, "TopicName", 256)
            arn = f"arn:aws:sns:{region}:{account}:{name}"
            return {"Ref": arn, "TopicArn": arn, "TopicName": name}
        name = self._name(logical_id, "Name", 64)
        bus = self.prop(logical_id, "EventBusName") or "default"
        path = f"rule/{name}" if bus == "default" else f"rule/{bus}/{name}"
        return {"Ref": name, "Arn": f"arn:aws:events:{region}:{account}:{path}"}

    def record(self, logical_id: str, attributes: dict[str, Any]) -> None:
        """Attributes known once the resource exists (a queue's URL, a secret's ARN, ...)."""
        self._attributes[logical_id].update(attributes)

    def lookup(self, logical_id: str, attribute: str) -> Any:
        """`!Ref` (attribute "Ref") or `!GetAtt logical_id.attribute`; creates a bucket, table,
        queue or secret first if it does not exist yet."""
        attrs = self.names_and_attributes(logical_id)
        rtype = self.template["Resources"][logical_id]["Type"]
        if (
            rtype not in _CREATE_LATE_TYPES
            and logical_id not in self._creating
            and self.resolver.resource_enabled(self.template["Resources"][logical_id])
        ):
            # Whatever refers to a bucket, table, queue or secret needs it to exist first
            # (a dead-letter queue before its queue, a secret's ARN, ...).
            self.ensure_created(logical_id)
            attrs = self._attributes[logical_id]
        if attribute not in attrs:
            if rtype in self.creators:
                raise TemplateError(f"{logical_id} ({rtype}) has no attribute {attribute}")
            LOG.debug(
                "placeholder for %s.%s (%s is not created locally)", logical_id, attribute, rtype
            )
            return f"arn:aws:local:{self.stack.region}:{self.stack.account_id}:{logical_id}/{attribute}"
        return attrs[attribute]


def _literal(value: Any) -> str:
    """A resolved template value as CloudFormation reports it (lists comma-joined)."""
    return ",".join(map(str, value)) if isinstance(value, list) else str(value)
