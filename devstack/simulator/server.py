"""Provider simulator: both Kling O1 video-edit APIs (aimlapi and evolink) on one local HTTP server.

See the package docstring (``devstack.simulator``) for the behaviour, directives and faults.
``Simulator`` puts the pieces together: the shared task store (``core.Engine``), one module per
provider API (``aimlapi``, ``evolink``), the clock that runs the tasks (``clock``) and the HTTP
server (``handler``).
"""

from __future__ import annotations

import shutil
import threading
from typing import Any

from devstack.simulator.aimlapi import AimlApi
from devstack.simulator.clock import Clock
from devstack.simulator.config import FAULT_KINDS, SimConfig
from devstack.simulator.core import Answer, Engine, Task
from devstack.simulator.evolink import EvolinkApi
from devstack.simulator.handler import Handler, Server

__all__ = ["FAULT_KINDS", "SimConfig", "Simulator"]


class Simulator:
    """The provider simulator. ``start()`` serves in a background thread; ``stop()`` ends it."""

    def __init__(
        self, config: SimConfig | None = None, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        self.engine = Engine(config or SimConfig())
        self._aimlapi = AimlApi(self.engine)
        self._evolink = EvolinkApi(self.engine)
        self.engine.apis = {api.name: api for api in (self._aimlapi, self._evolink)}
        self.host = host
        self.port = port
        self._clock = Clock(self.engine)
        self._server: Server | None = None
        self._http_thread: threading.Thread | None = None

    # ---- lifecycle ----------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The server's own URL (``http://host:port``); RuntimeError before ``start()``."""
        if self._server is None:
            raise RuntimeError("simulator not started")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def base_url(self) -> str:
        """Where result links point: ``public_base_url`` if set, else ``url``."""
        return self.engine.base_url

    def start(self) -> Simulator:
        """Bind the server and serve in background threads (nothing if already started)."""
        if self._server is not None:
            return self
        handler = type("_BoundHandler", (Handler,), {"sim": self})
        server = Server((self.host, self.port), handler)
        self.engine.workdir.mkdir(parents=True, exist_ok=True)
        self._server = server
        self.engine.server_url = self.url
        self._clock.start()
        self._http_thread = threading.Thread(
            target=server.serve_forever, args=(0.05,), name="sim-http", daemon=True
        )
        self._http_thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and running tasks, and delete the results."""
        self._clock.stop()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._http_thread is not None:
            self._http_thread.join(timeout=5)
            self._http_thread = None
        self._server = None
        self.engine.server_url = None
        shutil.rmtree(self.engine.workdir, ignore_errors=True)

    def __enter__(self) -> Simulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- control ------------------------------------------------------------------------------

    @property
    def config(self) -> SimConfig:
        """The current config (``reset(config=True)`` replaces it with the start config)."""
        return self.engine.config

    @config.setter
    def config(self, config: SimConfig) -> None:
        self.engine.config = config

    def configure(self, **changes: Any) -> SimConfig:
        """Merge ``changes`` into the config (``faults`` is replaced as a whole)."""
        return self.engine.configure(**changes)

    def add_fault(self, **rule: Any) -> None:
        """Append a fault rule (see the package docstring)."""
        self.engine.add_fault(**rule)

    def hurry(self) -> int:
        """End the wait of every unfinished task now (see ``Engine.hurry``)."""
        return self.engine.hurry()

    def reset(self, *, config: bool = False) -> None:
        """Forget tasks, counters and faults; with ``config=True`` also restore the start config."""
        self.engine.reset(config=config)

    def stats(self) -> dict[str, Any]:
        """Counters, pending faults and tasks (see the package docstring for the keys)."""
        return self.engine.stats()

    def task(self, task_id: str) -> Task | None:
        """The task with that id, of either API."""
        with self.engine.lock:
            return self.engine.tasks.get(task_id)

    def body_for(self, t: Task) -> dict[str, Any]:
        """The task as its API's query answers it."""
        with self.engine.lock:
            return self.engine.apis[t.api].body(t)

    # ---- provider requests (as the HTTP handler makes them) -----------------------------------

    def aiml_create(self, body: Any) -> Answer:
        """aimlapi create; raises ``Answer`` when refused."""
        return self._aimlapi.create(body)

    def aiml_query(self, query: dict[str, list[str]]) -> Answer:
        """aimlapi query (``query`` as ``urllib.parse.parse_qs`` gives it)."""
        return self._aimlapi.query(query)

    def evo_create(self, body: Any) -> Answer:
        """evolink create; raises ``Answer`` when refused."""
        return self._evolink.create(body)

    def evo_query(self, task_id: str) -> Answer:
        """evolink query; raises ``Answer`` for a malformed or unknown id."""
        return self._evolink.query(task_id)
