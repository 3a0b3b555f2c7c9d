"""Writes the published JSON Schemas from their models (`python -m devstack.schema`):
schemas/job-manifest.schema.json (JobSpec), schemas/job-event.schema.json (the detail of a
job event, JobEventDetail) and schemas/batch-event.schema.json (the detail of a Batch Completed
event, BatchEventDetail)."""

from __future__ import annotations

import json
from pathlib import Path

from dropcut.aws.job_events import BATCH_COMPLETED, BatchEventDetail, JobEventDetail
from dropcut.model.jobs import JobSpec

SCHEMAS = Path(__file__).resolve().parents[1] / "schemas"
SCHEMA_PATH = SCHEMAS / "job-manifest.schema.json"
JOB_EVENT_SCHEMA_PATH = SCHEMAS / "job-event.schema.json"
BATCH_EVENT_SCHEMA_PATH = SCHEMAS / "batch-event.schema.json"
DRAFT = "https://json-schema.org/draft/2020-12/schema"


def manifest_schema() -> dict[str, object]:
    schema = JobSpec.model_json_schema()
    schema["$schema"] = DRAFT
    schema["title"] = "dropcut job manifest (<video>.json beside the video)"
    return schema


def job_event_schema() -> dict[str, object]:
    schema = JobEventDetail.model_json_schema(mode="serialization")
    schema["$schema"] = DRAFT
    schema["description"] = (
        "The detail of a dropcut job event (EventBridge default bus, source 'dropcut', "
        "detail-type 'Job Submitted' | 'Job Refused' | 'Job Succeeded' | 'Job Failed' | "
        "'Job Cancelled')."
    )
    return schema


def batch_event_schema() -> dict[str, object]:
    schema = BatchEventDetail.model_json_schema(mode="serialization")
    schema["$schema"] = DRAFT
    schema["description"] = (
        "The detail of a dropcut batch event (EventBridge default bus, source 'dropcut', "
        f"detail-type '{BATCH_COMPLETED}')."
    )
    return schema


def _dump(schema: dict[str, object]) -> str:
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


def render() -> str:
    return _dump(manifest_schema())


def render_job_event() -> str:
    return _dump(job_event_schema())


def render_batch_event() -> str:
    return _dump(batch_event_schema())


if __name__ == "__main__":
    SCHEMA_PATH.write_text(render())
    JOB_EVENT_SCHEMA_PATH.write_text(render_job_event())
    BATCH_EVENT_SCHEMA_PATH.write_text(render_batch_event())
    print(f"wrote {SCHEMA_PATH}, {JOB_EVENT_SCHEMA_PATH} and {BATCH_EVENT_SCHEMA_PATH}")
