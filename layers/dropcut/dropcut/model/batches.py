"""Batches: the jobs dropped together, counted as they end, summarized once when the last ends.

A job joins one batch when its record is made (dropcut.services.batches):

- an upload carrying a batch tag (S3 user metadata `dropcut-batch` = a batch id and
  `dropcut-batch-size` = how many videos the batch has; `dropcut submit` sets both) joins that
  batch, if the batch is in the same folder (a tag never reaches into another folder's batch);
- any other upload joins its folder's open batch: the uploads of one folder form one batch until
  the folder is quiet for the quiet window (BatchQuietSeconds, 600 s by default).

A batch is *closed* when it has all the videos its tag announced, or when no upload joined it
for the quiet window; a closed batch whose jobs have all ended is *complete*, and gets one
summary beside its outputs (`outbox/<folder>/_batches/<batch id>.json` and `.html`) and one
`Batch Completed` event.
"""

from __future__ import annotations

import re
import secrets
import time
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from dropcut.model.layout import ROOT_FOLDER, BucketLayout
from dropcut.model.phases import JobPhase

#: A batch id: `b-<UTC time of its first job, YYYYMMDDTHHMMSS>-<6 random hex digits>`, sortable
#: by age, unguessable enough that two folders' batches never share one.
BATCH_ID_PATTERN = re.compile(r"^b-\d{8}T\d{6}-[0-9a-f]{6}$")
#: The S3 user metadata naming an upload's batch and that batch's size (`dropcut submit`).
BATCH_TAG_METADATA = "dropcut-batch"
BATCH_SIZE_METADATA = "dropcut-batch-size"
#: The most videos one tagged batch may announce (a bigger number is not trusted).
MAX_BATCH_SIZE = 1_000_000
#: The folder under each output folder where batch summaries go.
SUMMARY_FOLDER = "_batches"


def new_batch_id(now: float | None = None) -> str:
    """A fresh batch id (BATCH_ID_PATTERN) for a batch whose first job arrives at `now`."""
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(time.time() if now is None else now))
    return f"b-{stamp}-{secrets.token_hex(3)}"


def batch_folder(layout: BucketLayout, key: str) -> str:
    """The folder a video was dropped into, below the inbox: inbox/news/day1/a.mp4 ->
    `news/day1`; a video at the inbox root -> ROOT_FOLDER."""
    folder, slash, _ = layout.relative(key).rpartition("/")
    return folder if slash and folder else ROOT_FOLDER


def summary_key(layout: BucketLayout, folder: str, batch_id: str, suffix: str) -> str:
    """Where a batch's summary goes: `outbox/<folder>/_batches/<batch id><suffix>` (suffix
    `.json` or `.html`; the inbox root's batches under `outbox/_batches/`)."""
    base = "" if folder == ROOT_FOLDER else f"{folder}/"
    return f"{layout.outbox}{base}{SUMMARY_FOLDER}/{batch_id}{suffix}"


class BatchTag(BaseModel):
    """The batch an upload says it belongs to (its S3 user metadata), checked."""

    model_config = ConfigDict(frozen=True)
    batch_id: str
    size: int

    @classmethod
    def of(cls, metadata: dict[str, str]) -> BatchTag | None:
        """The tag in an object's user metadata (HeadObject's `Metadata`), or None when there is
        none or it is malformed (an id not matching BATCH_ID_PATTERN, a size that is not a
        whole number from 1 to MAX_BATCH_SIZE): such an upload joins its folder's batch."""
        batch_id = metadata.get(BATCH_TAG_METADATA, "").strip()
        size = metadata.get(BATCH_SIZE_METADATA, "").strip()
        if not BATCH_ID_PATTERN.match(batch_id) or not size.isdigit():
            return None
        if not 1 <= int(size) <= MAX_BATCH_SIZE:
            return None
        return cls(batch_id=batch_id, size=int(size))

    def metadata(self) -> dict[str, str]:
        """The S3 user metadata that tags an upload with this batch (what `of` reads)."""
        return {BATCH_TAG_METADATA: self.batch_id, BATCH_SIZE_METADATA: str(self.size)}


class BatchState(StrEnum):
    """Where a batch is: taking jobs and running them, writing its summary, or complete."""

    OPEN = "open"
    SUMMARIZING = "summarizing"
    COMPLETED = "completed"


class BatchOrigin(StrEnum):
    """How a batch was formed: by `dropcut submit` (a tag) or by a folder's uploads."""

    TAGGED = "tagged"
    FOLDER = "folder"


#: The endings a batch counts (a job's ending phase -> the counter it adds to).
ENDING_COUNTERS = {
    JobPhase.DONE: "succeeded",
    JobPhase.EDITED: "succeeded",
    JobPhase.FAILED: "failed",
    JobPhase.CANCELLED: "cancelled",
}


class Batch(BaseModel):
    """A batch's header: what it holds and how far it is (the batches table's `batch` entry)."""

    model_config = ConfigDict(frozen=True)
    batch_id: str
    folder: str
    origin: BatchOrigin
    state: BatchState = BatchState.OPEN
    created_at: float
    #: When the last job joined (the quiet window counts from here).
    last_arrival: float
    #: The videos a tag announced (None: a folder's batch, closed by the quiet window).
    expected: int | None = None
    jobs: int = 0
    ended: int = 0
    succeeded: int = 0
    failed: int = 0
    cancelled: int = 0
    credits_estimated: float = 0.0
    credits_spent: float = 0.0
    #: When an ending was last counted (the reconciler recounts a batch stuck for long).
    last_ending: float | None = None
    summarizing_since: float | None = None
    completed_at: float | None = None
    summary_key: str | None = None
    page_key: str | None = None

    def closed(self, now: float, quiet_seconds: float) -> bool:
        """No job will join any more: the tag's count is reached, or the folder was quiet for
        `quiet_seconds` since the last job joined."""
        full = self.expected is not None and self.jobs >= self.expected
        return full or now - self.last_arrival >= quiet_seconds

    def ready(self, now: float, quiet_seconds: float) -> bool:
        """Closed, open, with every job ended: its summary is due."""
        return (
            self.state is BatchState.OPEN
            and self.jobs > 0
            and self.ended >= self.jobs
            and self.closed(now, quiet_seconds)
        )


class EndingFacts(BaseModel):
    """What a batch keeps of a job's ending (a summary row's ending columns)."""

    model_config = ConfigDict(frozen=True)
    reason: str | None = None
    credits: float | None = None
    credits_estimated: float | None = None
    output_key: str | None = None
    report_key: str | None = None
    sheet_key: str | None = None


class BatchMember(EndingFacts):
    """One job of a batch, and its ending once it has one (a summary row)."""

    job_id: str
    key: str
    joined_at: float
    ended_at: float | None = None
    phase: JobPhase | None = None


class MemberEnding(EndingFacts):
    """How one job ended, as a batch records it (from its ending event or its record)."""

    job_id: str
    phase: JobPhase
    ended_at: float

    @property
    def counter(self) -> str:
        """The header counter this ending adds to (ENDING_COUNTERS)."""
        return ENDING_COUNTERS[self.phase]


class BatchSummary(BaseModel):
    """The summary written when a batch completes (`_batches/<id>.json`; schema_version 1)."""

    model_config = ConfigDict(frozen=True)
    schema_version: int = 1
    batch: Batch
    jobs: list[BatchMember] = Field(description="Every job of the batch, in the order they joined.")

    def as_json(self) -> dict[str, Any]:
        """The summary document."""
        return self.model_dump(mode="json")
