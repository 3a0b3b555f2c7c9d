"""The whole pipeline through the real state machine on the local stack."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from devstack.local_app import LocalApp
from devstack.media import probe

EVENTS = Path(__file__).resolve().parents[2] / "events"


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


def executions_named(app: LocalApp, job_id: str) -> list[dict]:
    return [e for e in app.stack.executions("JobStateMachine") if e["name"] == job_id]


def test_a_failed_provider_task_ends_in_an_error_report(app: LocalApp, clip):
    key = "inbox/e2e/fails.mp4"
    app.put(key, clip, metadata={"prompt": "sepia [sim:fail]"})
    ending = app.wait_for_ending(key)
    assert not ending.succeeded
    assert ending.error_key == "errors/e2e/fails.mp4.error.json"
    assert ending.error["reason"] == "provider_task_failed"
    assert "generation_failed" in ending.error["message"]
    assert ending.error["advice"] and ending.error["provider_task_id"].startswith("task-unified-")
    assert app.simulator.stats()["tasks_created"] == 1
    assert app.keys("outbox/e2e/fails") == []
    assert app.s3.get_object(Bucket=app.bucket, Key=key)["Body"].read() == clip


def test_a_task_that_never_finishes_times_out_at_the_job_deadline(app: LocalApp, clip):
    key = "inbox/e2e/never.mp4"
    app.put(key, clip, metadata={"prompt": "sepia [sim:never]"})
    ending = app.wait_for_ending(key, timeout=60)
    assert ending.error["reason"] == "job_timed_out"
    assert "JobDeadlineSeconds" in ending.error["advice"]


def test_a_throttling_storm_is_ridden_out_with_backoff(app: LocalApp, clip):
    app.simulator.add_fault(api="evolink", op="create", kind="throttle", retry_after=1, times=2)
    app.simulator.add_fault(api="evolink", op="query", kind="throttle", retry_after=1, times=4)
    key = "inbox/e2e/storm.mp4"
    app.put(key, clip, metadata={"prompt": "invert"})
    ending = app.wait_for_ending(key, timeout=120)
    assert ending.succeeded, ending.error
    stats = app.simulator.stats()
    assert stats["tasks_created"] == 1
    assert stats["status_429"] == 6
    history = app.stack.history(executions_named(app, ending.result["job_id"])[0]["executionArn"])
    failed_attempts = [e for e in history if e["type"] == "LambdaFunctionFailed"]
    assert any(
        e["lambdaFunctionFailedEventDetails"]["error"] == "ProviderThrottled"
        for e in failed_attempts
    )


def test_an_expired_result_link_ends_in_an_error_report(app: LocalApp, clip):
    # Tried again until the stack's copy window ends (ResultCopyWindowSeconds, short here).
    app.simulator.configure(result_url_ttl_seconds=0)
    key = "inbox/e2e/expired.mp4"
    app.put(key, clip, metadata={"prompt": "mirror"})
    ending = app.wait_for_ending(key, timeout=120)
    assert ending.error["reason"] == "result_copy_failed"
    assert "403" in ending.error["message"] and "its link lives until" in ending.error["message"]
    assert ending.error["paid"]["tasks"][0]["result_stored"] is False
    assert app.keys("outbox/e2e/expired") == []


@pytest.mark.parametrize(
    ("fault", "words"),
    [
        ({"kind": "html_page"}, "text/html"),
        ({"kind": "redirect"}, "redirected more than 3 times"),
    ],
)
def test_a_result_that_is_not_a_video_is_never_stored(app: LocalApp, clip, fault, words):
    app.simulator.add_fault(api="evolink", op="result", times=-1, **fault)
    key = f"inbox/e2e/not-a-video-{fault['kind']}.mp4"
    app.put(key, clip, metadata={"prompt": "mirror"})
    ending = app.wait_for_ending(key)
    assert ending.error["reason"] == "result_invalid"
    assert words in ending.error["message"]
    assert app.keys(f"outbox/e2e/not-a-video-{fault['kind']}") == []
    assert not app.s3.list_multipart_uploads(Bucket=app.bucket).get("Uploads")
    assert app.simulator.stats()["tasks_created"] == 1


def test_a_result_whose_pictures_do_not_decode_is_never_stored(app: LocalApp, clip):
    """Issue 26, item 9: valid MP4 boxes around random media data pass the copy's checks; Stitch
    decodes the first pictures before anything reaches the outbox."""
    app.simulator.add_fault(api="evolink", op="result", times=-1, kind="noise_video")
    key = "inbox/e2e/noise.mp4"
    app.put(key, clip, metadata={"prompt": "mirror"})
    ending = app.wait_for_ending(key)
    assert ending.error["reason"] == "result_invalid", ending.error
    assert "does not decode" in ending.error["message"]
    assert app.keys("outbox/e2e/noise") == []
    assert app.simulator.stats()["tasks_created"] == 1


def test_duplicated_s3_events_start_one_execution_and_pay_for_one_task(app: LocalApp, clip):
    key = "inbox/e2e/dup.mp4"
    put = app.put(key, clip, metadata={"prompt": "warm"})
    notification = app.inbox_event(key, put["VersionId"])
    app.redeliver(key, put["VersionId"], copies=2)  # S3 delivered it three times in all
    batch = app.submit_event(notification, notification)  # twice within one batch, too
    with ThreadPoolExecutor(4) as pool:  # and that batch handled by four workers at once
        answers = list(pool.map(lambda _: app.stack.invoke("SubmitFunction", batch), range(4)))
    assert answers == [{"batchItemFailures": []}] * 4
    ending = app.wait_for_ending(key)
    assert ending.succeeded
    assert app.simulator.stats()["tasks_created"] == 1
    assert len(executions_named(app, ending.result["job_id"])) == 1


@pytest.mark.parametrize(
    "name",
    ["my clip+1.mp4", "café ünïcödé.mp4", "a%2Fb & c=(d).MOV"],
    ids=["space-plus", "unicode", "symbols"],
)
def test_keys_with_spaces_plus_and_unicode(app: LocalApp, clip, name):
    key = f"inbox/e2e/keys/{name}"
    app.put(key, clip, metadata={"prompt": "cool"})
    ending = app.wait_for_ending(key)
    assert ending.succeeded, ending.error
    stem = name.rsplit(".", 1)[0]
    assert ending.output_key == f"outbox/e2e/keys/{stem}.edited.mp4"
    assert ending.result["input"]["key"] == key


@pytest.mark.parametrize("order", ["manifest-first", "video-first"])
def test_manifest_and_video_in_either_order_start_exactly_one_job(app: LocalApp, clip, order):
    key = f"inbox/e2e/order/{order}.mp4"
    manifest = {"prompt": "mirror the scene", "keep_audio": True, "aspect_ratio": "1:1"}
    if order == "manifest-first":
        app.put_manifest(key, manifest)
        app.put(key, clip)
    else:
        app.put(key, clip)
        app.stack.drain()
        app.put_manifest(key, manifest)
    ending = app.wait_for_ending(key)
    assert ending.succeeded, ending.error
    assert ending.result["options_source"] == "manifest"
    assert ending.result["prompt"] == "mirror the scene"
    assert ending.result["options"]["aspect_ratio"] == "1:1"
    assert app.simulator.stats()["tasks_created"] == 1


def test_an_invalid_manifest_is_refused_before_any_money_is_spent(app: LocalApp, clip):
    key = "inbox/e2e/badmanifest.mp4"
    app.put_manifest(key, {"prompt": "", "keep_audio": "yes", "colour": "red"})
    app.put(key, clip)
    ending = app.wait_for_ending(key)
    assert ending.error["reason"] == "input_invalid"
    fields = sorted(p["field"] for p in ending.error["problems"])
    assert fields == ["colour", "keep_audio", "prompt"]
    assert app.simulator.stats()["tasks_created"] == 0
    assert app.stack.executions("JobStateMachine") == [] or not executions_named(
        app, ending.error["job_id"]
    )
