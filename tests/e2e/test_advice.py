"""Every refusal's advice works when followed: for each reason a refused upload can get, do
what the report says and the job runs (one task, one ending: the stale report goes)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from devstack.local_app import LocalApp

Step = Callable[[LocalApp, str, bytes], None]


def _wait_for_manifest_timeout(app: LocalApp, key: str, clip: bytes) -> None:
    app.put(key, clip)  # no prompt anywhere: it waits for its manifest (ManifestWaitSeconds 3)
    app.wait_for_job(key, lambda job: job["status"] == "waiting_for_manifest")
    time.sleep(3.5)
    app.stack.fire_schedule("ReconcileFunction")


@dataclass(frozen=True)
class Advice:
    name: str
    refuse: Step  # the upload that is refused
    reason: str
    says: str  # words of the advice (or a problem's hint) that the fix follows
    fix: Step  # doing what it says
    #: The fix uploads a new video version: a new job, and the refused version keeps its report.
    new_version: bool = False


CASES = [
    Advice(
        "unknown-manifest-field",
        lambda app, key, clip: (
            app.put_manifest(key, {"prompt": "sepia", "keep_sound": True}),
            app.put(key, clip),
        ),
        "input_invalid",
        "upload the video (or its manifest) again",
        lambda app, key, clip: app.put_manifest(key, {"prompt": "sepia", "keep_audio": True}),
    ),
    Advice(
        "manifest-never-came",
        _wait_for_manifest_timeout,
        "manifest_timeout",
        "the job starts when it arrives",
        lambda app, key, clip: app.put_manifest(key, {"prompt": "mirror"}),
    ),
    Advice(
        "undecodable-metadata",
        lambda app, key, clip: app.put(key, clip, metadata={"prompt": "=?bogus?Q?x?="}),
        "input_invalid",
        "Put the prompt in a manifest",
        lambda app, key, clip: app.put_manifest(key, {"prompt": "warm"}),
    ),
    Advice(
        "output-taken",
        lambda app, key, clip: (
            app.put(key.replace(".mov", ".mp4"), clip, metadata={"prompt": "invert"}),
            app.wait_for_ending(key.replace(".mov", ".mp4")),
            app.put(key, clip, metadata={"prompt": "invert"}),
        ),
        "input_invalid",
        "give it another output_name in its manifest",
        lambda app, key, clip: app.put_manifest(
            key, {"prompt": "invert", "output_name": "taken-mov.mp4"}
        ),
    ),
    Advice(
        "not-a-video",
        lambda app, key, clip: app.put(key, b"my notes\n" * 50, metadata={"prompt": "sepia"}),
        "input_invalid",
        "upload",
        lambda app, key, clip: app.put(key, clip, metadata={"prompt": "sepia"}),
        new_version=True,
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_following_the_advice_of_a_refusal_runs_the_job(app: LocalApp, clip, case: Advice):
    extension = ".mov" if case.name == "output-taken" else ".mp4"
    key = f"inbox/advice/{case.name}{extension}"
    case.refuse(app, key, clip)
    refused = app.wait_for_ending(key)
    assert refused.error["reason"] == case.reason
    texts = [refused.error["advice"], *(p.get("hint", "") for p in refused.error["problems"])]
    assert any(case.says in text for text in texts), texts
    tasks_before = app.simulator.stats()["tasks_created"]

    case.fix(app, key, clip)

    ending = app.wait_for_job(key, lambda job: job["status"] == "succeeded", timeout=90)
    assert ending["output_key"] in app.keys("outbox/advice/")
    assert app.simulator.stats()["tasks_created"] == tasks_before + 1
    reports = app.keys(f"errors/advice/{case.name}")
    assert reports == ([refused.error_key] if case.new_version else []), "one job, one ending"
