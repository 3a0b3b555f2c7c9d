"""The simulator really edits: outputs decode and differ from the input the way the prompt asks."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from devstack.media import frame_at, make_sample_image, probe
from devstack.simulator import Simulator
from devstack.simulator.editor import EditSpec, edit_video, thumbnail_box

AUTH = {"Authorization": "Bearer sim-key"}
T = 1.0  # seconds into the clip where frames are compared


def _create(sim: Simulator, api: str, video_url: str, prompt: str, **extra: Any) -> str:
    if api == "aimlapi":
        body = {
            "model": "klingai/video-o1-video-to-video-edit",
            "prompt": prompt,
            "video_url": video_url,
            **extra,
        }
        r = httpx.post(f"{sim.url}/v2/video/generations", json=body, headers=AUTH)
    else:
        body = {
            "model": "kling-o1-video-edit",
            "prompt": prompt,
            "video_urls": [video_url],
            **extra,
        }
        r = httpx.post(f"{sim.url}/v1/videos/generations", json=body, headers=AUTH)
    assert r.status_code == 200, r.text
    return str(r.json()["id"])


def _result(sim: Simulator, api: str, task_id: str, dest: Path, timeout: float = 20) -> Path:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if api == "aimlapi":
            r = httpx.get(
                f"{sim.url}/v2/video/generations", params={"generation_id": task_id}, headers=AUTH
            )
            data = r.json()
            if data["status"] == "completed":
                url = data["video"]["url"]
                break
        else:
            data = httpx.get(f"{sim.url}/v1/tasks/{task_id}", headers=AUTH).json()
            if data["status"] == "completed":
                url = data["results"][0]
                break
        assert data["status"] not in ("failed", "error"), data
        time.sleep(0.05)
    else:
        raise AssertionError(f"{task_id} did not complete")
    dest.write_bytes(httpx.get(url).content)
    return dest


def _edit_many(
    sim: Simulator, tmp_path: Path, jobs: dict[str, tuple[str, str, str, dict[str, Any]]]
) -> dict[str, Path]:
    ids = {name: (api, _create(sim, api, url, p, **kw)) for name, (api, url, p, kw) in jobs.items()}
    return {
        name: _result(sim, api, tid, tmp_path / f"{name}.mp4") for name, (api, tid) in ids.items()
    }


def _colourfulness(rgb: np.ndarray) -> float:
    c = rgb.astype(np.int16)
    return float(np.abs(c[..., 0] - c[..., 1]).mean() + np.abs(c[..., 1] - c[..., 2]).mean())


def _mae(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


def test_looks(simulator: Simulator, sample_video: Any, tmp_path: Path) -> None:
    url = sample_video.url
    outs = _edit_many(
        simulator,
        tmp_path,
        {
            "mono": ("aimlapi", url, "Make it MONOCHROME like an old film", {}),
            "bw": ("evolink", url, "black and white please", {}),
            "mirror": ("evolink", url, "Mirror the scene", {}),
            "invert": ("aimlapi", url, "invert the colours", {}),
            "sepia": ("evolink", url, "sepia", {}),
            "default": ("aimlapi", url, "Add a small fairy as a rider", {}),
        },
    )
    src = frame_at(sample_video.path, T)
    assert _colourfulness(src) > 40

    for name in ("mono", "bw"):
        out = frame_at(outs[name], T)
        assert out.shape == src.shape
        assert _colourfulness(out) < 4, name
        info = probe(outs[name])
        assert info["video_codec"] == "h264" and abs(info["duration"] - 4.0) < 0.2

    mirror = frame_at(outs["mirror"], T)
    flipped = src[:, ::-1]
    assert _mae(mirror, flipped) < 6
    assert _mae(mirror, src) > 40

    assert _mae(frame_at(outs["invert"], T), 255 - src) < 8

    sepia = frame_at(outs["sepia"], T).astype(np.int16)
    assert (sepia[..., 0] >= sepia[..., 2] - 4).mean() > 0.95  # red dominates blue everywhere

    assert _mae(frame_at(outs["default"], T), src) > 15


def test_aspect_ratio_crops(simulator: Simulator, sample_video: Any, tmp_path: Path) -> None:
    url = sample_video.url
    outs = _edit_many(
        simulator,
        tmp_path,
        {
            "square": ("evolink", url, "monochrome", {"aspect_ratio": "1:1"}),
            "portrait": ("evolink", url, "x", {"aspect_ratio": "9:16"}),
            "landscape": ("evolink", url, "x", {"aspect_ratio": "16:9"}),
        },
    )
    sq = probe(outs["square"])
    assert sq["width"] == sq["height"] == 240
    p = probe(outs["portrait"])
    assert (p["width"], p["height"]) == (134, 240)
    ls = probe(outs["landscape"])
    assert (ls["width"], ls["height"]) == (320, 180)
    # centre crop: the square output is the middle of the (gray) input
    src = frame_at(sample_video.path, T)[:, 40:280].astype(np.float32)
    gray = src @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    assert _mae(frame_at(outs["square"], T)[..., 1], gray.astype(np.uint8)) < 6


@pytest.mark.parametrize("api", ["evolink", "aimlapi"])
def test_reference_image_in_corner(
    simulator: Simulator, sample_video: Any, file_server: Any, tmp_path: Path, api: str
) -> None:
    colour = (20, 200, 120)
    make_sample_image(file_server.root / "ref.png", size=(64, 64), color=colour)
    ref = file_server.url("ref.png")
    extra = {"image_urls": [ref]} if api == "evolink" else {"image_list": [ref]}
    outs = _edit_many(simulator, tmp_path, {"ref": (api, sample_video.url, "mirror", extra)})
    out = frame_at(outs["ref"], T)
    x, y, w, h = thumbnail_box(out.shape[1], out.shape[0])
    region = out[y + 2 : y + h - 2, x + 2 : x + w - 2].reshape(-1, 3).mean(axis=0)
    assert np.abs(region - np.array(colour)).max() < 12, region
    src = frame_at(sample_video.path, T)
    assert np.abs(src[y : y + h, x : x + w].reshape(-1, 3).mean(axis=0) - colour).max() > 40


def test_reference_image_with_wrong_content_fails_the_task(
    simulator: Simulator, sample_video: Any, file_server: Any
) -> None:
    bogus = file_server.put("bogus.png", b"not an image")
    task_id = _create(simulator, "evolink", sample_video.url, "x", image_urls=[bogus])
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        data = httpx.get(f"{simulator.url}/v1/tasks/{task_id}", headers=AUTH).json()
        if data["status"] == "failed":
            break
        time.sleep(0.05)
    assert data["error"]["code"] == "unsupported_image_format"


def test_audio_kept_only_when_asked(
    simulator: Simulator, sample_video: Any, tmp_path: Path
) -> None:
    url = sample_video.url
    outs = _edit_many(
        simulator,
        tmp_path,
        {
            "evo_keep": ("evolink", url, "warm", {"keep_original_sound": True}),
            "evo_drop": ("evolink", url, "warm", {"keep_original_sound": False}),
            "evo_default": ("evolink", url, "cool", {}),
            "aiml_keep": ("aimlapi", url, "cool", {"keep_audio": True}),
            "aiml_default": ("aimlapi", url, "cool", {}),
        },
    )
    assert probe(sample_video.path)["has_audio"]
    for name, expected in [
        ("evo_keep", True),
        ("evo_drop", False),
        ("evo_default", False),
        ("aiml_keep", True),
        ("aiml_default", False),
    ]:
        info = probe(outs[name])
        assert info["has_audio"] is expected, name
        if expected:
            assert info["audio_codec"] == "aac"
    src = frame_at(sample_video.path, T).astype(np.int16)
    warm = frame_at(outs["evo_drop"], T).astype(np.int16)
    cool = frame_at(outs["evo_default"], T).astype(np.int16)
    assert (warm[..., 0] - warm[..., 2]).mean() > (src[..., 0] - src[..., 2]).mean() + 10
    assert (cool[..., 2] - cool[..., 0]).mean() > (src[..., 2] - src[..., 0]).mean() + 10


def test_edit_is_fast(sample_video: Any, tmp_path: Path) -> None:
    data = sample_video.path.read_bytes()
    t0 = time.perf_counter()
    edit_video(
        data, tmp_path / "o.mp4", EditSpec(prompt="vivid", keep_audio=True, aspect_ratio="1:1")
    )
    assert time.perf_counter() - t0 < 2.0
