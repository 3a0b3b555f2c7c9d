"""Dead-lettered inbox events: never where an upload ends.

Submit fails on an inbox event only for something that may pass (an AWS service throttled or
down, a Submit run out of time on a busy stack) or for a bug: bad input is refused with a report,
never raised. After the inbox queue's 5 deliveries the event lands in the dead-letter queue. The
reconciler (each pass) sends it back to the inbox queue, later each time (`REDRIVE_DELAYS`), and
when it has been sent back that many times, ends the upload with a report (`not_accepted`): a
job record born failed, its `Job Failed` event, its place in its folder's batch. Nothing was
sent to the provider, so nothing was paid.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError
from pydantic import ValidationError

from dropcut.aws.inbox_queue import DeadLetter, InboxQueues
from dropcut.aws.job_events import JobEvents, JobEventType
from dropcut.aws.job_store import JobStore
from dropcut.errors import Failure, UploadNotAccepted
from dropcut.model.jobs import JobRecord, JobStatus, job_id_for
from dropcut.model.layout import MANIFEST_SUFFIX, BucketLayout, is_image_key, not_a_job
from dropcut.observability import logger, metrics
from dropcut.services.batches import Batches
from dropcut.services.error_reports import count_failure, create_failed, put_error_report

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

    from dropcut.model.inbox import S3EventRecord

#: How long a dead-lettered event waits before each time it is sent back (s): an outage or a
#: busy stack gets time to pass. After the last, its upload ends with a report.
REDRIVE_DELAYS = (60, 300, 900)
#: Dead letters handled per reconciler pass (it runs every 5 minutes: 1,200 an hour).
PER_PASS = 100


@dataclass(frozen=True)
class DeadLetterDeps:
    queues: InboxQueues
    s3: S3Client
    store: JobStore
    layout: BucketLayout
    events: JobEvents
    batches: Batches | None


@dataclass
class DeadLetterReport:
    #: Events put back in the inbox queue.
    sent_back: int = 0
    #: Jobs ended `not_accepted` (a report each).
    not_accepted: list[str] = field(default_factory=list)
    #: Events an AWS error kept from being handled (left for the next pass).
    deferred: int = 0


def handle_dead_letters(deps: DeadLetterDeps, limit: int = PER_PASS) -> DeadLetterReport:
    """Send each dead-lettered inbox event back, or end its upload with a report (see the
    module docstring); at most `limit` events a call."""
    report = DeadLetterReport()
    for letter in deps.queues.dead_letters(limit):
        try:
            if letter.redrives < len(REDRIVE_DELAYS):
                deps.queues.send_back(letter, REDRIVE_DELAYS[letter.redrives])
                report.sent_back += 1
                continue
            report.not_accepted.extend(_not_accepted(deps, letter))
            deps.queues.drop(letter)
        except (BotoCoreError, ClientError) as exc:
            # Left in the dead letters: it is read again in 5 minutes (the next pass).
            logger.warning(
                "dead letter not handled",
                extra={"message_id": letter.message_id, "error": type(exc).__name__},
            )
            report.deferred += 1
    if report.sent_back or report.not_accepted:
        logger.warning(
            "dead-lettered inbox events",
            extra={"sent_back": report.sent_back, "not_accepted": report.not_accepted},
        )
    metrics.add_metric(name="InboxEventsSentBack", unit="Count", value=report.sent_back)
    metrics.add_metric(name="UploadsNotAccepted", unit="Count", value=len(report.not_accepted))
    return report


def _not_accepted(deps: DeadLetterDeps, letter: DeadLetter) -> list[str]:
    """End the uploads of an event tried for the last time; the ids of the jobs it ended."""
    # Imported here: the inbox models are Submit's, and only a last round needs them (the
    # reconciler's cold start does not build them).
    from dropcut.model.inbox import InboxEvent

    try:
        event = InboxEvent.model_validate_json(letter.body)
    except ValidationError:
        logger.error(
            "dead letter is not an S3 notification", extra={"message_id": letter.message_id}
        )
        return []
    ended = []
    for notification in event.Records:
        job_id = _end_upload(deps, notification)
        if job_id is not None:
            ended.append(job_id)
    return ended


def _end_upload(deps: DeadLetterDeps, notification: S3EventRecord) -> str | None:
    """End one upload `not_accepted` unless it is no job of its own or has a record already
    (that job goes on, or is ended by its own rule); its job id, or None."""
    bucket, key = notification.s3.bucket.name, notification.s3.object.decoded_key
    version = notification.s3.object.versionId or (notification.s3.object.eTag or "").strip('"')
    if (
        not deps.layout.in_inbox(bucket, key)
        or not_a_job(key, size=-1) is not None
        or is_image_key(key)
        or key.endswith(MANIFEST_SUFFIX)
        or not version
    ):
        # A manifest's event: its video's job waits for it, and ends at the manifest wait.
        logger.warning("dead letter ends no job", extra={"key": key})
        return None
    job_id = job_id_for(bucket, key, version)
    if deps.store.get(job_id) is not None:
        return None
    now = time.time()
    record = JobRecord(
        job_id=job_id,
        status=JobStatus.FAILED,
        bucket=bucket,
        key=key,
        version=version,
        # Its folder's batch: a `dropcut submit` tag is in the object's metadata, which the
        # reconciler does not read (a tagged batch closes without it, at its quiet window).
        batch_id=deps.batches.join(job_id, key, {}, now) if deps.batches else None,
    )
    failure = Failure.of(
        UploadNotAccepted(
            f"dropcut could not take this upload in: Submit failed on its inbox event every time "
            f"it was tried (the inbox queue's deliveries, then {len(REDRIVE_DELAYS)} more rounds "
            "of them, sent back from its dead-letter queue after waits of "
            f"{', '.join(str(d // 60) for d in REDRIVE_DELAYS)} minutes). "
            "Nothing was sent to the provider and nothing was paid."
        )
    )
    failed = put_error_report(deps.s3, deps.layout, record, failure)
    if not create_failed(deps.store, record, failed):
        return None
    count_failure(failure.reason)
    deps.events.publish(
        JobEventType.FAILED, record, failure=failure, report_key=str(failed["error_report_key"])
    )
    return job_id
