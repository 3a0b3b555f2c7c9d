"""The scheduled reconciler: finds jobs that can no longer move on their own and ends them.

Rule so far: a video that has waited longer than the manifest wait for its manifest ends with a
report saying so (its manifest never came, or came under another name).
"""

from __future__ import annotations

import time
from typing import Any

from boto3.dynamodb.conditions import Key

from dropcut.config import Settings
from dropcut.errors import Problem
from dropcut.jobs import MANIFEST_SUFFIX, JobRecord, JobStatus, JobStore, from_item, to_item
from dropcut.observability import logger, metrics
from dropcut.reports import write_error_report

STATUS_INDEX = "by_status"
MANIFEST_TIMEOUT_REASON = "manifest_timeout"


def expire_manifest_waits(
    s3: Any, store: JobStore, settings: Settings, wait_seconds: int, now: float | None = None
) -> list[str]:
    """End every job still waiting for its manifest after `wait_seconds`; returns their ids."""
    now = now or time.time()
    cutoff = now - wait_seconds
    expired: list[str] = []
    for record in _records_in(store, JobStatus.WAITING_FOR_MANIFEST, created_before=cutoff):
        # Conditional: a manifest that arrives at this very moment wins or loses, never both.
        claimed = store.update(
            record.job_id,
            {"status": JobStatus.FAILED.value, "error_reason": MANIFEST_TIMEOUT_REASON},
            condition="#status = :waiting",
            condition_names={"#status": "status"},
            condition_values={":waiting": JobStatus.WAITING_FOR_MANIFEST.value},
        )
        if not claimed:
            continue
        manifest_name = record.key.rsplit("/", 1)[-1] + MANIFEST_SUFFIX
        waited = now - record.created_at
        write_error_report(
            s3,
            store,
            settings,
            record,
            error_type="ManifestTimedOut",
            reason=MANIFEST_TIMEOUT_REASON,
            message=f"no manifest arrived within {wait_seconds} s of the video "
            f"(waited {waited:.0f} s), and the video has no 'prompt' metadata",
            advice=f"Upload {manifest_name} beside the video, then upload the video again "
            "(a new upload is a new job).",
            problems=[
                Problem(
                    "manifest",
                    f"{manifest_name} did not arrive",
                    f"within {wait_seconds} s (ManifestWaitSeconds)",
                    "Upload the manifest before or together with the video.",
                )
            ],
        )
        metrics.add_metric(name="ManifestTimeouts", unit="Count", value=1)
        logger.warning("manifest never came", extra={"job_id": record.job_id, "key": record.key})
        expired.append(record.job_id)
    return expired


def _records_in(store: JobStore, status: JobStatus, created_before: float) -> list[JobRecord]:
    records: list[JobRecord] = []
    kwargs: dict[str, Any] = {
        "IndexName": STATUS_INDEX,
        "KeyConditionExpression": Key("status").eq(status.value)
        & Key("created_at").lt(to_item(created_before)),
    }
    while True:
        page = store.table.query(**kwargs)
        records.extend(JobRecord.model_validate(from_item(item)) for item in page["Items"])
        if "LastEvaluatedKey" not in page:
            return records
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
