"""What each resource type the local stack creates is created with: the table handed to the
`Provisioner` (`DevStack` does), so that `provision` imports none of its creators."""

from __future__ import annotations

from types import MappingProxyType
from typing import TYPE_CHECKING

from devstack.stack import lambdas, resources

if TYPE_CHECKING:
    from collections.abc import Mapping

    from devstack.stack.provision import Creator

#: Resource type -> its creator (any other type is created as nothing).
CREATORS: Mapping[str, Creator] = MappingProxyType(
    {
        "AWS::S3::Bucket": resources.create_bucket,
        "AWS::DynamoDB::Table": resources.create_table,
        "AWS::Serverless::SimpleTable": resources.create_simple_table,
        "AWS::SQS::Queue": resources.create_queue,
        "AWS::SecretsManager::Secret": resources.create_secret,
        "AWS::Serverless::Function": lambdas.create_function,
        "AWS::Serverless::StateMachine": resources.create_state_machine,
        "AWS::SNS::Topic": resources.create_topic,
        "AWS::Events::Rule": resources.create_event_rule,
    }
)
