"""Validation that reads only the header boxes, and the arrival rules for videos and manifests."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from devstack.local_app import LocalApp
from devstack.media import make_sample_mov, make_sample_video, pad_mdat, top_level_boxes
from dropcut.model.jobs import job_id_for

EVENTS = Path(__file__).resolve().parents[2] / "events"
MIB = 1024 * 1024


def test_a_100_mb_video_with_its_index_at_the_end_is_checked_from_a_few_kilobytes(
    app: LocalApp, clip, tmp_path
):
    source = tmp_path / "clip.mp4"
    source.write_bytes(clip)
    assert [box.type for box in top_level_boxes(source)][-1] == "moov"  # index at the end
    big = pad_mdat(source, tmp_path / "big.mp4", 100 * MIB - 4096)
    key = "inbox/validation/big.mp4"
    app.put(key, big.read_bytes(), metadata={"prompt": "monochrome"})
    job = app.wait_for_job(key, lambda j: j.get("media") is not None, timeout=60)
    media = job["media"]
    print(
        f"\nvalidation read {media['bytes_read']:,} bytes in {media['reads']} ranged GETs "
        f"of a {media['size_bytes']:,}-byte video ({media['bytes_read'] / media['size_bytes']:.4%})"
    )
    assert media["size_bytes"] == 100 * MIB - 4096
    assert media["bytes_read"] < 256 * 1024 and media["reads"] <= 4
    assert media["container"] == "mp4" and media["video_codec"] == "avc1"
    assert abs(float(media["duration_seconds"]) - 4.0) < 0.2
    ending = app.wait_for_ending(key, timeout=120)
    assert ending.succeeded, ending.error


def test_a_short_clip_runs_and_its_result_says_how_it_is_billed(app: LocalApp, tmp_path):
    short = make_sample_video(tmp_path / "short.mp4", seconds=1.5)
    key = "inbox/validation/short.mp4"
    app.put(key, short.read_bytes(), metadata={"prompt": "sepia"})
    ending = app.wait_for_ending(key)
    assert ending.succeeded, ending.error
    assert ending.result["notices"] == [
        "the video is 1.5 s: it is padded to the model's 3 s and evolink bills it as 3 s"
    ]
    assert ending.result["media"]["duration_seconds"] < 2
    # Submit's plan, in the result manifest: padded to 3 s, billed 3 s
    assert ending.result["plan"]["kind"] == "pad"
    assert ending.result["plan"]["pad_to_seconds"] == 3
    assert ending.result["plan"]["billed_seconds"] == 3


def test_an_upper_case_mov_is_a_video_by_its_content(app: LocalApp, tmp_path):
    mov = make_sample_mov(tmp_path / "clip.mov", seconds=3.5)
    key = "inbox/validation/PHONE.MOV"
    app.put(key, mov.read_bytes(), metadata={"prompt": "mirror"})
    ending = app.wait_for_ending(key)
    assert ending.succeeded, ending.error
    assert ending.result["media"]["container"] == "mov"
    assert ending.output_key == "outbox/validation/PHONE.edited.mp4"


def test_simultaneous_events_for_video_and_manifest_start_one_job(app: LocalApp, clip):
    key = "inbox/validation/together.mp4"
    # Both objects exist before any event is handled: every event sees both.
    with app.stack.pool("SubmitFunction").held():
        manifest = app.put_manifest(key, {"prompt": "invert", "keep_audio": True})
        video = app.put(key, clip)
    events = [
        app.submit_event(app.inbox_event(key, video["VersionId"])),
        app.submit_event(app.inbox_event(key + ".json", manifest["VersionId"])),
    ]
    with ThreadPoolExecutor(6) as pool:  # and each event again, concurrently
        answers = list(pool.map(lambda e: app.stack.invoke("SubmitFunction", e), events * 3))
    assert answers == [{"batchItemFailures": []}] * 6
    ending = app.wait_for_ending(key)
    assert ending.succeeded, ending.error
    assert ending.result["options"]["keep_audio"] is True
    job_id = job_id_for(app.bucket, key, video["VersionId"])
    assert [e["name"] for e in app.stack.executions("JobStateMachine")].count(job_id) == 1
    assert app.simulator.stats()["tasks_created"] == 1


def test_a_video_whose_manifest_never_comes_gets_a_report(app: LocalApp, clip):
    key = "inbox/validation/waiting.mp4"
    app.put(key, clip)  # no manifest, no metadata prompt, no stack default
    app.wait_for_job(key, lambda j: j["status"] == "waiting_for_manifest")
    assert app.stack.fire_schedule("ReconcileFunction")["manifest_timeouts"] == []
    time.sleep(3.2)  # ManifestWaitSeconds=3 in this suite
    expired = app.stack.fire_schedule("ReconcileFunction")["manifest_timeouts"]
    ending = app.wait_for_ending(key)
    assert expired == [ending.error["job_id"]]
    assert ending.error["reason"] == "manifest_timeout"
    assert "waiting.mp4.json" in ending.error["advice"]
    assert ending.error["problems"][0]["limit"] == "within 3 s (ManifestWaitSeconds)"
    assert app.simulator.stats()["tasks_created"] == 0
    # Doing what the advice says works: the late manifest starts the job, and its report goes.
    app.put_manifest(key, {"prompt": "late but welcome"})
    done = app.wait_for_job(key, lambda j: j["status"] == "succeeded", timeout=60)
    assert done["job_id"] == ending.error["job_id"]
    assert app.keys("errors/validation/waiting") == []
    assert app.stack.fire_schedule("ReconcileFunction")["manifest_timeouts"] == []
    assert app.simulator.stats()["tasks_created"] == 1


def test_a_reupload_is_a_new_job_and_the_same_version_is_not(app: LocalApp, clip):
    key = "inbox/validation/again.mp4"
    first = app.put(key, clip, metadata={"prompt": "warm"})
    app.wait_for_ending(key)
    seen_again = app.submit_event(app.inbox_event(key, first["VersionId"]))
    app.stack.invoke("SubmitFunction", seen_again)
    second = app.put(key, clip, metadata={"prompt": "cool"})
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        jobs = app.jobs_of(key)
        if len(jobs) == 2 and all(j["status"] == "succeeded" for j in jobs):
            break
        time.sleep(0.2)
    versions = sorted(j["version"] for j in app.jobs() if j["key"] == key)
    assert versions == sorted([first["VersionId"], second["VersionId"]])
    assert app.simulator.stats()["tasks_created"] == 2


def test_a_folder_preset_gives_defaults_that_metadata_and_manifests_override(app: LocalApp, clip):
    app.put(
        "inbox/presets/team/_preset.json",
        json.dumps({"prompt": "sepia", "keep_audio": True}).encode(),
    )
    only_preset = "inbox/presets/team/sub/a.mp4"
    with_metadata = "inbox/presets/team/b.mp4"
    with_manifest = "inbox/presets/team/c.mp4"
    app.put_manifest(with_manifest, {"prompt": "mirror", "keep_audio": False})
    app.put(only_preset, clip)
    app.put(with_metadata, clip, metadata={"prompt": "invert"})
    app.put(with_manifest, clip)
    results = {
        key: app.wait_for_ending(key).result for key in (only_preset, with_metadata, with_manifest)
    }
    seen = {
        key: (r["prompt"], r["options"]["keep_audio"], r["options_source"])
        for key, r in results.items()
    }
    assert seen == {
        only_preset: ("sepia", True, "preset"),
        with_metadata: ("invert", True, "metadata+preset"),
        with_manifest: ("mirror", False, "manifest+preset"),
    }


def test_a_broken_preset_is_reported_as_the_presets_problem(app: LocalApp, clip):
    app.put(
        "inbox/presets/broken/_preset.json",
        json.dumps({"prompt": "sepia", "colour": "red"}).encode(),
    )
    key = "inbox/presets/broken/clip.mp4"
    app.put(key, clip)
    report = app.wait_for_ending(key).error
    assert [p["field"] for p in report["problems"]] == ["preset.colour"]
    assert "inbox/presets/broken/_preset.json" in report["problems"][0]["message"]
    assert app.simulator.stats()["tasks_created"] == 0


def test_a_dead_lettered_upload_is_sent_back_then_ended_with_a_report(app: LocalApp, clip):
    """What Submit failed on until the inbox queue dead-lettered it: the reconciler (its real
    role and environment) sends it back to the inbox, later; the last time, it ends the upload
    with a report. Nothing stays in the dead-letter queue."""
    sqs = app.stack.client("sqs")
    dead, inbox = (
        app.stack.physical_ids["InboxDeadLetterQueue"],
        app.stack.physical_ids["InboxQueue"],
    )
    waiting = "ApproximateNumberOfMessagesDelayed"

    def delayed() -> int:
        got = sqs.get_queue_attributes(QueueUrl=inbox, AttributeNames=[waiting])
        return int(got["Attributes"][waiting])

    kept = app.put("inbox/validation/dead-lettered.mp4", clip, metadata={"prompt": "warm"})
    app.wait_for_ending("inbox/validation/dead-lettered.mp4")
    before = delayed()
    sqs.send_message(
        QueueUrl=dead,
        MessageBody=json.dumps(
            app.inbox_event("inbox/validation/dead-lettered.mp4", kept["VersionId"])
        ),
    )
    report = app.stack.fire_schedule("ReconcileFunction")
    assert report["inbox_events_sent_back"] == 1
    assert delayed() == before + 1, "back in the inbox queue, delivered later"

    # Its last round: an upload with no record ends with a report (nothing paid).
    never = "inbox/validation/never accepted.mp4"
    sqs.send_message(
        QueueUrl=dead,
        MessageBody=json.dumps(app.inbox_event(never, "v-never")),
        MessageAttributes={"dropcut-redrives": {"DataType": "Number", "StringValue": "3"}},
    )
    report = app.stack.fire_schedule("ReconcileFunction")
    job_id = job_id_for(app.bucket, never, "v-never")
    assert report["not_accepted"] == [job_id]
    record = app.record(job_id)  # born failed, in the pass (there is no object to find it by)
    assert record is not None and record["status"] == "failed"
    report = app.read_json(record["error_report_key"])
    assert report["reason"] == "not_accepted"
    assert report["input_key"] == never
    attributes = sqs.get_queue_attributes(QueueUrl=dead, AttributeNames=["All"])["Attributes"]
    assert attributes["ApproximateNumberOfMessages"] == "0"
