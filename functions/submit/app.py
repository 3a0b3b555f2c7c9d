"""Submit: inbox queue messages (S3 notifications) -> one job per video version, started once
(dropcut.steps.submit).

A message whose handling fails is reported back (partial batch failure) and retried after the
queue's visibility timeout; after maxReceiveCount receives it goes to the dead-letter queue.
"""

from typing import Any

from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.typing import LambdaContext

from dropcut import wiring
from dropcut.model.inbox import InboxMessage
from dropcut.observability import instrumented, logger, metrics
from dropcut.settings import Settings, SubmitSettings
from dropcut.steps.submit import Outcome, submit_object

settings = Settings.from_env()
submit_settings = SubmitSettings.from_env()
deps = wiring.submit_deps(settings, submit_settings)
processor = BatchProcessor(event_type=EventType.SQS, model=InboxMessage)
#: Metric per outcome: what an operator counts on the dashboard.
OUTCOME_METRICS = {
    Outcome.STARTED: "JobsSubmitted",
    Outcome.REFUSED: "JobsRefused",
    Outcome.DUPLICATE: "DuplicateEvents",
    Outcome.NOT_A_JOB: "ObjectsIgnored",
}


def submit_message(record: InboxMessage) -> None:
    """One queue message (Powertools calls it `record`); raising reports it failed."""
    for notification in record.body.Records:
        ref = notification.s3.object
        result = submit_object(deps, notification.s3.bucket.name, ref.decoded_key, ref.versionId)
        logger.info(
            "inbox event handled",
            extra={"key": result.key, "outcome": result.outcome.value, "job_id": result.job_id},
        )
        if result.outcome in OUTCOME_METRICS:
            metrics.add_metric(name=OUTCOME_METRICS[result.outcome], unit="Count", value=1)


@instrumented
def handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return process_partial_response(
        event=event, record_handler=submit_message, processor=processor, context=context
    )
