"""The simulator behaves like the Kling O1 edit model: 24 fps output for the input's duration,
the display rotation applied, strict mode's input limits, and the fail_task fault rule."""

from __future__ import annotations

import time
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import httpx
import numpy as np
import pytest

from devstack.media import make_sample_video, probe, with_display_matrix
from devstack.simulator import Simulator
from devstack.simulator.editor import EditSpec, edit_video, video_facts
from devstack.simulator.limits import MAX_INPUT_BYTES, VideoFacts, limit_problems

AUTH = {"Authorization": "Bearer sim-key"}
BITS = 8  # an indexed clip's picture shows its frame number in 8 black/white blocks
OUT_FPS = 24


def _indexed_clip(path: Path, fps: int, seconds: float, *, audio: bool = False) -> Path:
    """320x240 H.264: picture i shows i in binary, one vertical band per bit (white = 1)."""
    n = round(seconds * fps)
    width, height = 320, 240
    band = width // BITS
    with av.open(str(path), "w", format="mp4") as out:
        vs = out.add_stream("libx264", rate=fps)
        vs.width, vs.height, vs.pix_fmt = width, height, "yuv420p"
        tone = out.add_stream("aac", rate=48000, layout="mono") if audio else None
        for i in range(n):
            img = np.zeros((height, width, 3), np.uint8)
            for b in range(BITS):
                if i >> b & 1:
                    img[:, b * band : (b + 1) * band] = 255
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            frame.pts, frame.time_base = i, Fraction(1, fps)
            for packet in vs.encode(frame):
                out.mux(packet)
        for packet in vs.encode():
            out.mux(packet)
        if tone is not None:
            samples = 48000 * n // fps
            for start in range(0, samples, 1024):
                count = min(1024, samples - start)
                pcm = np.full((1, count), 0.1, np.float32)
                af = av.AudioFrame.from_ndarray(pcm, format="fltp", layout="mono")
                af.sample_rate, af.pts, af.time_base = 48000, start, Fraction(1, 48000)
                for packet in tone.encode(af):
                    out.mux(packet)
            for packet in tone.encode():
                out.mux(packet)
    return path


def _indices(path: Path) -> tuple[list[int], list[float]]:
    """The frame number each output picture shows, and the pictures' times (s)."""
    shown, times = [], []
    with av.open(str(path)) as c:
        for frame in c.decode(video=0):
            rgb = frame.to_ndarray(format="rgb24")
            band = rgb.shape[1] // BITS
            bits = [rgb[:, b * band + band // 2].mean() > 128 for b in range(BITS)]
            shown.append(sum(1 << b for b, on in enumerate(bits) if on))
            times.append(float(frame.time or 0.0))
    return shown, times


def _video_seconds(path: Path) -> float:
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        assert v.duration is not None and v.time_base is not None
        return float(v.duration * v.time_base)


@pytest.mark.parametrize(("fps", "seconds"), [(15, 4.0), (24, 3.0), (30, 3.3), (60, 2.5)])
def test_the_output_is_24_fps_for_the_inputs_duration_picked_by_timestamps(
    tmp_path: Path, fps: int, seconds: float
) -> None:
    src = _indexed_clip(tmp_path / "in.mp4", fps, seconds, audio=True)
    out = tmp_path / "out.mp4"
    result = edit_video(src.read_bytes(), out, EditSpec("monochrome", keep_audio=True))

    info = probe(out)
    assert info["fps"] == OUT_FPS and info["has_audio"] and result["audio"]
    n = round(seconds * OUT_FPS)
    assert result["frames"] == n
    assert abs(_video_seconds(out) - seconds) <= 1 / OUT_FPS
    assert abs(info["duration"] - probe(src)["duration"]) <= 1 / OUT_FPS
    shown, times = _indices(out)
    assert times == pytest.approx([k / OUT_FPS for k in range(n)])
    last_input = round(seconds * fps) - 1
    # slot k shows the last input picture at or before (k + 1/2) output frames: nearest slot
    expected = [min(last_input, int((k + 0.5) * fps / OUT_FPS + 1e-9)) for k in range(n)]
    assert shown == expected


def test_audio_is_left_out_unless_asked(tmp_path: Path) -> None:
    src = _indexed_clip(tmp_path / "in.mp4", 30, 3.0, audio=True)
    edit_video(src.read_bytes(), tmp_path / "out.mp4", EditSpec("monochrome"))
    assert probe(tmp_path / "out.mp4")["has_audio"] is False


def test_a_rotated_input_is_edited_as_it_is_shown(tmp_path: Path) -> None:
    stored = make_sample_video(tmp_path / "landscape.mp4", seconds=3.0, audio=False)
    # (0, 1, -1, 0): the display matrix of a phone held upright, shown turned 90 degrees clockwise
    upright = with_display_matrix(stored.read_bytes(), 0, 1 << 16, -(1 << 16), 0)
    assert (video_facts(upright).width, video_facts(upright).height) == (240, 320)
    out = tmp_path / "out.mp4"
    edit_video(upright, out, EditSpec("monochrome"))
    assert (probe(out)["width"], probe(out)["height"]) == (240, 320)
    with av.open(str(stored)) as c:
        first = next(c.decode(video=0)).to_ndarray(format="gray")
    with av.open(str(out)) as c:
        shown = next(c.decode(video=0)).to_ndarray(format="gray")
    turned = np.rot90(first, k=-1)  # clockwise
    assert np.abs(shown.astype(int) - turned.astype(int)).mean() < 6
    assert np.abs(shown.astype(int) - np.rot90(first, k=1).astype(int)).mean() > 20


# ---- strict mode ------------------------------------------------------------------------------


def _create(sim: Simulator, api: str, url: str, prompt: str = "sepia") -> str:
    if api == "aimlapi":
        body: dict[str, Any] = {
            "model": "klingai/video-o1-video-to-video-edit",
            "prompt": prompt,
            "video_url": url,
        }
        r = httpx.post(f"{sim.url}/v2/video/generations", json=body, headers=AUTH)
    else:
        body = {"model": "kling-o1-video-edit", "prompt": prompt, "video_urls": [url]}
        r = httpx.post(f"{sim.url}/v1/videos/generations", json=body, headers=AUTH)
    assert r.status_code == 200, r.text
    return str(r.json()["id"])


def _ending(sim: Simulator, api: str, task_id: str, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if api == "aimlapi":
            r = httpx.get(
                f"{sim.url}/v2/video/generations", params={"generation_id": task_id}, headers=AUTH
            )
        else:
            r = httpx.get(f"{sim.url}/v1/tasks/{task_id}", headers=AUTH)
        body: dict[str, Any] = r.json()
        if body["status"] in ("completed", "failed", "error"):
            return body
        time.sleep(0.05)
    raise AssertionError(f"{task_id} did not end")


def _error(api: str, body: dict[str, Any]) -> tuple[str, str]:
    err = body["error"]
    return (err["name"] if api == "aimlapi" else err["code"]), err["message"]


def test_strict_is_off_by_default_and_set_through_the_config_api(simulator: Simulator) -> None:
    assert httpx.get(f"{simulator.url}/_sim/config").json()["strict"] is False
    r = httpx.post(f"{simulator.url}/_sim/config", json={"strict": True})
    assert r.status_code == 200 and r.json()["strict"] is True
    assert simulator.config.strict is True
    bad = httpx.post(f"{simulator.url}/_sim/config", json={"strict": "yes"})
    assert bad.status_code == 400 and "strict" in bad.json()["error"]
    httpx.post(f"{simulator.url}/_sim/reset", json={"config": True})
    assert simulator.config.strict is False


@pytest.mark.parametrize("api", ["aimlapi", "evolink"])
def test_strict_mode_fails_an_input_outside_the_models_limits(
    simulator: Simulator, sample_video: Any, api: str
) -> None:
    simulator.configure(strict=True)
    body = _ending(simulator, api, _create(simulator, api, sample_video.url))  # 320x240, 4 s
    assert body["status"] == ("error" if api == "aimlapi" else "failed")
    code, message = _error(api, body)
    assert code == ("InvalidRequestError" if api == "aimlapi" else "invalid_request_error")
    param = "video_url" if api == "aimlapi" else "video_urls"
    assert message.startswith(f"Invalid request parameter: {param}: ")
    assert "width 320 px is outside 720..2160 px" in message
    assert "height 240 px" in message and "duration" not in message
    assert simulator.stats()["tasks"][0]["internal_status"] == "failed"


def test_strict_mode_off_edits_the_same_input(simulator: Simulator, sample_video: Any) -> None:
    body = _ending(simulator, "evolink", _create(simulator, "evolink", sample_video.url))
    assert body["status"] == "completed"


@pytest.mark.parametrize(
    ("name", "clip", "complaint"),
    [
        ("ok", {"seconds": 3.0, "fps": 24}, None),
        ("short", {"seconds": 2.0, "fps": 24}, "duration 2.00 s is outside 3..10 s"),
        ("long", {"seconds": 10.5, "fps": 24}, "duration 10.50 s is outside 3..10 s"),
        ("slow", {"seconds": 3.0, "fps": 15}, "frame rate 15 fps is outside 24..60 fps"),
    ],
)
def test_strict_mode_checks_duration_and_frame_rate(
    simulator: Simulator,
    file_server: Any,
    name: str,
    clip: dict[str, Any],
    complaint: str | None,
) -> None:
    simulator.configure(strict=True)
    path = make_sample_video(
        file_server.root / f"strict-{name}.mp4", width=720, height=720, audio=False, **clip
    )
    body = _ending(simulator, "evolink", _create(simulator, "evolink", file_server.url(path.name)))
    if complaint is None:
        assert body["status"] == "completed", body
    else:
        assert body["status"] == "failed"
        code, message = _error("evolink", body)
        assert code == "invalid_request_error" and complaint in message
        assert "width" not in message and "height" not in message


def test_the_size_cap_is_the_providers() -> None:
    facts = VideoFacts(seconds=5.0, width=1280, height=720, fps=30.0, size_bytes=150 * 1024**2)
    assert limit_problems(facts, "evolink") == ["size 157286400 bytes is over 100 MB"]
    assert limit_problems(facts, "aimlapi") == []
    over = VideoFacts(5.0, 1280, 720, 30.0, MAX_INPUT_BYTES["aimlapi"] + 1)
    assert limit_problems(over, "aimlapi") == [f"size {over.size_bytes} bytes is over 200 MB"]
    assert limit_problems(VideoFacts(3.0, 720, 2160, 60.0, 1), "evolink") == []
    assert limit_problems(VideoFacts(5.0, 2170, 719, None, 1), "evolink") == [
        "width 2170 px is outside 720..2160 px",
        "height 719 px is outside 720..2160 px",
    ]


# ---- the fail_task fault rule -----------------------------------------------------------------


def _parts(file_server: Any, sample_video: Any, count: int) -> list[str]:
    """Presigned-looking URLs of ``count`` parts (copies of the sample clip)."""
    data = sample_video.path.read_bytes()
    (file_server.root / "parts").mkdir(exist_ok=True)
    return [
        file_server.put(f"parts/part-{i:04d}.mp4", data)
        + f"?X-Amz-Credential=AKIDEXAMPLE&X-Amz-Signature=secret{i}"
        for i in range(count)
    ]


def test_fail_task_fails_the_first_task_of_a_part_only(
    simulator: Simulator, file_server: Any, sample_video: Any
) -> None:
    r = httpx.post(
        f"{simulator.url}/_sim/config",
        json={"faults": [{"fail_task_when_input_contains": "part-0001", "times": 1}]},
    )
    assert r.status_code == 200, r.text
    assert r.json()["faults"][0]["kind"] == "fail_task"
    urls = _parts(file_server, sample_video, 3)
    first = {i: _create(simulator, "evolink", url) for i, url in enumerate(urls)}
    endings = {i: _ending(simulator, "evolink", tid) for i, tid in first.items()}
    assert [endings[i]["status"] for i in range(3)] == ["completed", "failed", "completed"]
    code, message = _error("evolink", endings[1])
    assert code == "generation_failed" and "part-0001" in message

    retry = _ending(simulator, "evolink", _create(simulator, "evolink", urls[1]))
    assert retry["status"] == "completed"
    stats = simulator.stats()
    assert stats["tasks_created_by_input"] == {
        "/parts/part-0000.mp4": 1,
        "/parts/part-0001.mp4": 2,
        "/parts/part-0002.mp4": 1,
    }
    assert [t["input_path"] for t in stats["tasks"]] == [
        "/parts/part-0000.mp4",
        "/parts/part-0001.mp4",
        "/parts/part-0002.mp4",
        "/parts/part-0001.mp4",
    ]
    assert "secret" not in repr(stats) and stats["faults_pending"][0]["times"] == 0


def test_fail_task_for_ever_and_for_one_api(
    simulator: Simulator, file_server: Any, sample_video: Any
) -> None:
    simulator.add_fault(kind="fail_task", input_contains="PART-0000", times=-1, api="aimlapi")
    url = _parts(file_server, sample_video, 1)[0]
    for _ in range(2):
        body = _ending(simulator, "aimlapi", _create(simulator, "aimlapi", url))
        assert body["status"] == "error" and body["error"]["name"] == "GenerationError"
    assert _ending(simulator, "evolink", _create(simulator, "evolink", url))["status"] == (
        "completed"
    )
    assert simulator.stats()["tasks_created_by_input"] == {"/parts/part-0000.mp4": 3}


@pytest.mark.parametrize(
    "rule",
    [
        {"kind": "fail_task", "input_contains": ""},
        {"kind": "fail_task", "op": "query"},
        {"fail_task_when_input_contains": "x", "kind": "throttle"},
    ],
)
def test_bad_fail_task_rules_are_refused(simulator: Simulator, rule: dict[str, Any]) -> None:
    r = httpx.post(f"{simulator.url}/_sim/config", json={"faults": [rule]})
    assert r.status_code == 400
    with pytest.raises(ValueError):
        simulator.add_fault(**rule)
