"""A local stand-in for API Gateway HTTP APIs: HTTP on 127.0.0.1 -> payload-format-2.0 events.

The template's `HttpApi` function events become routes here; a request that matches one invokes
the function through moto's Lambda API (so the warm worker pools run the real handler) and the
proxy result (`statusCode`, `headers`, `body`) is turned back into the HTTP answer. Unmatched
requests get API Gateway's 404 `{"message":"Not Found"}`, and a function error its 500.

A route with `Auth: {Authorizer: AWS_IAM}` is authorized as API Gateway does it
(`devstack.iam_auth`): the SigV4 signature is checked, a request that fails gets API Gateway's
403 and never reaches the function, and the event's `requestContext.authorizer.iam` names the
caller the signature proves.
"""

from __future__ import annotations

import base64
import json
import logging
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from devstack import iam_auth

LOG = logging.getLogger(__name__)

#: invoke(function logical id, event) -> (payload, FunctionError or None)
Invoke = Callable[[str, dict[str, Any]], tuple[Any, str | None]]

MAX_BODY_BYTES = 10 * 1024 * 1024  # API Gateway's payload limit
#: The route authorizations served here (SAM's HttpApi event `Auth.Authorizer`).
AUTHORIZERS = ("NONE", "AWS_IAM")


@dataclass(frozen=True)
class Route:
    method: str
    path: str  # "/callbacks/{part_id}"
    function: str
    api_id: str
    #: "AWS_IAM" (the signature checked, the caller in the request context) or "NONE".
    authorizer: str = "NONE"

    @property
    def route_key(self) -> str:
        return f"{self.method} {self.path}"

    def match(self, method: str, path: str) -> dict[str, str] | None:
        if self.method not in ("ANY", method):
            return None
        pattern = "^" + re.sub(r"\\\{([A-Za-z0-9_]+)\\\}", r"(?P<\1>[^/]+)", re.escape(self.path))
        found = re.match(pattern + "$", path)
        return found.groupdict() if found else None


class LocalHttpApi:
    """Serves every HttpApi route of a template on one local port (like one stage, `$default`)."""

    def __init__(
        self,
        invoke: Invoke,
        account_id: str,
        host: str = "127.0.0.1",
        port: int = 0,
        region: str = "us-east-1",
    ):
        self.routes: list[Route] = []
        self.requests = 0
        self._invoke = invoke
        self._account_id = account_id
        self._region = region
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                api._serve(self)

            do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = do_GET

            def log_message(self, format: str, *args: Any) -> None:
                # The default writes the request line, query string (a capability) included.
                return

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def add_route(
        self, method: str, path: str, function: str, api_id: str, authorizer: str = "NONE"
    ) -> None:
        if authorizer not in AUTHORIZERS:
            raise ValueError(f"{function}: authorizer {authorizer!r} is not served locally")
        self.routes.append(Route(method.upper(), path, function, api_id, authorizer))

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="local-http-api", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _serve(self, request: BaseHTTPRequestHandler) -> None:
        self.requests += 1
        parts = urlsplit(request.path)
        length = int(request.headers.get("Content-Length") or 0)
        if length > MAX_BODY_BYTES:
            self._reply(request, 413, {"message": "Request Entity Too Large"})
            return
        body = request.rfile.read(length) if length else b""
        for route in self.routes:
            params = route.match(request.command, parts.path)
            if params is not None:
                break
        else:
            self._reply(request, 404, {"message": "Not Found"})
            return
        event = self._event(request, route, params, parts.path, parts.query, body)
        if route.authorizer == "AWS_IAM":
            try:
                identity = iam_auth.authenticate(
                    request.command,
                    parts.path,
                    parts.query,
                    event["headers"],
                    body,
                    region=self._region,
                    account_id=self._account_id,
                )
            except iam_auth.Refused as refused:
                self._reply(request, 403, {"message": refused.message})
                return
            event["requestContext"]["authorizer"] = identity.context()
        try:
            payload, function_error = self._invoke(route.function, event)
        except Exception:
            LOG.exception("local HTTP API: invoking %s failed", route.function)
            payload, function_error = None, "Unhandled"
        if function_error or not isinstance(payload, dict) or "statusCode" not in payload:
            self._reply(request, 500, {"message": "Internal Server Error"})
            return
        raw = payload.get("body") or ""
        data = base64.b64decode(raw) if payload.get("isBase64Encoded") else str(raw).encode()
        headers = {str(k): str(v) for k, v in (payload.get("headers") or {}).items()}
        self._send(request, int(payload["statusCode"]), data, headers)

    def _event(
        self,
        request: BaseHTTPRequestHandler,
        route: Route,
        params: dict[str, str],
        path: str,
        query: str,
        body: bytes,
    ) -> dict[str, Any]:
        headers = {k.lower(): v for k, v in request.headers.items()}
        query_params: dict[str, str] = {}
        for key, value in parse_qsl(query, keep_blank_values=True):
            # Payload 2.0 joins repeated parameters with commas.
            query_params[key] = f"{query_params[key]},{value}" if key in query_params else value
        text_types = ("application/json", "text/", "application/x-www-form-urlencoded")
        is_text = any(t in headers.get("content-type", "") for t in text_types)
        now = time.time()
        event: dict[str, Any] = {
            "version": "2.0",
            "routeKey": route.route_key,
            "rawPath": path,
            "rawQueryString": query,
            "headers": headers,
            "requestContext": {
                "accountId": self._account_id,
                "apiId": route.api_id,
                "domainName": headers.get("host", "127.0.0.1"),
                "domainPrefix": route.api_id,
                "http": {
                    "method": request.command,
                    "path": path,
                    "protocol": request.request_version,
                    "sourceIp": request.client_address[0],
                    "userAgent": headers.get("user-agent", ""),
                },
                "requestId": str(uuid.uuid4()),
                "routeKey": route.route_key,
                "stage": "$default",
                "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
                "timeEpoch": int(now * 1000),
            },
            "isBase64Encoded": not is_text and bool(body),
        }
        if query_params:
            event["queryStringParameters"] = query_params
        if params:
            event["pathParameters"] = params
        if body:
            event["body"] = body.decode("utf-8") if is_text else base64.b64encode(body).decode()
        return event

    def _reply(self, request: BaseHTTPRequestHandler, status: int, document: Any) -> None:
        data = json.dumps(document).encode()
        self._send(request, status, data, {"Content-Type": "application/json"})

    @staticmethod
    def _send(
        request: BaseHTTPRequestHandler, status: int, data: bytes, headers: dict[str, str]
    ) -> None:
        request.send_response(status)
        for name, value in headers.items():
            if name.lower() not in ("content-length", "connection"):
                request.send_header(name, value)
        request.send_header("Content-Length", str(len(data)))
        request.end_headers()
        if request.command != "HEAD":
            request.wfile.write(data)
