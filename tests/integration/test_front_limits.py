"""The front's per-address limits, for real: NGINX from the repository's template with
small limits in front of a real gateway. Past the request rate and its burst, or past the
connections one address may hold, NGINX answers 429 `rate_limited` with Retry-After;
NGINX's own health is never limited; behind a trusted load balancer the limits count the
address it names, not the balancer's."""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import InvalidStatus

from deploy.local.front_limits import FrontLimits
from tests.support.fixtures_fleet import start_nginx
from tests.support.fixtures_gateway import start_gateway
from tests.support.processes import Proc
from tests.support.ws import open_ws

pytestmark = pytest.mark.integration

Front = Callable[[FrontLimits], Proc]


@pytest.fixture(scope="module")
def gateway(log_dir: Path, redis_url: str, asr_server: Proc) -> Iterator[Proc]:
    proc = start_gateway(
        log_dir,
        redis_url=redis_url,
        riva_targets=f"127.0.0.1:{asr_server.port}",
        name="gw-front-limits",
    )
    yield proc
    proc.stop()


@pytest.fixture
def front(gateway: Proc, tmp_path: Path, log_dir: Path) -> Iterator[Front]:
    """NGINX with the given limits in front of the gateway; stopped after the test."""
    started: list[Proc] = []

    def factory(limits: FrontLimits) -> Proc:
        proc = start_nginx([gateway.port], tmp_path / f"nginx-{len(started)}", log_dir, limits)
        started.append(proc)
        return proc

    yield factory
    for proc in started:
        proc.stop()


def get(port: int, path: str, headers: dict[str, str] | None = None) -> tuple[int, str, bytes]:
    """(status, Retry-After, body) of one GET on a connection of its own."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("GET", path, headers=headers or {})
        response = connection.getresponse()
        return response.status, response.getheader("Retry-After", ""), response.read()
    finally:
        connection.close()


def test_past_the_rate_and_its_burst_requests_get_429_rate_limited(front: Front) -> None:
    nginx = front(FrontLimits(requests_per_second=1, request_burst=5))
    began = time.monotonic()
    answers = [get(nginx.port, "/api/v1/health/live") for _ in range(20)]
    elapsed = time.monotonic() - began
    served = [a for a in answers if a[0] == 200]
    limited = [a for a in answers if a[0] == 429]
    assert len(served) + len(limited) == 20
    # The burst, the one request of the first second, and one a second since.
    assert 5 <= len(served) <= 5 + 1 + int(elapsed) + 1
    assert limited
    _, retry_after, body = limited[0]
    assert retry_after == "1"
    assert body.startswith(b"rate_limited: ")
    # NGINX's own health is outside the limits: probes still pass.
    assert get(nginx.port, "/nginx/health")[0] == 200


async def test_past_the_connections_per_address_sockets_get_429(front: Front) -> None:
    nginx = front(FrontLimits(connections_per_address=3))
    base = f"ws://127.0.0.1:{nginx.port}"
    async with contextlib.AsyncExitStack() as held:
        sockets: list[ClientConnection] = [
            await held.enter_async_context(await open_ws(base, f"front-conn-{i}")) for i in range(3)
        ]
        with pytest.raises(InvalidStatus) as refused:
            await open_ws(base, "front-conn-3")
        assert refused.value.response.status_code == 429
        assert refused.value.response.body.startswith(b"rate_limited: ")
        # A socket that ends frees its place (once NGINX has seen the close).
        await sockets[0].close()
        deadline = time.monotonic() + 10
        while not await opens(base, "front-conn-4"):
            assert time.monotonic() < deadline, "the closed socket's place never freed"
            await asyncio.sleep(0.05)


async def opens(base: str, session_id: str) -> bool:
    """True when a socket opens; False when the front refuses it with 429."""
    try:
        async with await open_ws(base, session_id):
            return True
    except InvalidStatus as refused:
        if refused.response.status_code != 429:
            raise
        return False


def test_behind_a_trusted_balancer_each_named_client_has_its_own_limit(front: Front) -> None:
    limits = FrontLimits(requests_per_second=1, request_burst=2, real_ip_from=("127.0.0.1",))
    nginx = front(limits)
    path = "/api/v1/health/live"
    # Ten clients behind the balancer, one request each: all within their own limits.
    for i in range(10):
        assert get(nginx.port, path, {"X-Forwarded-For": f"203.0.113.{i}"})[0] == 200
    # One of them sending ten: limited, whatever the others did.
    statuses = [get(nginx.port, path, {"X-Forwarded-For": "198.51.100.7"})[0] for _ in range(10)]
    assert statuses.count(429) >= 5


def test_an_untrusted_peer_cannot_choose_its_address(front: Front) -> None:
    nginx = front(FrontLimits(requests_per_second=1, request_burst=2))
    # Without a trusted balancer configured, X-Forwarded-For is ignored for the limits.
    statuses = [
        get(nginx.port, "/api/v1/health/live", {"X-Forwarded-For": f"203.0.113.{i}"})[0]
        for i in range(10)
    ]
    assert statuses.count(429) >= 5
