"""Any reasonable video comes back whole: on the local stack (strict simulator, as the model
fails out-of-spec inputs), a long clip is split into parts edited in parallel and stitched
back, out-of-spec clips are normalized, and a plan over MaxPartsPerJob is refused unpaid."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import av
import pytest

from devstack.footage import phone_clip, small_clip
from devstack.local_app import LocalApp, local_app
from devstack.media_samples import frames, make_colour_clip, nearest_index, shots
from devstack.simulator import SimConfig
from tests.e2e.conftest import code_root

pytestmark = [pytest.mark.own_app, pytest.mark.long_running(120)]

#: Shot changes of the 31 s clip: one lies within a second of each of the plan's boundaries
#: (7.75, 15.5, 23.25 s), so every seam moves to a cut and the frames either side of it are
#: of different shots.
SHOT_CHANGES = [2.0, 5.0, 8.0, 11.5, 15.0, 19.0, 23.0, 27.0]
OUTPUT_FRAME = 1 / 24


@pytest.fixture(scope="module")
def app() -> Iterator[LocalApp]:
    with local_app(
        "evolink",
        {"JobDeadlineSeconds": "60", "MaxPartsPerJob": "4"},
        SimConfig(task_seconds=1.0, queue_seconds=0.2, strict=True),
        code_root=code_root(),
    ) as running:
        yield running


@pytest.fixture(autouse=True)
def _fresh(app: LocalApp) -> None:
    app.simulator.reset(config=True)


@pytest.fixture(scope="module")
def long_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_colour_clip(
        tmp_path_factory.mktemp("long") / "long.mp4",
        seconds=31.0,
        fps=24,
        colour_index=shots(SHOT_CHANGES),
    )


def _duration(path: Path) -> float:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        return float(stream.duration * stream.time_base) if stream.duration else 0.0


def _download(app: LocalApp, key: str, path: Path) -> Path:
    app.s3.download_file(app.bucket, key, str(path))
    return path


def test_a_31_s_clip_is_edited_in_4_parts_and_comes_back_whole(
    app: LocalApp, long_clip: Path, tmp_path: Path
):
    key = "inbox/long/ride.mp4"
    app.put_manifest(key, {"prompt": "mirror", "keep_audio": True})
    app.put(key, long_clip.read_bytes())
    ending = app.wait_for_ending(key, timeout=600)
    assert ending.succeeded, ending.error
    result = ending.result
    assert result["plan"]["kind"] == "split" and len(result["plan"]["parts"]) == 4
    stats = app.simulator.stats()
    assert stats["tasks_created"] == 4
    assert all("/prepared/p0" in path for path in stats["tasks_created_by_input"])
    output = _download(app, ending.output_key, tmp_path / "out.mp4")
    assert abs(_duration(output) - 31.0) <= OUTPUT_FRAME
    with av.open(str(output)) as container:
        (audio,) = container.streams.audio  # one continuous track, the input's
        assert abs(float(audio.duration * audio.time_base) - 31.0) <= OUTPUT_FRAME
    # Each seam moved to the shot change next to it; the frames on either side of it are the
    # input's frames at the same time (mirrored: the colour is kept, the marker moves).
    seams = [part["start_seconds"] for part in result["parts"][1:]]
    assert seams == [8.0, 15.0, 23.0]
    shown = {round(t * 24): rgb for t, rgb, _ in frames(output)}
    for seam in seams:
        for t in (seam - OUTPUT_FRAME, seam):
            expected = shots(SHOT_CHANGES)(t)
            got = nearest_index(shown[round(t * 24)], range(len(SHOT_CHANGES) + 1))
            assert got == expected, (seam, t)
    assert app.keys(ending.output_key.removesuffix(".mp4") + ".sheet.png")


def test_a_part_that_fails_once_is_retried_and_the_others_are_not_paid_again(
    app: LocalApp, long_clip: Path
):
    app.simulator.add_fault(fail_task_when_input_contains="prepared/p02", times=1)
    key = "inbox/long/retried.mp4"
    app.put(key, long_clip.read_bytes(), metadata={"prompt": "mirror"})
    ending = app.wait_for_ending(key, timeout=600)
    assert ending.succeeded, ending.error
    by_input = app.simulator.stats()["tasks_created_by_input"]
    paid = sorted(by_input.values())
    assert paid == [1, 1, 1, 2], by_input
    (again,) = [path for path, count in by_input.items() if count == 2]
    assert again.endswith("/prepared/p02.mp4")
    job = app.job(key)
    assert job is not None
    (part,) = [p for p in app.parts(job["job_id"]) if p["part_index"] == 2]
    assert len(part["failed_tasks"]) == 1


def test_a_part_that_fails_for_good_ends_the_job_with_every_part_in_its_report(
    app: LocalApp, long_clip: Path
):
    app.simulator.add_fault(fail_task_when_input_contains="prepared/p01", times=-1)
    key = "inbox/long/failed.mp4"
    app.put(key, long_clip.read_bytes(), metadata={"prompt": "mirror"})
    ending = app.wait_for_ending(key, timeout=600)
    assert not ending.succeeded
    report = ending.error
    assert report["reason"] == "provider_task_failed"
    assert [part["index"] for part in report["parts"]] == [0, 1, 2, 3]
    states = {part["index"]: part["state"] for part in report["parts"]}
    assert states[1] == "failed"
    kept = [part["edited_key"] for part in report["parts"] if part["state"] == "edited"]
    for edited in kept:  # the parts paid for are kept for the user
        assert app.keys(edited) == [edited]
    assert app.keys("outbox/long/failed") == []


@pytest.mark.parametrize(
    ("name", "make", "reason"),
    [
        ("phone.mov", phone_clip, "rotated"),
        ("small.mp4", small_clip, "fps"),
    ],
)
def test_out_of_spec_clips_are_normalized_and_edited(
    app: LocalApp, tmp_path: Path, name, make, reason
):
    key = f"inbox/normalize/{name}"
    app.put(key, Path(make()).read_bytes(), metadata={"prompt": "sepia"})
    ending = app.wait_for_ending(key, timeout=600)
    assert ending.succeeded, ending.error
    plan = ending.result["plan"]
    assert plan["kind"] == "normalize"
    assert any(reason in text for text in plan["reasons"]), plan["reasons"]
    (task,) = app.simulator.stats()["tasks"]
    assert "/prepared/p00" in task["input_path"] and task["status"] != "failed"
    output = _download(app, ending.output_key, tmp_path / "out.mp4")
    with av.open(str(output)) as container:
        video = container.streams.video[0]
        if name == "phone.mov":  # shown as the phone showed it: portrait
            assert video.height > video.width


def test_a_plan_over_max_parts_is_refused_with_its_estimate_and_costs_nothing(
    app: LocalApp, tmp_path: Path
):
    clip = make_colour_clip(tmp_path / "too-long.mp4", seconds=41.0, fps=24)
    key = "inbox/long/too-long.mp4"
    app.put(key, clip.read_bytes(), metadata={"prompt": "mirror"})
    ending = app.wait_for_ending(key, timeout=120)
    assert not ending.succeeded
    report = ending.error
    assert report["reason"] == "input_invalid"
    assert report["plan"]["kind"] == "refuse"
    assert report["plan"]["billed_seconds"]
    assert any("MaxPartsPerJob" in p["limit"] + p["message"] for p in report["problems"])
    assert app.simulator.stats()["tasks_created"] == 0


def test_an_input_within_every_limit_is_sent_untouched(app: LocalApp, tmp_path: Path):
    clip = make_colour_clip(tmp_path / "ok.mp4", seconds=4.0, width=1280, height=720, fps=24)
    key = "inbox/asis/ok.mp4"
    app.put(key, clip.read_bytes(), metadata={"prompt": "mirror"})
    ending = app.wait_for_ending(key, timeout=120)
    assert ending.succeeded, ending.error
    assert ending.result["plan"]["kind"] == "as_is"
    (task,) = app.simulator.stats()["tasks"]
    assert task["input_path"].endswith("/inbox/asis/ok.mp4")
    job = app.job(key)
    assert job is not None
    assert app.keys(f"work/{job['job_id']}/prepared") == []
