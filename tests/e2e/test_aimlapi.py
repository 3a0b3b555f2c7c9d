"""An aimlapi stack (polled, no callbacks) with the manifest's elements: characters or objects
to keep consistent, sent as aimlapi documents them, within the model's limit of 4 references."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from devstack.local_app import LocalApp, local_app
from devstack.media import make_sample_image
from tests.e2e.conftest import code_root

pytestmark = [pytest.mark.own_app]


@pytest.fixture(scope="module")
def aiml_app() -> Iterator[LocalApp]:
    with local_app("aimlapi", code_root=code_root()) as running:
        yield running


@pytest.fixture(scope="module")
def png(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return Path(make_sample_image(tmp_path_factory.mktemp("refs") / "ref.png")).read_bytes()


def test_elements_reach_the_provider_and_the_job_succeeds(aiml_app: LocalApp, clip, png):
    for name in ("face", "side"):
        aiml_app.put(f"inbox/el/{name}.png", png)
    key = "inbox/el/hero.mp4"
    aiml_app.put_manifest(
        key,
        {
            "prompt": "sepia",
            "elements": [
                {"frontal_image": "inbox/el/face.png", "reference_images": ["inbox/el/side.png"]}
            ],
        },
    )
    aiml_app.put(key, clip)
    ending = aiml_app.wait_for_ending(key, timeout=120)
    assert ending.succeeded, ending.error
    assert ending.result["options"]["elements"][0]["frontal_image"] == "inbox/el/face.png"
    assert aiml_app.simulator.stats()["tasks_created"] == 1


def test_images_and_elements_past_the_models_limit_are_refused_unpaid(
    aiml_app: LocalApp, clip, png
):
    tasks_before = aiml_app.simulator.stats()["tasks_created"]
    aiml_app.put("inbox/el2/ref.png", png)
    element = {"frontal_image": "inbox/el2/ref.png", "reference_images": ["inbox/el2/ref.png"]}
    key = "inbox/el2/crowd.mp4"
    aiml_app.put_manifest(
        key, {"prompt": "sepia", "images": ["inbox/el2/ref.png"] * 3, "elements": [element] * 2}
    )
    aiml_app.put(key, clip)
    report = aiml_app.wait_for_ending(key).error
    assert report["reason"] == "input_invalid"
    assert [p["field"] for p in report["problems"]] == ["elements"]
    assert "the model's limit" in report["problems"][0]["limit"]
    assert aiml_app.simulator.stats()["tasks_created"] == tasks_before
