"""Fixtures shared by tests/integration (the provider adapters against the simulator) and
tests/devstack (the simulator itself): a local static file server, a sample clip, a simulator."""

from __future__ import annotations

import functools
import http.server
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings as hypothesis_settings

from devstack.media import make_sample_video
from devstack.simulator import SimConfig, Simulator

# No per-example deadline: these machines are noisy, and a slow example is not a failure.
hypothesis_settings.register_profile("dropcut", deadline=None)
hypothesis_settings.load_profile("dropcut")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under pytest-xdist (`make test`: -n 2 --dist loadfile --no-loadscope-reorder), the
    modules marked `long_running(seconds)` go first, longest first: a worker hands out whole
    modules in collection order, and the longest one started last would run alone at the end.
    A plain run keeps pytest's order."""
    if not hasattr(config, "workerinput"):  # the order matters only on xdist's workers
        return

    def seconds(item: pytest.Item) -> float:
        marker = item.get_closest_marker("long_running")
        return float(marker.args[0]) if marker else 0.0

    items.sort(key=lambda item: -seconds(item))  # stable: the rest keep their order


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@dataclass
class FileServer:
    """Serves ``root`` over http://127.0.0.1:PORT/ (what the simulator fetches inputs from)."""

    root: Path
    base_url: str

    def put(self, name: str, data: bytes) -> str:
        (self.root / name).write_bytes(data)
        return self.url(name)

    def url(self, name: str) -> str:
        return f"{self.base_url}/{name}"


@dataclass
class SampleVideo:
    path: Path
    url: str


@pytest.fixture(scope="session")
def file_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FileServer]:
    root = tmp_path_factory.mktemp("static")
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield FileServer(root, f"http://127.0.0.1:{server.server_address[1]}")
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="session")
def sample_video(file_server: FileServer) -> SampleVideo:
    """A 4 s 320x240 H.264 + AAC clip served at http://127.0.0.1:PORT/clip.mp4."""
    path = make_sample_video(file_server.root / "clip.mp4")
    return SampleVideo(path, file_server.url("clip.mp4"))


@pytest.fixture
def simulator() -> Iterator[Simulator]:
    """A fresh, fast simulator per test (key "sim-key"); change it with ``.configure()``."""
    config = SimConfig(task_seconds=0.5, queue_seconds=0.1, callback_retry_delays=[0.1, 0.2, 0.4])
    with Simulator(config) as sim:
        yield sim


@pytest.fixture
def wide_console(monkeypatch: pytest.MonkeyPatch) -> None:
    """The command line's consoles wide enough that no message is wrapped inside a table cell."""
    from dropcut_cli import display

    for console in (display.out, display.err):
        monkeypatch.setattr(console, "width", 240)
