"""The whole pipeline through the real state machine on the local stack."""

from __future__ import annotations

import pytest

from devstack.app import LocalApp
from devstack.media import probe


def test_a_dropped_video_comes_back_edited_with_a_result_manifest(app: LocalApp, clip, tmp_path):
    key = "inbox/e2e/success.mp4"
    put = app.put(key, clip, metadata={"prompt": "monochrome please"})
    ending = app.wait_for_ending(key)
    assert ending.succeeded, ending.error
    assert ending.output_key == "outbox/e2e/success.edited.mp4"
    output = tmp_path / "out.mp4"
    output.write_bytes(app.s3.get_object(Bucket=app.bucket, Key=ending.output_key)["Body"].read())
    assert probe(output)["video_codec"] == "h264"
    assert ending.result["input"] == {"bucket": app.bucket, "key": key, "version": put["VersionId"]}
    assert ending.result["prompt"] == "monochrome please"
    assert ending.result["provider_task_id"].startswith("task-unified-")
    assert app.simulator.stats()["tasks_created"] == 1
    # The input is untouched.
    assert app.s3.get_object(Bucket=app.bucket, Key=key)["Body"].read() == clip
