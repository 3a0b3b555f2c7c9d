"""Batches at work (dropcut.model.batches says what a batch is, dropcut.aws.batch_store where
it is kept): a new job joins its batch (Submit), each job's ending is counted in its batch (the
job event publisher calls `job_ended` at every ending), and the ending that completes a batch
writes its summary and publishes one `Batch Completed` event.

Counting is best effort at the ending (a failure there never fails the step that ended the
job); the reconciler's `sweep` is the safety net: it completes batches whose quiet window
passed after their last ending, recounts a batch that has not moved for RECOUNT_AFTER_SECONDS
from its members' job records, and finishes a summary left half-written.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

from dropcut.aws.batch_store import BatchStore, Joined
from dropcut.aws.job_events import JobEventDetail, JobEvents
from dropcut.aws.job_store import JobStore
from dropcut.aws.storage import put_json
from dropcut.model.batches import (
    Batch,
    BatchOrigin,
    BatchState,
    BatchSummary,
    BatchTag,
    MemberEnding,
    batch_folder,
    new_batch_id,
    summary_key,
)
from dropcut.model.jobs import JobRecord
from dropcut.model.layout import BucketLayout
from dropcut.model.plan import recorded_plan
from dropcut.observability import logger, metrics
from dropcut.services.batch_summaries import render_page

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

#: How many times a join re-reads the folder's open batch when other uploads move it meanwhile.
MAX_JOIN_ATTEMPTS = 5
#: A closed batch with jobs not counted as ended, and no ending counted for this long, is
#: recounted from its members' job records by the reconciler (s).
RECOUNT_AFTER_SECONDS = 900
#: A summary claimed this long ago and not completed is written again (s; a Lambda's longest
#: run is 900 s).
SUMMARY_STALE_SECONDS = 900
#: The largest batch whose summary the ending step of its last job writes (a 30 s step; its
#: members' Query and its page grow with the batch); a larger one is summarized by the
#: reconciler's next sweep (a 300 s run), at most 5 minutes later.
INLINE_SUMMARY_MAX_JOBS = 2_000


@dataclass(frozen=True)
class Batches:
    """Joins, endings and summaries of this stack's batches."""

    store: BatchStore
    jobs: JobStore
    s3: S3Client
    layout: BucketLayout
    #: Publishes `Batch Completed` (a plain publisher: it counts no endings itself).
    events: JobEvents
    #: BatchQuietSeconds: a folder's uploads this far apart start a new batch (s).
    quiet_seconds: float

    # -- joining -----------------------------------------------------------------------------

    def join(self, job_id: str, key: str, metadata: dict[str, str], now: float) -> str | None:
        """Put a new job in its batch (its tag's, else its folder's open one); the batch id,
        or None when no batch could be joined (logged: the job runs all the same)."""
        folder = batch_folder(self.layout, key)
        tag = BatchTag.of(metadata)
        for _ in range(MAX_JOIN_ATTEMPTS):
            batch_id = self._tagged(tag, folder, now) if tag is not None else None
            if batch_id is None:
                tag = None
                batch_id = self._folder_batch(folder, now)
            if batch_id is None:
                continue
            if self.store.join(batch_id, job_id, key, now) is not Joined.CLOSED:
                return batch_id
            tag = None  # its tagged batch is complete: the job goes to its folder's
        logger.warning("no batch joined", extra={"folder": folder})
        metrics.add_metric(name="BatchJoinsMissed", unit="Count", value=1)
        return None

    def _tagged(self, tag: BatchTag, folder: str, now: float) -> str | None:
        """The tag's batch, made on its first job; None when it is another folder's or no
        longer open (a tag never reaches into another folder's batch)."""
        batch = self.store.get(tag.batch_id)
        if batch is None:
            fresh = Batch(
                batch_id=tag.batch_id,
                folder=folder,
                origin=BatchOrigin.TAGGED,
                created_at=now,
                last_arrival=now,
                expected=tag.size,
            )
            # Read again only when another upload of the batch made it first.
            batch = fresh if self.store.create(fresh) else self.store.get(tag.batch_id)
        if batch is None or batch.folder != folder or batch.state is not BatchState.OPEN:
            return None
        return batch.batch_id

    def _folder_batch(self, folder: str, now: float) -> str | None:
        """The folder's open batch, or a new one when it has none that is still taking jobs
        (None: another upload moved the folder's batch meanwhile; try again)."""
        current = self.store.open_batch(folder)
        batch = self.store.get(current) if current is not None else None
        taking = batch is not None and batch.state is BatchState.OPEN
        if batch is not None and taking and not batch.closed(now, self.quiet_seconds):
            return batch.batch_id
        fresh = Batch(
            batch_id=new_batch_id(now),
            folder=folder,
            origin=BatchOrigin.FOLDER,
            created_at=now,
            last_arrival=now,
        )
        # The pointer first: a crash before the header leaves a pointer to no batch, which
        # the next upload replaces (no orphan header with no jobs).
        if not self.store.point(folder, fresh.batch_id, current):
            return None
        self.store.create(fresh)
        return fresh.batch_id

    # -- endings -----------------------------------------------------------------------------

    def job_ended(self, record: JobRecord, detail: JobEventDetail) -> None:
        """Count a job's ending in its batch (the job event publisher's ending hook) and
        complete the batch when it was its last. Never raises: a count that fails is left to
        the reconciler's sweep (BatchCountsDeferred)."""
        if record.batch_id is None:
            return
        ending = MemberEnding(
            job_id=record.job_id,
            phase=detail.phase,
            ended_at=detail.occurred_at,
            reason=detail.reason,
            credits=detail.credits,
            credits_estimated=_estimated(record),
            output_key=detail.output_key,
            report_key=detail.error_report_key,
            sheet_key=record.contact_sheet_key,
        )
        try:
            if self.store.count_ending(record.batch_id, ending):
                self.complete_if_ready(record.batch_id, time.time(), inline=True)
        except (BotoCoreError, ClientError) as exc:
            logger.warning(
                "batch ending not counted",
                extra={"batch_id": record.batch_id, "error": f"{type(exc).__name__}: {exc}"},
            )
            metrics.add_metric(name="BatchCountsDeferred", unit="Count", value=1)

    def complete_if_ready(self, batch_id: str, now: float, *, inline: bool = False) -> bool:
        """Write the batch's summary and publish its `Batch Completed` event if it is ready
        (Batch.ready) and nobody else is at it; True when this call completed it. `inline`:
        called by a job's ending, inside a short step, which leaves a batch of more than
        INLINE_SUMMARY_MAX_JOBS to the reconciler's next sweep (its members are read in pages,
        its page has a row each)."""
        batch = self.store.get(batch_id)
        if batch is None or not self._due(batch, now):
            return False
        if inline and batch.jobs > INLINE_SUMMARY_MAX_JOBS:
            logger.info("batch summary left to the reconciler", extra={"batch_id": batch_id})
            return False
        if not self.store.claim_summary(batch, now, now - SUMMARY_STALE_SECONDS):
            return False
        self._summarize(batch, now)
        return True

    def _summarize(self, batch: Batch, now: float) -> None:
        """The summary (JSON and page) beside the batch's outputs, the header completed, one
        event; each write may be repeated (a retaken summary writes the same keys)."""
        json_key = summary_key(self.layout, batch.folder, batch.batch_id, ".json")
        page_key = summary_key(self.layout, batch.folder, batch.batch_id, ".html")
        members = sorted(self.store.members(batch.batch_id), key=lambda m: m.joined_at)
        done = batch.model_copy(
            update={
                "state": BatchState.COMPLETED,
                "completed_at": now,
                "summary_key": json_key,
                "page_key": page_key,
                "summarizing_since": None,
            }
        )
        summary = BatchSummary(batch=done, jobs=members)
        put_json(self.s3, self.layout.bucket, json_key, summary.as_json())
        self.s3.put_object(
            Bucket=self.layout.bucket,
            Key=page_key,
            Body=render_page(summary, page_key).encode(),
            ContentType="text/html; charset=utf-8",
        )
        self.store.complete(batch.batch_id, json_key, page_key, now)
        self.events.publish_batch(done)
        logger.info(
            "batch completed",
            extra={"batch_id": batch.batch_id, "jobs": batch.jobs, "summary": json_key},
        )
        metrics.add_metric(name="BatchesCompleted", unit="Count", value=1)

    # -- the reconciler's safety net ----------------------------------------------------------

    def sweep(self, now: float) -> list[str]:
        """Complete every open batch that is due (its quiet window passed after its last
        ending), recount the stuck ones, retake stale summaries; the ids completed."""
        completed: list[str] = []
        for state in (BatchState.OPEN, BatchState.SUMMARIZING):
            for batch in list(self.store.in_state(state)):
                recounted = self._stuck(batch, now) and self._recount(batch)
                # The listing (an index, eventually consistent) says which may be due: only
                # those are read again, strongly, and completed.
                if (recounted or self._due(batch, now)) and self.complete_if_ready(
                    batch.batch_id, now
                ):
                    completed.append(batch.batch_id)
        return completed

    def _due(self, batch: Batch, now: float) -> bool:
        """Its summary is due: it is ready (Batch.ready), or a summary claimed long ago was
        never finished."""
        stale = (
            batch.state is BatchState.SUMMARIZING
            and (batch.summarizing_since or 0) < now - SUMMARY_STALE_SECONDS
        )
        return stale or batch.ready(now, self.quiet_seconds)

    def _stuck(self, batch: Batch, now: float) -> bool:
        moved = max(batch.last_arrival, batch.last_ending or 0.0)
        return (
            batch.state is BatchState.OPEN
            and batch.ended < batch.jobs
            and batch.closed(now, self.quiet_seconds)
            and now - moved >= RECOUNT_AFTER_SECONDS
        )

    def _recount(self, batch: Batch) -> bool:
        """Count the endings a crash kept from being counted, from the members' job records;
        True when it counted any."""
        counted = False
        for member in self.store.members(batch.batch_id, unended_only=True):
            record = self.jobs.get(member.job_id)
            if record is None or record.phase is None or not record.phase.ended:
                continue
            ending = MemberEnding(
                job_id=record.job_id,
                phase=record.phase,
                ended_at=record.updated_at,
                reason=record.error_reason,
                credits=record.credits,
                credits_estimated=_estimated(record),
                output_key=record.output_key if record.error_reason is None else None,
                report_key=record.error_report_key,
                sheet_key=record.contact_sheet_key,
            )
            if self.store.count_ending(batch.batch_id, ending):
                metrics.add_metric(name="BatchEndingsRecounted", unit="Count", value=1)
                counted = True
        return counted


def _estimated(record: JobRecord) -> float | None:
    """The credits Submit's plan estimated for the job (None: no plan, or no billing rule)."""
    plan = recorded_plan(record.plan)
    return plan.credits if plan is not None else None
