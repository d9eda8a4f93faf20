"""The pod's admin listener: a small HTTP server in a daemon thread of the gunicorn
master, on its own address (`ADMIN__HOST`, `ADMIN__PORT`), never the public port.

    POST /admin/drain?timeout_s=   every worker drains; returns the counts
    POST /admin/undrain            every worker accepts sessions again
    GET  /admin/state              the flag and each worker's sessions and drain state
    GET  /metrics                  every worker's metrics added up

With `ADMIN__TOKEN` set, every request needs `Authorization: Bearer <token>` (compared
in constant time), else 401 before anything else is looked at.
"""

from __future__ import annotations

import hmac
import json
import logging
import math
import socket
import threading
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from gateway.admin.control import Busy, PodControl

log = logging.getLogger("gateway.admin")

# The longest drain one request may ask for (as the public route allowed before).
MAX_TIMEOUT_S = 3600.0

Reply = tuple[int, bytes, str]


class AdminServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(
        self,
        address: tuple[str, int],
        control: PodControl,
        *,
        token: str | None,
        default_timeout_s: float,
        metrics: Callable[[], tuple[bytes, str]],
    ) -> None:
        if ":" in address[0]:
            # An IPv6 pod IP (the chart binds status.podIP).
            self.address_family = socket.AF_INET6
        super().__init__(address, _Handler)
        self.control = control
        self.default_timeout_s = default_timeout_s
        self.metrics = metrics
        self._expected = f"Bearer {token}".encode() if token else None

    def authorized(self, header: str | None) -> bool:
        if self._expected is None:
            return True
        # Constant time: how much of a guess matched must not show in the reply's timing.
        return hmac.compare_digest((header or "").encode(), self._expected)

    def start(self) -> threading.Thread:
        thread = threading.Thread(target=self.serve_forever, name="admin-http", daemon=True)
        thread.start()
        return thread


class _Handler(BaseHTTPRequestHandler):
    server: AdminServer
    server_version = "gateway-admin"
    sys_version = ""
    # Each socket read and write is bounded: a connection that never sends its request
    # does not hold a thread for ever.
    timeout = 10

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def _serve(self, method: str) -> None:
        url = urlsplit(self.path)
        if not self.server.authorized(self.headers.get("Authorization")):
            status, body, kind = _json(HTTPStatus.UNAUTHORIZED, {"error": "unauthorized"})
            self._reply(status, body, kind, {"WWW-Authenticate": 'Bearer realm="admin"'})
            return
        route = _ROUTES.get(url.path)
        if route is None:
            self._reply(*_json(HTTPStatus.NOT_FOUND, {"error": "not_found"}))
        elif route[0] != method:
            self._reply(*_json(HTTPStatus.METHOD_NOT_ALLOWED, {"error": "method_not_allowed"}))
        else:
            try:
                self._reply(*route[1](self.server, parse_qs(url.query)))
            except Exception:
                log.exception("admin %s %s failed", method, url.path)
                self._reply(*_json(HTTPStatus.INTERNAL_SERVER_ERROR, {"error": "internal_error"}))

    def _reply(
        self, status: int, body: bytes, kind: str, headers: dict[str, str] | None = None
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        # Prometheus scrapes every few seconds: no line per request (drains log their own).
        return


def _drain(server: AdminServer, query: dict[str, list[str]]) -> Reply:
    raw = query.get("timeout_s", [""])[-1]
    if raw:
        try:
            timeout_s = float(raw)
        except ValueError:
            timeout_s = math.nan
        if not 0 <= timeout_s <= MAX_TIMEOUT_S:
            return _json(
                HTTPStatus.BAD_REQUEST, {"error": f"timeout_s must be 0 to {MAX_TIMEOUT_S:.0f}"}
            )
    else:
        timeout_s = server.default_timeout_s
    log.info("admin drain of every worker (up to %.0f s)", timeout_s)
    try:
        result = server.control.drain(timeout_s)
    except Busy as exc:
        return _json(HTTPStatus.CONFLICT, {"error": str(exc)})
    log.info("admin drain done: %s", result)
    return _json(HTTPStatus.OK, result)


def _undrain(server: AdminServer, query: dict[str, list[str]]) -> Reply:
    result = server.control.undrain()
    log.info("admin undrain: %s", result)
    return _json(HTTPStatus.OK, result)


def _state(server: AdminServer, query: dict[str, list[str]]) -> Reply:
    return _json(HTTPStatus.OK, server.control.state())


def _metrics(server: AdminServer, query: dict[str, list[str]]) -> Reply:
    body, kind = server.metrics()
    return HTTPStatus.OK, body, kind


def _json(status: int, data: object) -> Reply:
    return status, json.dumps(data).encode(), "application/json"


_ROUTES: dict[str, tuple[str, Callable[[AdminServer, dict[str, list[str]]], Reply]]] = {
    "/admin/drain": ("POST", _drain),
    "/admin/undrain": ("POST", _undrain),
    "/admin/state": ("GET", _state),
    "/metrics": ("GET", _metrics),
}
