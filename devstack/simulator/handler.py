"""The simulator's HTTP side: routing, request faults, the control API and result downloads.

One ``Handler`` class serves both provider APIs (their routes are told apart by path), the
``/_sim/`` control API and the result links. ``Simulator.start`` binds it to what it serves: a
``Served`` (the task store and the two provider queries), which the ``Simulator`` is; the handler
does not know the ``Simulator`` itself.
"""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import socket
import struct
import time
import urllib.parse
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol

from devstack.media import with_noise_media_data
from devstack.simulator.config import REQUEST_FAULTS
from devstack.simulator.core import Answer, Engine

_NOT_FOUND = {"error": {"code": 404, "message": "Not found", "type": "not_found_error"}}


class Served(Protocol):
    """What the HTTP side needs of the simulator: the task store (faults, counters, config,
    results) and the two provider queries (``devstack.simulator.Simulator`` is one)."""

    engine: Engine

    def aiml_query(self, query: dict[str, list[str]]) -> Answer:
        """aimlapi query (``query`` as ``urllib.parse.parse_qs`` gives it)."""
        ...

    def evo_query(self, task_id: str) -> Answer:
        """evolink query; raises ``Answer`` for a malformed or unknown id."""
        ...


class Server(ThreadingHTTPServer):
    """The simulator's HTTP server: handler threads are daemons, the backlog is deep."""

    daemon_threads = True
    request_queue_size = 256  # bursts of hundreds of creates must not overflow the backlog


class Handler(BaseHTTPRequestHandler):
    """Answers one request; ``sim`` is set on the subclass ``Simulator.start`` makes."""

    sim: Served
    protocol_version = "HTTP/1.0"
    server_version = "dropcut-sim/1.0"
    sys_version = ""

    def log_message(self, format: str, *args: Any) -> None:
        """Log nothing."""

    # -- plumbing --

    def _send(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        if isinstance(body, bytes | str):
            data = body.encode() if isinstance(body, str) else body
            ctype = "text/plain; charset=utf-8"
        else:
            data = json.dumps(body).encode()
            ctype = "application/json"
        headers = dict(headers or {})
        headers.setdefault("Content-Type", ctype)
        try:
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError, OSError):
            self.close_connection = True

    def _send_answer(self, ans: Answer) -> None:
        self._send(ans.status, ans.body, ans.headers)

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _reset_connection(self) -> None:
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        with contextlib.suppress(OSError):
            self.connection.close()
        self.close_connection = True

    def finish(self) -> None:
        """Finish the request, ignoring a connection the client (or a reset fault) closed."""
        with contextlib.suppress(OSError, ValueError):
            super().finish()

    # -- fault handling for provider requests --

    def _apply_request_fault(self, api: str, op: str) -> dict[str, Any] | None:
        """Apply a matching fault. Returns the rule if the request was answered (or dropped)."""
        engine = self.sim.engine
        fault = engine.take_fault(api, op, REQUEST_FAULTS)
        if fault is None:
            return None
        kind = fault["kind"]
        provider = engine.apis[api]
        if kind == "slow":
            engine.sleep(float(fault.get("delay", 30.0)))
            if op != "create":
                return None  # then answer normally
            # a slow create never reaches the backend: no task, a late 503
            self._send(503, provider.error(503).body)
            return fault
        if kind in ("accept_then_slow", "accept_then_error"):
            return fault  # the create route handles it
        if kind == "throttle":
            retry_after = fault.get("retry_after", 1)
            engine.count("status_429")
            self._send(429, provider.error(429).body, {"Retry-After": str(retry_after)})
        elif kind == "unavailable":
            status = int(fault.get("status", 503))
            self._send(status, provider.error(status).body)
        elif kind == "reset":
            self._reset_connection()
        elif kind == "malformed":
            self._send(200, b'{"id": "task-unified-trunc', {"Content-Type": "application/json"})
        elif kind == "html_page":  # a CDN's sign-in or error page, answered 200
            page = b"<!doctype html><html><body><h1>Sign in to continue</h1></body></html>"
            self._send(200, page, {"Content-Type": "text/html; charset=utf-8"})
        elif kind == "gone":  # a CDN that does not have the object (yet), or a refused link
            status = int(fault.get("status", 404))
            self._send_s3_error(status, "NoSuchKey" if status == 404 else "AccessDenied", "gone")
        elif kind == "redirect":  # to fault["location"], default: this very URL (a loop)
            self._send(302, b"", {"Location": str(fault.get("location", self.path))})
        return fault

    # -- routes --

    def do_HEAD(self) -> None:
        """As GET, without the body."""
        self.do_GET()

    def do_GET(self) -> None:
        """Provider queries, the control API's reads and result downloads."""
        parts = urllib.parse.urlsplit(self.path)
        path = parts.path
        try:
            if path.startswith("/_sim/"):
                self._control_get(path)
            elif path.endswith("/v2/video/generations"):
                query = urllib.parse.parse_qs(parts.query)
                self._provider_query("aimlapi", lambda: self.sim.aiml_query(query))
            elif m := re.search(r"/v1/tasks/([^/]+)$", path):
                task_id = urllib.parse.unquote(m.group(1))
                self._provider_query("evolink", lambda: self.sim.evo_query(task_id))
            else:
                self._send(404, _NOT_FOUND)
        except Answer as ans:
            self._send_answer(ans)

    def _provider_query(self, api: str, query: Callable[[], Answer]) -> None:
        self.sim.engine.count_request(api, "query")
        if self._apply_request_fault(api, "query"):
            return
        self.sim.engine.apis[api].check_auth(self.headers.get("Authorization", ""))
        self._send_answer(query())

    def do_POST(self) -> None:
        """Provider creates and the control API's writes."""
        path = urllib.parse.urlsplit(self.path).path
        raw = self._read_body()
        try:
            if path.startswith("/_sim/"):
                self._control_post(path, raw)
                return
            if path.endswith("/v2/video/generations"):
                api = "aimlapi"
            elif path.endswith("/v1/videos/generations"):
                api = "evolink"
            else:
                self._send(404, _NOT_FOUND)
                return
            engine = self.sim.engine
            provider = engine.apis[api]
            engine.count_request(api, "create")
            fault = self._apply_request_fault(api, "create")
            if fault and fault["kind"] not in ("accept_then_slow", "accept_then_error"):
                return
            provider.check_auth(self.headers.get("Authorization", ""))
            try:
                body = json.loads(raw or b"null")
            except ValueError as exc:
                raise provider.error(400, "Request body is not valid JSON") from exc
            ans = provider.create(body)
            if fault and fault["kind"] == "accept_then_error":
                # The task exists; a gateway in front of the backend answers an error instead.
                self._send_gateway_error(provider, int(fault.get("status", 502)))
                return
            if fault:  # accept_then_slow: the task exists, the answer comes too late
                engine.sleep(float(fault.get("delay", 30.0)))
            self._send_answer(ans)
        except Answer as ans:
            self._send_answer(ans)

    def _send_gateway_error(self, provider: Any, status: int) -> None:
        """A gateway's answer to a create its backend accepted: `status` (its 5xx or 408), or
        for 200 a body cut off mid-JSON."""
        if status == 200:
            self._send(200, b'{"id": "task-unified-', {"Content-Type": "application/json"})
        elif status in (408, 504):
            page = f"<html><body><h1>{status} Gateway Time-out</h1></body></html>".encode()
            self._send(status, page, {"Content-Type": "text/html"})
        else:
            self._send(status, provider.error(status).body)

    # -- control & results --

    def _control_get(self, path: str) -> None:
        engine = self.sim.engine
        if path == "/_sim/stats":
            self._send(200, engine.stats())
        elif path == "/_sim/config":
            with engine.lock:
                self._send(200, engine.config.to_json())
        elif path == "/_sim/health":
            self._send(200, {"ok": True})
        elif m := re.fullmatch(r"/_sim/results/([A-Za-z0-9_-]+)/output\.mp4", path):
            self._serve_result(m.group(1))
        else:
            self._send(404, {"error": "not found"})

    def _control_post(self, path: str, raw: bytes) -> None:
        engine = self.sim.engine
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            self._send(400, {"error": "body must be JSON"})
            return
        if path == "/_sim/config":
            if not isinstance(body, dict):
                self._send(400, {"error": "body must be a JSON object"})
                return
            try:
                cfg = engine.configure(**body)
            except (ValueError, TypeError) as exc:
                self._send(400, {"error": str(exc)})
                return
            with engine.lock:
                self._send(200, cfg.to_json())
        elif path == "/_sim/reset":
            engine.reset(config=bool(isinstance(body, dict) and body.get("config")))
            self._send(200, {"ok": True})
        else:
            self._send(404, {"error": "not found"})

    def _send_s3_error(self, status: int, code: str, message: str) -> None:
        self._send(
            status,
            f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code>'
            f"<Message>{message}</Message></Error>",
            {"Content-Type": "application/xml"},
        )

    def _serve_result(self, token: str) -> None:
        engine = self.sim.engine
        with engine.lock:
            t = engine.tokens.get(token)
            api = t.api if t else "*"
        engine.count_request(api if t else "unknown", "result")
        fault = self._apply_request_fault(api, "result") if t is not None else None
        if fault is not None and fault["kind"] != "noise_video":
            return
        if t is None or t.output is None or not t.output.exists():
            self._send_s3_error(404, "NoSuchKey", "The specified key does not exist.")
            return
        if fault is not None:  # noise_video: the edit's boxes around random media data
            self._send(200, with_noise_media_data(t.output), {"Content-Type": "video/mp4"})
            return
        assert t.expires_at is not None
        if time.monotonic() >= t.expires_at:
            self._send_s3_error(403, "AccessDenied", "Request has expired")
            return
        size = t.output.stat().st_size
        try:
            self.send_response(200)
            self.send_header("Content-Type", "video/mp4")
            self.send_header("Content-Length", str(size))
            self.end_headers()
            if self.command == "HEAD":
                return
            with t.output.open("rb") as fh:
                shutil.copyfileobj(fh, self.wfile, 64 * 1024)
        except (BrokenPipeError, ConnectionResetError, OSError):
            self.close_connection = True
