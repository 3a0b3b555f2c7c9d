"""Creators for the template's data stores and state machines: S3 buckets, DynamoDB tables
(and SAM simple tables), SQS queues, Secrets Manager secrets, Step Functions state machines.

Each `create_*(provisioner, logical_id, props)` turns the CloudFormation properties into the
API calls moto needs. Settings moto may not support (encryption, lifecycle, CORS, ...) are
applied best effort: a warning, not a failure. A bucket's NotificationConfiguration is
collected in `provisioner.bucket_notifications` and applied with the SAM event sources
(`events`).
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any

from devstack.template import TemplateError

if TYPE_CHECKING:
    from devstack.stack.provision import Provisioner

LOG = logging.getLogger("devstack.stack")


def env_string(value: Any) -> str:
    """A template scalar as the string an API wants (an environment variable, a queue
    attribute, a definition substitution); booleans as `true`/`false`."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        raise TemplateError(f"environment variable value is not a scalar: {value!r}")
    return str(value)


def key_filter(rules: list[dict[str, Any]]) -> dict[str, Any]:
    """S3Key filter rules as the notification API's Filter."""
    # S3 accepts "Prefix"/"prefix"; moto 5.2.5 only matches lowercase names.
    return {
        "Key": {
            "FilterRules": [
                {"Name": str(r["Name"]).lower(), "Value": str(r["Value"])} for r in rules
            ]
        }
    }


# -- S3 ---------------------------------------------------------------------------------------


def create_bucket(p: Provisioner, logical_id: str, props: dict[str, Any]) -> None:
    """An S3 bucket with its versioning, encryption, access block, ownership, lifecycle, CORS
    and tags; its notification configuration is collected for later."""
    props = p.resolver.resolve(props)
    name = p.lookup(logical_id, "Ref")
    s3 = p.client("s3")
    s3.create_bucket(Bucket=name)
    if "VersioningConfiguration" in props:
        status = props["VersioningConfiguration"].get("Status", "Enabled")
        s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": status})
    encryption = props.get("BucketEncryption", {}).get("ServerSideEncryptionConfiguration")
    if encryption:
        rules = [_encryption_rule(rule) for rule in encryption]
        p.best_effort(
            f"{logical_id} encryption",
            lambda: s3.put_bucket_encryption(
                Bucket=name, ServerSideEncryptionConfiguration={"Rules": rules}
            ),
        )
    if "PublicAccessBlockConfiguration" in props:
        block = {k: v in (True, "true") for k, v in props["PublicAccessBlockConfiguration"].items()}
        p.best_effort(
            f"{logical_id} public access block",
            lambda: s3.put_public_access_block(Bucket=name, PublicAccessBlockConfiguration=block),
        )
    if "OwnershipControls" in props:
        p.best_effort(
            f"{logical_id} ownership controls",
            lambda: s3.put_bucket_ownership_controls(
                Bucket=name, OwnershipControls=props["OwnershipControls"]
            ),
        )
    lifecycle = props.get("LifecycleConfiguration", {}).get("Rules")
    if lifecycle:
        p.best_effort(
            f"{logical_id} lifecycle",
            lambda: s3.put_bucket_lifecycle_configuration(
                Bucket=name,
                LifecycleConfiguration={"Rules": [_lifecycle_rule(r) for r in lifecycle]},
            ),
        )
    cors = props.get("CorsConfiguration", {}).get("CorsRules")
    if cors:
        p.best_effort(
            f"{logical_id} CORS",
            lambda: s3.put_bucket_cors(
                Bucket=name, CORSConfiguration={"CORSRules": [_cors_rule(r) for r in cors]}
            ),
        )
    if props.get("Tags"):
        p.best_effort(
            f"{logical_id} tags",
            lambda: s3.put_bucket_tagging(Bucket=name, Tagging={"TagSet": props["Tags"]}),
        )
    _collect_notifications(p, name, props.get("NotificationConfiguration") or {})


def _encryption_rule(rule: dict[str, Any]) -> dict[str, Any]:
    """A ServerSideEncryptionConfiguration rule as the encryption API's rule."""
    api_rule: dict[str, Any] = {}
    if "ServerSideEncryptionByDefault" in rule:
        api_rule["ApplyServerSideEncryptionByDefault"] = rule["ServerSideEncryptionByDefault"]
    if "BucketKeyEnabled" in rule:
        api_rule["BucketKeyEnabled"] = rule["BucketKeyEnabled"] in (True, "true")
    return api_rule


def _collect_notifications(p: Provisioner, name: str, notifications: dict[str, Any]) -> None:
    """Add a bucket's NotificationConfiguration, as the notification API's lists, to
    `p.bucket_notifications` (applied with the event sources)."""
    target = p.bucket_notifications.setdefault(name, {})
    for cfn_key, api_key, arn_key, api_arn_key in (
        (
            "LambdaConfigurations",
            "LambdaFunctionConfigurations",
            "Function",
            "LambdaFunctionArn",
        ),
        ("QueueConfigurations", "QueueConfigurations", "Queue", "QueueArn"),
        ("TopicConfigurations", "TopicConfigurations", "Topic", "TopicArn"),
    ):
        for item in notifications.get(cfn_key, []):
            config: dict[str, Any] = {api_arn_key: item[arn_key], "Events": [item["Event"]]}
            rules = item.get("Filter", {}).get("S3Key", {}).get("Rules", [])
            if rules:
                config["Filter"] = key_filter(rules)
            target.setdefault(api_key, []).append(config)


def _lifecycle_rule(rule: dict[str, Any]) -> dict[str, Any]:
    api: dict[str, Any] = {"Status": rule.get("Status", "Enabled")}
    if "Id" in rule:
        api["ID"] = rule["Id"]
    api["Filter"] = {"Prefix": rule.get("Prefix", "")}
    if "ExpirationInDays" in rule:
        api["Expiration"] = {"Days": int(rule["ExpirationInDays"])}
    if "AbortIncompleteMultipartUpload" in rule:
        days = int(rule["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"])
        api["AbortIncompleteMultipartUpload"] = {"DaysAfterInitiation": days}
    if "NoncurrentVersionExpiration" in rule:
        days = int(rule["NoncurrentVersionExpiration"]["NoncurrentDays"])
        api["NoncurrentVersionExpiration"] = {"NoncurrentDays": days}
    elif "NoncurrentVersionExpirationInDays" in rule:
        api["NoncurrentVersionExpiration"] = {
            "NoncurrentDays": int(rule["NoncurrentVersionExpirationInDays"])
        }
    return api


def _cors_rule(rule: dict[str, Any]) -> dict[str, Any]:
    api = {
        "AllowedMethods": rule["AllowedMethods"],
        "AllowedOrigins": rule["AllowedOrigins"],
    }
    if "AllowedHeaders" in rule:
        api["AllowedHeaders"] = rule["AllowedHeaders"]
    if "ExposedHeaders" in rule:
        api["ExposeHeaders"] = rule["ExposedHeaders"]
    if "MaxAge" in rule:
        api["MaxAgeSeconds"] = int(rule["MaxAge"])
    return api


# -- DynamoDB ---------------------------------------------------------------------------------


def create_table(p: Provisioner, logical_id: str, props: dict[str, Any]) -> None:
    """A DynamoDB table with its indexes, stream, encryption, tags, TTL and PITR."""
    props = p.resolver.resolve(props)
    name = p.lookup(logical_id, "Ref")
    ddb = p.client("dynamodb")
    kwargs: dict[str, Any] = {
        "TableName": name,
        "KeySchema": props["KeySchema"],
        "AttributeDefinitions": props["AttributeDefinitions"],
        "BillingMode": props.get("BillingMode", "PROVISIONED"),
    }
    if kwargs["BillingMode"] == "PROVISIONED":
        kwargs["ProvisionedThroughput"] = _throughput(props.get("ProvisionedThroughput"))
    for key in ("GlobalSecondaryIndexes", "LocalSecondaryIndexes"):
        if props.get(key):
            indexes = []
            for index in props[key]:
                index = dict(index)
                if kwargs["BillingMode"] == "PROVISIONED" and key.startswith("Global"):
                    index["ProvisionedThroughput"] = _throughput(index.get("ProvisionedThroughput"))
                indexes.append(index)
            kwargs[key] = indexes
    if "StreamSpecification" in props:
        kwargs["StreamSpecification"] = {
            "StreamEnabled": True,
            "StreamViewType": props["StreamSpecification"]["StreamViewType"],
        }
    sse = props.get("SSESpecification")
    if sse:
        kwargs["SSESpecification"] = {"Enabled": sse.get("SSEEnabled") in (True, "true")}
    if props.get("Tags"):
        kwargs["Tags"] = props["Tags"]
    table = ddb.create_table(**kwargs)["TableDescription"]
    if table.get("LatestStreamArn"):
        p.record(logical_id, {"StreamArn": table["LatestStreamArn"]})
    ttl = props.get("TimeToLiveSpecification")
    if ttl and ttl.get("Enabled") in (True, "true"):
        ddb.update_time_to_live(
            TableName=name,
            TimeToLiveSpecification={"AttributeName": ttl["AttributeName"], "Enabled": True},
        )
    pitr = props.get("PointInTimeRecoverySpecification", {})
    if pitr.get("PointInTimeRecoveryEnabled") in (True, "true"):
        p.best_effort(
            f"{logical_id} point-in-time recovery",
            lambda: ddb.update_continuous_backups(
                TableName=name,
                PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True},
            ),
        )


def create_simple_table(p: Provisioner, logical_id: str, props: dict[str, Any]) -> None:
    """A SAM simple table: a table keyed by its PrimaryKey (`id`, a string, by default)."""
    props = p.resolver.resolve(props)
    key = props.get("PrimaryKey", {"Name": "id", "Type": "String"})
    attr_type = {"String": "S", "Number": "N", "Binary": "B"}[key.get("Type", "String")]
    table_props = {
        "KeySchema": [{"AttributeName": key["Name"], "KeyType": "HASH"}],
        "AttributeDefinitions": [{"AttributeName": key["Name"], "AttributeType": attr_type}],
        "BillingMode": "PROVISIONED" if props.get("ProvisionedThroughput") else "PAY_PER_REQUEST",
        "ProvisionedThroughput": props.get("ProvisionedThroughput"),
        "SSESpecification": props.get("SSESpecification"),
    }
    create_table(p, logical_id, {k: v for k, v in table_props.items() if v})


def _throughput(value: dict[str, Any] | None) -> dict[str, int]:
    value = value or {}
    return {
        "ReadCapacityUnits": int(value.get("ReadCapacityUnits", 5)),
        "WriteCapacityUnits": int(value.get("WriteCapacityUnits", 5)),
    }


# -- SQS, Secrets Manager ---------------------------------------------------------------------


def create_queue(p: Provisioner, logical_id: str, props: dict[str, Any]) -> None:
    """An SQS queue with its attributes (redrive policy included) and tags."""
    props = p.resolver.resolve(props)  # resolves (creates) a dead-letter queue first
    name = p.lookup(logical_id, "QueueName")
    attributes: dict[str, str] = {}
    for key in (
        "DelaySeconds",
        "MaximumMessageSize",
        "MessageRetentionPeriod",
        "ReceiveMessageWaitTimeSeconds",
        "VisibilityTimeout",
        "KmsMasterKeyId",
        "KmsDataKeyReusePeriodSeconds",
        "SqsManagedSseEnabled",
        "FifoQueue",
        "ContentBasedDeduplication",
        "DeduplicationScope",
        "FifoThroughputLimit",
    ):
        if key in props:
            attributes[key] = env_string(props[key])
    for key in ("RedrivePolicy", "RedriveAllowPolicy"):
        if key in props:
            value = props[key]
            attributes[key] = value if isinstance(value, str) else json.dumps(value)
    tags = {t["Key"]: t["Value"] for t in props.get("Tags", [])}
    kwargs: dict[str, Any] = {"QueueName": name, "Attributes": attributes}
    if tags:
        kwargs["tags"] = tags
    url = p.client("sqs").create_queue(**kwargs)["QueueUrl"]
    p.record(logical_id, {"Ref": url, "QueueUrl": url})


def create_secret(p: Provisioner, logical_id: str, props: dict[str, Any]) -> None:
    """A secret with its SecretString, or one generated as GenerateSecretString says."""
    props = p.resolver.resolve(props)
    name = props.get("Name") or f"{logical_id}-{p.stack.stack_name}"
    kwargs: dict[str, Any] = {"Name": name}
    if props.get("Description"):
        kwargs["Description"] = props["Description"]
    if "SecretString" in props:
        kwargs["SecretString"] = props["SecretString"]
    elif "GenerateSecretString" in props:
        generate = props["GenerateSecretString"]
        password = p.client("secretsmanager").get_random_password(
            PasswordLength=int(generate.get("PasswordLength", 32)),
            ExcludeCharacters=generate.get("ExcludeCharacters", ""),
            ExcludePunctuation=generate.get("ExcludePunctuation") in (True, "true"),
        )["RandomPassword"]
        if "SecretStringTemplate" in generate and "GenerateStringKey" in generate:
            document = json.loads(generate["SecretStringTemplate"])
            document[generate["GenerateStringKey"]] = password
            kwargs["SecretString"] = json.dumps(document)
        else:
            kwargs["SecretString"] = password
    arn = p.client("secretsmanager").create_secret(**kwargs)["ARN"]
    p.record(logical_id, {"Ref": arn, "Id": arn, "Name": name})


# -- Step Functions ---------------------------------------------------------------------------


def create_state_machine(p: Provisioner, logical_id: str, raw_props: dict[str, Any]) -> None:
    """A state machine from its Definition or local DefinitionUri, with its
    DefinitionSubstitutions applied (kept in `provisioner.state_machine_definitions`)."""
    resolve = p.resolver.resolve
    if "Definition" in raw_props:
        definition = json.dumps(resolve(raw_props["Definition"]), indent=2)
    else:
        uri = resolve(raw_props.get("DefinitionUri"))
        if not isinstance(uri, str):
            raise TemplateError(f"{logical_id}: only a local DefinitionUri is supported")
        definition = (p.template_dir / uri).read_text(encoding="utf-8")
    substitutions = resolve(raw_props.get("DefinitionSubstitutions") or {})
    for key, value in substitutions.items():
        definition = definition.replace("${" + key + "}", env_string(value))
    if "${" in definition:
        LOG.warning("%s: definition still contains ${...} after substitution", logical_id)
    json.loads(definition)  # fail here, with the file name, rather than in moto
    p.state_machine_definitions[logical_id] = definition
    role = resolve(raw_props["Role"]) if "Role" in raw_props else p.states_role_arn
    p.client("stepfunctions").create_state_machine(
        name=p.lookup(logical_id, "Name"),
        definition=definition,
        roleArn=role,
        type=resolve(raw_props.get("Type", "STANDARD")),
    )


# -- SNS, EventBridge -------------------------------------------------------------------------


def create_topic(p: Provisioner, logical_id: str, props: dict[str, Any]) -> None:
    """An SNS topic with its inline subscriptions (moto records them; it sends no email). A
    topic with an email subscription also gets a stand-in queue, `<stack>-<Topic>-email`,
    subscribed with raw delivery: it receives each message the address would be mailed
    (`provisioner.topic_email_queues`)."""
    props = p.resolver.resolve(props)
    sns = p.client("sns")
    arn = sns.create_topic(Name=p.lookup(logical_id, "TopicName"))["TopicArn"]
    for subscription in props.get("Subscription") or []:
        p.best_effort(
            f"{logical_id} {subscription['Protocol']} subscription",
            lambda s=subscription: sns.subscribe(
                TopicArn=arn, Protocol=s["Protocol"], Endpoint=s["Endpoint"]
            ),
        )
        if subscription["Protocol"] == "email" and logical_id not in p.topic_email_queues:
            sqs = p.client("sqs")
            queue = sqs.create_queue(QueueName=f"{p.stack.stack_name}-{logical_id}-email"[:80])
            queue_arn = sqs.get_queue_attributes(
                QueueUrl=queue["QueueUrl"], AttributeNames=["QueueArn"]
            )["Attributes"]["QueueArn"]
            sns.subscribe(
                TopicArn=arn,
                Protocol="sqs",
                Endpoint=queue_arn,
                Attributes={"RawMessageDelivery": "true"},
            )
            p.topic_email_queues[logical_id] = queue["QueueUrl"]


def create_event_rule(p: Provisioner, logical_id: str, raw_props: dict[str, Any]) -> None:
    """An EventBridge rule with its pattern, on its bus in moto. moto delivers matched events to
    SQS targets only (an SNS or Lambda target raises inside PutEvents), so each target that is
    not a queue is replaced by a stand-in queue, `<stack>-<Rule>-<TargetId>`, that receives what
    the target would (`provisioner.event_rule_queues`: rule -> target id -> queue URL)."""
    props = p.resolver.resolve(raw_props)
    name = p.lookup(logical_id, "Ref")
    events = p.client("events")
    bus = str(props.get("EventBusName") or "default")
    kwargs: dict[str, Any] = {"Name": name, "EventBusName": bus}
    if "EventPattern" in props:
        pattern = props["EventPattern"]
        kwargs["EventPattern"] = pattern if isinstance(pattern, str) else json.dumps(pattern)
    if "ScheduleExpression" in props:
        kwargs["ScheduleExpression"] = props["ScheduleExpression"]
    if "State" in props:
        kwargs["State"] = props["State"]
    if props.get("Description"):
        kwargs["Description"] = props["Description"]
    events.put_rule(**kwargs)
    stand_ins = p.event_rule_queues.setdefault(logical_id, {})
    targets = []
    for target in props.get("Targets") or []:
        arn = str(target["Arn"])
        if not arn.startswith("arn:aws:sqs:"):
            queue = p.client("sqs").create_queue(
                QueueName=f"{p.stack.stack_name}-{logical_id}-{target['Id']}"[:80]
            )["QueueUrl"]
            stand_ins[target["Id"]] = queue
            attributes = p.client("sqs").get_queue_attributes(
                QueueUrl=queue, AttributeNames=["QueueArn"]
            )
            arn = attributes["Attributes"]["QueueArn"]
            LOG.info(
                "%s: target %s delivered to the stand-in queue %s", logical_id, target["Id"], queue
            )
        targets.append({"Id": target["Id"], "Arn": arn})
    if targets:
        events.put_targets(Rule=name, EventBusName=bus, Targets=targets)
