"""The providers' published client code works against the simulator unchanged."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from devstack.simulator import Simulator

EXAMPLES = Path(__file__).parent / "examples"
PAGE = Path(__file__).resolve().parents[3] / "shared/providers/aimlapi-kling-o1-video-edit.md"
ORIGINAL_VIDEO = "https://raw.githubusercontent.com/aimlapi/api-docs/main/reference-files/racoon-in-the-forest.mp4"


def _run(args: list[str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, timeout=timeout, check=False
    )


def test_aimlapi_example_is_verbatim_copy() -> None:
    if not PAGE.exists():
        pytest.skip("the provider page lives outside the repository")
    page_code = re.search(r"```python\n(.*?)```", PAGE.read_text(), re.S)
    assert page_code is not None
    copied = (EXAMPLES / "aimlapi_example.py").read_text()
    body = copied.split("\n", 5)[5]  # after the 5-line header
    assert body == page_code.group(1)


def test_aimlapi_published_example(simulator: Simulator, sample_video: Any, tmp_path: Path) -> None:
    source = (EXAMPLES / "aimlapi_example.py").read_text()
    replacements = [
        ('api_key = "<YOUR_AIMLAPI_KEY>"', 'api_key = "sim-key"'),
        ('base_url = "https://api.aimlapi.com/v2"', f'base_url = "{simulator.url}/v2"'),
        (ORIGINAL_VIDEO, sample_video.url),
        ("time.sleep(15)", "time.sleep(0.2)"),
    ]
    for old, new in replacements:
        assert source.count(old) == 1, old
        source = source.replace(old, new)
    script = tmp_path / "aimlapi_example.py"
    script.write_text(source)

    proc = _run([str(script)])
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert re.search(r"Generation ID:\s+[0-9a-f-]{36}:klingai/video-o1-video-to-video-edit", out)
    assert "Status: generating. Checking again in 15 seconds." in out
    assert "Processing complete:" in out
    assert "'status': 'completed'" in out
    m = re.search(r"'video': \{'url': '([^']+)'\}", out)
    assert m, out
    assert httpx.get(m.group(1)).status_code == 200
    assert simulator.stats()["tasks_created_by_api"]["aimlapi"] == 1


def test_evolink_minimal_client(simulator: Simulator, sample_video: Any) -> None:
    proc = _run(
        [
            str(EXAMPLES / "evolink_minimal_client.py"),
            simulator.url,
            "sim-key",
            sample_video.url,
            "make it sepia",
            "0.2",
        ]
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    m = re.search(r"Result URL: (\S+)", proc.stdout)
    assert m, proc.stdout
    assert m.group(1).startswith(simulator.url + "/_sim/results/")
    assert httpx.get(m.group(1)).status_code == 200
    assert "Status: processing" in proc.stdout


def test_evolink_minimal_client_failure(simulator: Simulator, sample_video: Any) -> None:
    proc = _run(
        [
            str(EXAMPLES / "evolink_minimal_client.py"),
            simulator.url,
            "sim-key",
            sample_video.url,
            "[sim:fail]",
            "0.2",
        ]
    )
    assert proc.returncode == 1
    assert "generation_failed" in proc.stdout
