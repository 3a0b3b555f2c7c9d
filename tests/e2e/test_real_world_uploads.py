"""Whatever a person's tools put in the inbox gets the right ending: objects that are not jobs
are ignored without a report, encoded metadata is decoded, no two inputs share an output, and a
key S3 accepts but dropcut could not write results for is refused before anything is paid."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import pytest

from devstack.local_app import LocalApp
from devstack.media import (
    fragmented_mp4,
    make_sample_video,
    make_two_video_tracks,
    probe,
    with_display_matrix,
)
from dropcut.model.jobs import job_id_for

APPLE_DOUBLE = b"\x00\x05\x16\x07\x00\x02\x00\x00" + b"Mac OS X        " + bytes(4096 - 24)


@pytest.mark.parametrize(
    ("key", "body"),
    [
        ("inbox/season-2/", b""),  # the S3 console's "Create folder"
        ("inbox/card/._A001.mp4", APPLE_DOUBLE),
        ("inbox/card/.DS_Store", b"\x00\x00\x00\x01Bud1" + bytes(100)),
        ("inbox/pc/Thumbs.db", b"\xd0\xcf\x11\xe0" + bytes(500)),
        ("inbox/pc/desktop.ini", b"[.ShellClassInfo]\r\n"),
        ("inbox/card/A001.rsrc", APPLE_DOUBLE),  # AppleDouble by content, under any name
        ("inbox/pc/empty.txt", b""),
    ],
)
def test_objects_that_are_not_jobs_are_ignored_without_a_report(app: LocalApp, key, body):
    put = app.put(key, body)
    app.stack.drain()
    assert app.job(key) is None
    assert app.keys("errors/card") == [] and app.keys("errors/pc") == []
    assert app.keys("errors/season-2") == []
    assert app.simulator.stats()["tasks_created"] == 0
    stored = app.s3.get_object(Bucket=app.bucket, Key=key, VersionId=put["VersionId"])
    assert stored["Body"].read() == body


@pytest.mark.parametrize(
    ("encoded", "prompt"),
    [
        ("=?UTF-8?B?bm9pciBldCBibGFuYw==?=", "noir et blanc"),
        ("=?UTF-8?Q?s=C3=A9pia_chaud?=", "sépia chaud"),
    ],
)
def test_encoded_metadata_prompts_are_decoded_before_they_are_sent(
    app: LocalApp, clip, encoded, prompt
):
    key = f"inbox/meta/{hashlib.sha256(encoded.encode()).hexdigest()[:8]}.mp4"
    app.put(key, clip, metadata={"prompt": encoded})
    ending = app.wait_for_ending(key)
    assert ending.succeeded, ending.error
    assert ending.result["prompt"] == prompt
    (task,) = app.simulator.stats()["tasks"]
    assert task["prompt"] == prompt


def test_metadata_that_does_not_decode_is_refused_unpaid(app: LocalApp, clip):
    key = "inbox/meta/undecodable.mp4"
    app.put(key, clip, metadata={"prompt": "=?x-unknown-charset?Q?abc?="})
    report = app.wait_for_ending(key).error
    assert report["reason"] == "input_invalid"
    assert [p["field"] for p in report["problems"]] == ["metadata.prompt"]
    assert app.simulator.stats()["tasks_created"] == 0


def test_two_inputs_never_share_an_output(app: LocalApp, clip):
    first, second = "inbox/takes/take1.mp4", "inbox/takes/take1.mov"
    app.put(first, clip, metadata={"prompt": "sepia"})
    assert app.wait_for_ending(first).succeeded
    app.put(second, clip, metadata={"prompt": "invert"})
    report = app.wait_for_ending(second).error
    assert report["reason"] == "input_invalid"
    assert first in report["problems"][0]["message"], report["problems"]
    assert app.simulator.stats()["tasks_created"] == 1
    result = app.read_json("outbox/takes/take1.edited.result.json")
    assert result["input"]["key"] == first


def test_two_manifests_naming_one_output_name(app: LocalApp, clip):
    for name in ("a", "b"):
        app.put_manifest(
            f"inbox/names/{name}.mp4", {"prompt": "mirror", "output_name": "final.mp4"}
        )
    app.put("inbox/names/a.mp4", clip)
    assert app.wait_for_ending("inbox/names/a.mp4").succeeded
    app.put("inbox/names/b.mp4", clip)
    report = app.wait_for_ending("inbox/names/b.mp4").error
    assert report["problems"][0]["field"] == "output_name"
    assert app.simulator.stats()["tasks_created"] == 1


@pytest.mark.parametrize("length", [1010, 1020])
def test_a_key_whose_results_would_not_fit_is_refused_with_a_report_that_fits(
    app: LocalApp, clip, length
):
    key = "inbox/long/" + "x" * (length - len("inbox/long/") - 4) + ".mp4"
    assert len(key.encode()) == length
    app.put(key, clip, metadata={"prompt": "sepia"})
    ending = app.wait_for_ending(key)
    natural = "errors/" + key.removeprefix("inbox/") + ".error.json"
    if len(natural) <= 1024:  # 1,010 bytes: the report fits in its usual place
        assert ending.error_key == natural
    else:  # 1,020 bytes: even the report's key would not fit
        digest = hashlib.sha256(key.encode()).hexdigest()
        assert ending.error_key == f"errors/_keys-too-long/{digest}.error.json"
    assert ending.error["input_key"] == key
    assert any("1024-byte limit" in p["message"] for p in ending.error["problems"])
    assert app.simulator.stats()["tasks_created"] == 0


@pytest.mark.parametrize(
    "key",
    [
        "inbox/rw/..\\..\\escape.mp4",
        "inbox/rw/a\\..\\..\\escape.mp4",
        "inbox/rw/C:\\Users\\x.mp4",
        "inbox/rw/CON.mp4",
    ],
)
def test_a_key_that_would_escape_a_download_folder_is_refused_unpaid(app: LocalApp, clip, key):
    app.put(key, clip, metadata={"prompt": "sepia"})
    ending = app.wait_for_ending(key)
    digest = hashlib.sha256(key.encode()).hexdigest()
    assert ending.error_key == f"errors/_keys-refused/{digest}.error.json"
    assert ending.error["input_key"] == key
    [problem] = ending.error["problems"]
    assert problem["field"] == "key" and "Windows" in problem["message"], problem
    assert app.simulator.stats()["tasks_created"] == 0


def _wait_for_versions(app: LocalApp, key: str, versions: list[str]) -> dict[str, dict]:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        jobs = {job["version"]: job for job in app.jobs_of(key)}
        if all(jobs.get(v, {}).get("status") in ("succeeded", "failed") for v in versions):
            return jobs
        time.sleep(0.3)
    raise TimeoutError(f"{key}: not every version ended")


@pytest.mark.parametrize("older_finishes", ["last", "first"])
def test_the_plain_output_name_holds_the_newest_versions_edit(app: LocalApp, clip, older_finishes):
    key = f"inbox/versions/{older_finishes}.mp4"
    slow, fast = "sepia [sim:seconds=6]", "invert [sim:seconds=1]"
    if older_finishes == "last":
        v1 = app.put(key, clip, metadata={"prompt": slow})["VersionId"]
        app.wait_for_job(key, lambda job: job.get("task_id") is not None)
        v2 = app.put(key, clip, metadata={"prompt": fast})["VersionId"]
    else:
        v1 = app.put(key, clip, metadata={"prompt": fast})["VersionId"]
        _wait_for_versions(app, key, [v1])
        v2 = app.put(key, clip, metadata={"prompt": slow})["VersionId"]
    jobs = _wait_for_versions(app, key, [v1, v2])
    assert jobs[v1]["status"] == jobs[v2]["status"] == "succeeded"

    plain = f"outbox/versions/{older_finishes}.edited.mp4"
    newest = app.read_json(plain.replace(".mp4", ".result.json"))
    assert newest["input"]["version"] == v2 and newest["superseded"] is False
    tag = "".join(c for c in v1 if c.isalnum())[:12]
    aside = f"outbox/versions/{older_finishes}.edited.v{tag}.mp4"
    older = app.read_json(aside.replace(".mp4", ".result.json"))
    assert older["input"]["version"] == v1 and older["superseded"] is True
    assert older["output"]["key"] == aside and aside in app.keys("outbox/versions/")
    older_job = next(j for j in app.jobs() if j["key"] == key and j["version"] == v1)
    assert older_job["output_key"] == aside
    assert app.simulator.stats()["tasks_created"] == 2


def test_media_facts_are_the_displayed_ones(app: LocalApp, tmp_path):
    upright = with_display_matrix(
        Path(make_sample_video(tmp_path / "phone.mp4", seconds=3.0)).read_bytes(),
        0,
        1 << 16,
        -(1 << 16),
        0,
    )
    long_fragmented = Path(fragmented_mp4(tmp_path / "f.mp4", seconds=14.0, width=64, height=48))
    app.put("inbox/facts/phone.mp4", upright, metadata={"prompt": "sepia"})
    app.put("inbox/facts/long.mp4", long_fragmented.read_bytes(), metadata={"prompt": "sepia"})
    phone = app.wait_for_ending("inbox/facts/phone.mp4").result
    assert (phone["media"]["width"], phone["media"]["height"], phone["media"]["rotation"]) == (
        240,
        320,
        90,
    )
    assert phone["plan"]["kind"] == "normalize" and "rotated 90 degrees" in phone["plan"]["reasons"]
    assert (phone["plan"]["target"]["width"], phone["plan"]["target"]["height"]) == (720, 960)
    long = app.job("inbox/facts/long.mp4")
    assert long is not None
    assert float(long["media"]["duration_seconds"]) == pytest.approx(14.0, abs=0.1)
    assert long["plan"]["kind"] == "split" and len(long["plan"]["parts"]) == 2


def test_paid_parts_are_kept_when_the_input_is_deleted_before_stitch(app: LocalApp, tmp_path):
    """Issue 26, item 5: once the parts are paid, a deleted input loses none of them: Stitch
    joins them without the input's sound track and picture, and says so."""
    key = "inbox/rw/deleted-later.mp4"
    long_clip = make_sample_video(tmp_path / "long.mp4", seconds=12.0, width=720, height=720)
    app.put_manifest(key, {"prompt": "sepia [sim:seconds=15]", "keep_audio": True})
    version = app.put(key, Path(long_clip).read_bytes())["VersionId"]
    job_id = job_id_for(app.bucket, key, version)
    job = app.wait_for_job(key, lambda j: len(j.get("part_ids") or []) > 1, timeout=120)
    deadline = time.monotonic() + 60
    while not all((app.record(part) or {}).get("task_id") for part in job["part_ids"]):
        assert time.monotonic() < deadline, "the parts' tasks were not created"
        time.sleep(0.2)
    app.s3.delete_object(Bucket=app.bucket, Key=key, VersionId=version)
    app.simulator.hurry()

    ending = app.wait_for_ending_of(job_id, timeout=120)
    assert ending.succeeded, ending.error
    result = ending.result
    assert any(
        "the input was deleted" in notice and "sound track" in notice
        for notice in result["notices"]
    )
    assert result["contact_sheet"] is None
    assert app.s3.head_object(Bucket=app.bucket, Key=ending.output_key)["ContentLength"] > 0
    # One task a part (counted by this test's prompt: an earlier test's job may still run).
    tasks = [t for t in app.simulator.stats()["tasks"] if "[sim:seconds=15]" in t["prompt"]]
    assert len(tasks) == len(job["part_ids"]), tasks


def test_a_file_with_a_preview_track_sends_the_video_a_player_plays(app: LocalApp, tmp_path):
    """Issue 26, item 2: the provider was sent a file's 2 s preview track (and refused it, paid)."""
    key = "inbox/rw/two-tracks.mp4"
    app.put(
        key, make_two_video_tracks(tmp_path / "two.mp4").read_bytes(), metadata={"prompt": "sepia"}
    )
    ending = app.wait_for_ending(key, timeout=120)
    assert ending.succeeded, ending.error
    plan = ending.result["plan"]
    assert plan["kind"] == "normalize" and plan["video_track_id"] == 2
    assert any("2 video tracks" in reason for reason in plan["reasons"])
    output = tmp_path / "out.mp4"
    app.s3.download_file(app.bucket, ending.output_key, str(output))
    assert probe(output)["duration"] == pytest.approx(
        8.0, abs=0.1
    )  # the real video, not the preview


@pytest.mark.parametrize(
    ("name", "sample", "seconds"),
    [
        ("obs.mkv", {"container": "matroska", "audio_codec": "libopus"}, 5.0),  # H.264 + Opus
        (
            "browser.webm",
            {"container": "webm", "codec": "libvpx-vp9", "audio_codec": "libopus"},
            12.0,
        ),
    ],
)
def test_matroska_and_webm_come_back_edited_with_their_audio(
    app: LocalApp, tmp_path, name, sample, seconds
):
    """Issue 26, item 1: an OBS recording and a browser's WebM were refused ("upload an MP4 or
    MOV"); they are converted by Prepare (the WebM is split: Stitch lays its Opus audio under
    the joined parts)."""
    key = f"inbox/rw/containers/{name}"
    video = make_sample_video(tmp_path / name, seconds=seconds, width=640, height=360, **sample)
    app.put_manifest(key, {"prompt": "sepia", "keep_audio": True})
    app.put(key, video.read_bytes())
    ending = app.wait_for_ending(key, timeout=180)
    assert ending.succeeded, ending.error
    assert ending.output_key == f"outbox/rw/containers/{Path(name).stem}.edited.mp4"
    assert any("converted to MP4" in reason for reason in ending.result["plan"]["reasons"])
    output = tmp_path / "out.mp4"
    app.s3.download_file(app.bucket, ending.output_key, str(output))
    facts = probe(output)
    assert facts["has_audio"] and facts["video_codec"] == "h264"
    assert facts["duration"] == pytest.approx(seconds, abs=0.15)


def test_a_panorama_comes_back_letterboxed(app: LocalApp, tmp_path):
    """Issue 26, item 13: a 32:9 panorama was refused; it is letterboxed into the model's 3:1."""
    key = "inbox/rw/panorama.mp4"
    video = make_sample_video(tmp_path / "pano.mp4", seconds=4.0, width=2560, height=720)
    app.put(key, video.read_bytes(), metadata={"prompt": "sepia"})
    ending = app.wait_for_ending(key, timeout=120)
    assert ending.succeeded, ending.error
    assert any("letterboxed" in reason for reason in ending.result["plan"]["reasons"])
    output = tmp_path / "out.mp4"
    app.s3.download_file(app.bucket, ending.output_key, str(output))
    assert (probe(output)["width"], probe(output)["height"]) == (2160, 720)
