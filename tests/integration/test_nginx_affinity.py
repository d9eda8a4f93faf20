"""The repository's NGINX configuration, run for real, in front of two stand-in upstreams.

The stand-ins (not gateways: small servers that only say who they are and echo the
request headers they received, and accept WebSockets) let these tests prove what NGINX
does on its own: session affinity, spreading, the WebSocket upgrade, failover.

Run as `python -m tests.integration.test_nginx_affinity NAME PORT`, this module is a
stand-in.
"""

from __future__ import annotations

import json
import signal
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from websockets.http11 import Request, Response
from websockets.sync.client import connect
from websockets.sync.server import ServerConnection, serve
from websockets.typing import Origin

from tests.support.fixtures_fleet import start_nginx
from tests.support.processes import Proc, free_port, port_open, start

pytestmark = pytest.mark.integration

SESSION_IDS = [f"session-{i:04d}" for i in range(40)]


def stand_in_argv(name: str, port: int) -> list[str]:
    return [sys.executable, "-m", "tests.integration.test_nginx_affinity", name, str(port)]


def start_stand_in(name: str, log_dir: Path) -> Proc:
    port = free_port()
    return start(name, stand_in_argv(name, port), log_dir, port=port, ready=lambda: port_open(port))


@pytest.fixture(scope="module")
def module_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("nginx-affinity")


@pytest.fixture(scope="module")
def stand_ins(module_dir: Path) -> Iterator[list[Proc]]:
    procs = [start_stand_in(f"stand-in-{name}", module_dir) for name in ("a", "b")]
    yield procs
    for proc in procs:
        proc.stop()


@pytest.fixture(scope="module")
def nginx(stand_ins: list[Proc], module_dir: Path) -> Iterator[Proc]:
    proc = start_nginx([p.port for p in stand_ins], module_dir / "nginx", module_dir)
    yield proc
    proc.stop()


def get(nginx: Proc, path: str, headers: dict[str, str] | None = None) -> dict[str, object]:
    request = urllib.request.Request(f"http://127.0.0.1:{nginx.port}{path}", headers=headers or {})
    with urllib.request.urlopen(request, timeout=5) as response:
        assert response.status == 200
        body: dict[str, object] = json.loads(response.read())
        body["response_request_id"] = response.headers.get("X-Request-Id")
        return body


def upstream_of(nginx: Proc, path: str) -> str:
    return str(get(nginx, path)["upstream"])


def test_same_session_id_always_reaches_the_same_upstream(nginx: Proc) -> None:
    for session_id in SESSION_IDS[:10]:
        path = f"/api/v1/transcribe/{session_id}"
        first = upstream_of(nginx, path)
        seen = {upstream_of(nginx, path) for _ in range(5)}
        seen.add(upstream_of(nginx, f"{path}?access_token=secret"))
        assert seen == {first}, session_id


def test_different_session_ids_spread_across_both_upstreams(nginx: Proc) -> None:
    upstreams = [upstream_of(nginx, f"/api/v1/transcribe/{sid}") for sid in SESSION_IDS]
    assert set(upstreams) == {"stand-in-a", "stand-in-b"}
    assert min(upstreams.count("stand-in-a"), upstreams.count("stand-in-b")) >= 5


def test_requests_without_session_id_spread_across_both_upstreams(nginx: Proc) -> None:
    upstreams = {upstream_of(nginx, "/api/v1/health/live") for _ in range(30)}
    assert upstreams == {"stand-in-a", "stand-in-b"}


@pytest.mark.parametrize(
    "session_id",
    ["a" * 7, "a" * 65, "abc.defgh", "abc%20defgh"],
    ids=["7-chars", "65-chars", "dot", "space"],
)
def test_ids_outside_the_protocol_are_not_hashed_as_sessions(nginx: Proc, session_id: str) -> None:
    upstreams = {upstream_of(nginx, f"/api/v1/transcribe/{session_id}") for _ in range(30)}
    assert upstreams == {"stand-in-a", "stand-in-b"}


@pytest.mark.parametrize("session_id", ["a" * 8, "Z" * 64, "A-b_9" * 4])
def test_ids_at_the_protocol_bounds_are_sticky(nginx: Proc, session_id: str) -> None:
    upstreams = {upstream_of(nginx, f"/api/v1/transcribe/{session_id}") for _ in range(10)}
    assert len(upstreams) == 1


def test_request_id_and_client_headers_are_forwarded(nginx: Proc) -> None:
    body = get(nginx, "/api/v1/health/live", {"X-Request-Id": "req-42", "Origin": "http://o.test"})
    headers = body["headers"]
    assert isinstance(headers, dict)
    assert headers["x-request-id"] == "req-42"
    assert body["response_request_id"] == "req-42"
    assert headers["origin"] == "http://o.test"
    assert headers["host"] == f"127.0.0.1:{nginx.port}"
    assert headers["x-forwarded-for"] == "127.0.0.1"
    # Without a client request id, NGINX makes one and passes it on.
    made = get(nginx, "/api/v1/health/live")
    assert isinstance(made["headers"], dict)
    assert len(made["headers"]["x-request-id"]) == 32
    assert made["response_request_id"] == made["headers"]["x-request-id"]


def test_websocket_upgrade_reaches_the_session_upstream_and_echoes(nginx: Proc) -> None:
    session_id = SESSION_IDS[3]
    path = f"/api/v1/transcribe/{session_id}"
    expected = upstream_of(nginx, path)
    url = f"ws://127.0.0.1:{nginx.port}{path}"
    origin = Origin("http://o.test")
    with connect(url, origin=origin, additional_headers={"X-Request-Id": "ws-1"}) as ws:
        hello = json.loads(ws.recv(timeout=5))
        assert hello["upstream"] == expected
        headers = hello["headers"]
        assert headers["upgrade"].lower() == "websocket"
        assert headers["connection"].lower() == "upgrade"
        assert headers["origin"] == "http://o.test"
        assert headers["x-request-id"] == "ws-1"
        assert "sec-websocket-key" in headers
        audio = bytes(range(256)) * 16
        ws.send(audio)
        assert ws.recv(timeout=5) == audio
        ws.send('{"type": "keepalive"}')
        assert ws.recv(timeout=5) == '{"type": "keepalive"}'


def test_sessions_of_a_killed_upstream_reach_the_other_through_the_same_url(
    tmp_path: Path,
) -> None:
    procs = {name: start_stand_in(name, tmp_path) for name in ("stand-in-a", "stand-in-b")}
    nginx = start_nginx([p.port for p in procs.values()], tmp_path / "nginx", tmp_path)
    try:
        before = {sid: upstream_of(nginx, f"/api/v1/transcribe/{sid}") for sid in SESSION_IDS}
        on_a = [sid for sid, name in before.items() if name == "stand-in-a"]
        assert on_a, "no session hashed to stand-in-a"

        procs["stand-in-a"].kill(signal.SIGKILL)
        procs["stand-in-a"].popen.wait(5)

        after = {sid: upstream_of(nginx, f"/api/v1/transcribe/{sid}") for sid in SESSION_IDS}
        assert set(after.values()) == {"stand-in-b"}
        url = f"ws://127.0.0.1:{nginx.port}/api/v1/transcribe/{on_a[0]}"
        with connect(url) as ws:
            assert json.loads(ws.recv(timeout=5))["upstream"] == "stand-in-b"
    finally:
        nginx.stop()
        for proc in procs.values():
            proc.stop()


# The stand-in upstream, run in its own process.


def _stand_in(name: str, port: int) -> None:
    def describe(request: Request) -> str:
        headers = {key.lower(): value for key, value in request.headers.raw_items()}
        return json.dumps({"upstream": name, "path": request.path, "headers": headers})

    def plain_http(connection: ServerConnection, request: Request) -> Response | None:
        if request.headers.get("Upgrade", "").lower() == "websocket":
            return None
        return connection.respond(200, describe(request))

    def websocket(connection: ServerConnection) -> None:
        assert connection.request is not None
        connection.send(describe(connection.request))
        for message in connection:
            connection.send(message)

    with serve(
        websocket, "127.0.0.1", port, process_request=plain_http, compression=None
    ) as server:
        server.serve_forever()


if __name__ == "__main__":
    _stand_in(sys.argv[1], int(sys.argv[2]))
