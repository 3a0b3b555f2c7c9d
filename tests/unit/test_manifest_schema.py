"""The published manifest schema is the one the code validates with, and it accepts the README's example."""

import json

import jsonschema
import pytest
from pydantic import ValidationError

from devstack.schema import SCHEMA_PATH, render
from dropcut.model.jobs import JobSpec

README_EXAMPLE = {
    "prompt": "Turn the scene into a sepia-toned 1920s film, keep the motion",
    "images": ["inbox/refs/style.png"],
    "keep_audio": True,
    "aspect_ratio": "16:9",
    "output_name": "clip-1920s.mp4",
}


def test_published_schema_is_up_to_date():
    assert SCHEMA_PATH.read_text() == render(), "run: python -m devstack.schema"


def test_schema_and_model_agree_on_a_valid_and_an_invalid_manifest():
    schema = json.loads(SCHEMA_PATH.read_text())
    jsonschema.validate(README_EXAMPLE, schema)
    JobSpec.model_validate(README_EXAMPLE)
    bad = README_EXAMPLE | {"colour": "red"}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, schema)
    with pytest.raises(ValidationError):
        JobSpec.model_validate(bad)
