"""Writes schemas/job-manifest.schema.json from the JobSpec model (`python -m devstack.schema`)."""

from __future__ import annotations

import json
from pathlib import Path

from dropcut.jobs import JobSpec

SCHEMA_PATH = Path(__file__).resolve().parents[1] / "schemas" / "job-manifest.schema.json"


def manifest_schema() -> dict[str, object]:
    schema = JobSpec.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "dropcut job manifest (<video>.json beside the video)"
    return schema


def render() -> str:
    return json.dumps(manifest_schema(), indent=2, sort_keys=True) + "\n"


if __name__ == "__main__":
    SCHEMA_PATH.write_text(render())
    print(f"wrote {SCHEMA_PATH}")
