"""The front, for real: NGINX from the repository's template in front of a real gateway.
It routes the public surface only (the session and realtime WebSockets, the health checks,
the public REST routes, the page, the protocol documents) and answers everything else
itself with 404, however the path is spelled; and a page at a foreign origin cannot open
a session through it (the gateway's default: the fleet's own page only)."""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus
from websockets.typing import Origin

from tests.support.fixtures_fleet import start_nginx
from tests.support.fixtures_gateway import start_gateway
from tests.support.processes import Proc
from tests.support.ws import open_ws, start

pytestmark = pytest.mark.integration

NGINX_404 = b"not_found\n"


@pytest.fixture(scope="module")
def gateway(log_dir: Path, redis_url: str, asr_server: Proc) -> Iterator[Proc]:
    # No SERVER__ALLOWED_ORIGINS: the code's default, the fleet's own page only.
    proc = start_gateway(
        log_dir,
        redis_url=redis_url,
        riva_targets=f"127.0.0.1:{asr_server.port}",
        name="gw-front-routes",
    )
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def nginx(gateway: Proc, log_dir: Path) -> Iterator[Proc]:
    proc = start_nginx([gateway.port], log_dir / "nginx-front-routes", log_dir)
    yield proc
    proc.stop()


def request(
    port: int,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, bytes]:
    """One request with `path` sent exactly as written (no client-side normalisation)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/", 200),
        ("GET", "/static/app.js", 200),
        ("GET", "/api/v1/health/live", 200),
        ("GET", "/api/v1/health/ready", 200),
        ("GET", "/api/v1/protocol/schema.json", 200),
        ("GET", "/api/v1/protocol/asyncapi.json", 200),
        ("POST", "/v1/realtime/transcription_sessions", 200),
        # The gateway's own answers (not NGINX's): an unknown session, an empty upload.
        ("GET", "/api/v1/sessions/no-such-session", 404),
        ("POST", "/v1/audio/transcriptions", 422),
    ],
)
def test_public_routes_reach_the_gateway(nginx: Proc, method: str, path: str, status: int) -> None:
    code, body = request(nginx.port, method, path, body=b"" if method == "POST" else None)
    assert code == status, body[:200]
    assert body != NGINX_404


def test_token_route_is_routed_to_the_gateway(nginx: Proc) -> None:
    # Whatever the gateway answers there (the route is another part's), it is the
    # gateway's answer: JSON, not NGINX's own 404.
    code, body = request(nginx.port, "POST", "/api/v1/tokens", body=b"{}")
    assert body != NGINX_404
    assert isinstance(json.loads(body), dict), (code, body[:200])


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/admin/drain"),
        ("POST", "/admin/drain?timeout_s=1"),
        ("GET", "/metrics"),
        ("GET", "/docs"),
        ("GET", "/redoc"),
        ("GET", "/openapi.json"),
        ("GET", "/asyncapi.json"),
        ("GET", "/nope"),
        ("GET", "/api/v1/transcribe/"),
        ("GET", "/api/v1/sessions/abcdefgh/extra"),
        ("GET", "/api/v1/health"),
        ("GET", "/v1/audio/translations"),
        # Other spellings of a closed path: NGINX matches the normalised path.
        ("POST", "/static/../admin/drain"),
        ("POST", "/api/v1/transcribe/%2e%2e/%2e%2e/%2e%2e/admin/drain"),
        ("POST", "/adm%69n/drain"),
        ("POST", "//admin/drain"),
        ("GET", "/api/v1/health/live/../../../../metrics"),
    ],
)
def test_everything_else_gets_404_from_nginx_itself(nginx: Proc, method: str, path: str) -> None:
    code, body = request(nginx.port, method, path)
    assert (code, body) == (404, NGINX_404)


def test_closed_paths_exist_on_the_pod_and_were_never_proxied(nginx: Proc, gateway: Proc) -> None:
    # What NGINX closes is there on the pod's own port (so the 404s above mean something),
    for path in ("/metrics", "/openapi.json"):
        assert request(gateway.port, "GET", path)[0] == 200
    # ...and the drains sent through NGINX never reached it: the pod is still ready.
    assert request(nginx.port, "POST", "/admin/drain?timeout_s=1")[0] == 404
    code, body = request(gateway.port, "GET", "/api/v1/health/ready")
    assert code == 200, body


async def test_foreign_origin_cannot_open_a_session_through_the_front(nginx: Proc) -> None:
    base = f"ws://127.0.0.1:{nginx.port}"
    for origin in ("https://evil.example", f"http://localhost:{nginx.port}", "null"):
        with pytest.raises(InvalidStatus) as refused:
            await open_ws(base, "front-origin-evil", origin=origin)
        assert refused.value.response.status_code == 403, origin
        assert refused.value.response.body.startswith(b"forbidden_origin")
    realtime = f"{base}/v1/realtime?intent=transcription"
    with pytest.raises(InvalidStatus) as refused:
        await connect(realtime, origin=Origin("https://evil.example"))
    assert refused.value.response.status_code == 403


async def test_the_fleets_own_page_and_non_browser_clients_can(nginx: Proc) -> None:
    base = f"ws://127.0.0.1:{nginx.port}"
    own = f"http://127.0.0.1:{nginx.port}"
    async with await open_ws(base, "front-origin-own", origin=own) as ws:
        assert (await start(ws))["event"] == "transcription_started"
    async with await open_ws(base, "front-origin-none") as ws:
        assert (await start(ws))["event"] == "transcription_started"
