"""Notify: email queue messages (job events) -> the NotificationEmail topic, paced
(dropcut.steps.notify). Only with NotificationEmailFor=job.

A message whose publish fails is reported back (partial batch failure) and retried after the
queue's visibility timeout; after 5 receives it goes to the email dead-letter queue.
"""

from typing import Any

from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from dropcut import wiring
from dropcut.observability import instrumented
from dropcut.settings import NotifySettings
from dropcut.steps.notify import NotifyDeps, Pacer, send_email

deps = NotifyDeps(wiring.sns_client(), NotifySettings.from_env().topic_arn)
processor = BatchProcessor(event_type=EventType.SQS)
#: One pace per execution environment, kept across invocations (a new one each time would send
#: each batch's first email at once, right after the last batch's).
pacer = Pacer()


def email_message(record: SQSRecord) -> None:
    """One queue message (Powertools calls it `record`): its body is the job event."""
    send_email(deps, pacer, record.body)


@instrumented
def handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return process_partial_response(
        event=event, record_handler=email_message, processor=processor, context=context
    )
