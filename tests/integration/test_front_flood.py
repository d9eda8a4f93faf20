"""A flood from one address, for real: NGINX from the repository's template with the
production limits (deploy/local/front_limits.py's PRODUCTION, the chart's defaults) in
front of a real gateway on the PocketSphinx speech server.

From 127.0.0.1, at once: 2,000 WebSocket connection attempts within a few seconds (each
one a fresh TCP connection sending an upgrade request; those let through are held open,
as a flooder would), and 200 sockets that connect and never send a byte. Meanwhile a
normal session streams `goforward.raw` through the same NGINX, on the same port.

Every connection of a test comes from the loopback, so the normal session binds its end
to 127.0.0.2 (all of 127.0.0.0/8 is the loopback on Linux): NGINX keys its limits by
$binary_remote_addr, so that client is another address to it, as a real client elsewhere
on the Internet would be. Connecting it straight to the gateway would prove nothing about
the front; a second NGINX listener would add a path production does not have.

What must hold: the limits bite (429 `rate_limited` for all but the burst and the held
connections' cap; the idle sockets closed by NGINX after client_header_timeout, instead
of NGINX's default minute), NGINX's and the gateway's memory stay bounded, and the normal
session gets its exact transcript.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from deploy.local.front_limits import PRODUCTION
from tests.support.audio import goforward
from tests.support.fixtures_fleet import start_nginx
from tests.support.fixtures_gateway import http_get, start_gateway
from tests.support.processes import Proc, poll_until
from tests.support.ws import collect, frames, open_ws, start

pytestmark = pytest.mark.integration

ATTEMPTS = 2000
IN_FLIGHT = 100  # attempts under way at once
IDLE_SOCKETS = 200
NORMAL_CLIENT = "127.0.0.2"
# Generous bounds on memory growth during the flood: measured here, NGINX grew 4.6 MB and
# the gateway 6.7 MB (the test prints them); without the limits the gateway would hold
# 2,000 sockets (about 120 KB each) and pass the bound.
NGINX_GROWTH_KB = 32 * 1024
GATEWAY_GROWTH_KB = 128 * 1024

UPGRADE = (
    "GET /api/v1/transcribe/{session_id} HTTP/1.1\r\n"
    "Host: 127.0.0.1:{port}\r\n"
    "Upgrade: websocket\r\n"
    "Connection: Upgrade\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    "Sec-WebSocket-Version: 13\r\n"
    "\r\n"
)


@pytest.fixture(scope="module")
def gateway(log_dir: Path, redis_url: str, asr_server: Proc) -> Iterator[Proc]:
    proc = start_gateway(
        log_dir,
        redis_url=redis_url,
        riva_targets=f"127.0.0.1:{asr_server.port}",
        name="gw-front-flood",
    )
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def nginx(gateway: Proc, log_dir: Path) -> Iterator[Proc]:
    proc = start_nginx([gateway.port], log_dir / "nginx-front-flood", log_dir, PRODUCTION)
    yield proc
    proc.stop()


def tree_rss_kb(pid: int) -> int:
    """VmRSS of `pid` and every process below it (NGINX's master and worker, gunicorn's
    master and worker), from /proc."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            # The fields after the command name (which may hold spaces): state, ppid, ...
            parents[int(stat.parent.name)] = int(stat.read_text().rsplit(")", 1)[1].split()[1])
    tree = {pid}
    grew = True
    while grew:
        below = {child for child, parent in parents.items() if parent in tree} - tree
        tree |= below
        grew = bool(below)
    total = 0
    for member in tree:
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{member}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
    return total


@dataclass
class Flood:
    statuses: Counter[int] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    limited_body: bytes = b""
    held: list[asyncio.StreamWriter] = field(default_factory=list)
    seconds: float = 0.0


async def attempt(port: int, index: int, flood: Flood) -> None:
    """One connection attempt: a fresh TCP connection and an upgrade request. A socket
    let through is held open; a refused one is closed."""
    try:
        async with asyncio.timeout(30):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            request = UPGRADE.format(session_id=f"flood-{index:05d}", port=port)
            writer.write(request.encode())
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head.split(b" ", 2)[1])
            flood.statuses[status] += 1
            if status == 101:
                flood.held.append(writer)
                return
            if status == 429 and not flood.limited_body:
                length = next(
                    int(line.split(b":")[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                )
                flood.limited_body = await reader.readexactly(length)
            writer.close()
    except (OSError, TimeoutError, asyncio.IncompleteReadError) as exc:
        flood.errors[type(exc).__name__] += 1


async def flood_from_one_address(port: int) -> Flood:
    flood = Flood()
    gate = asyncio.Semaphore(IN_FLIGHT)

    async def bounded(index: int) -> None:
        async with gate:
            await attempt(port, index, flood)

    began = time.monotonic()
    await asyncio.gather(*(bounded(i) for i in range(ATTEMPTS)))
    flood.seconds = time.monotonic() - began
    return flood


async def idle_sockets(port: int) -> list[float]:
    """Connect IDLE_SOCKETS sockets that never send; return the seconds after which NGINX
    closed each (bounded: the header timeout plus a margin)."""
    opened = [await asyncio.open_connection("127.0.0.1", port) for _ in range(IDLE_SOCKETS)]
    began = time.monotonic()

    async def closed_after(reader: asyncio.StreamReader) -> float:
        with contextlib.suppress(ConnectionResetError):
            # Nothing is ever sent on these, so the only read is the close.
            assert await reader.read(1) == b""
        return time.monotonic() - began

    bound = PRODUCTION.client_header_timeout_s + 20
    try:
        async with asyncio.timeout(bound):
            return await asyncio.gather(*(closed_after(reader) for reader, _ in opened))
    finally:
        for _, writer in opened:
            writer.close()


async def normal_session(port: int) -> list[str]:
    """goforward.raw from another address through the same front: its final texts."""
    base = f"ws://127.0.0.1:{port}"
    local_addr = (NORMAL_CLIENT, 0)
    async with await open_ws(base, "flood-normal-0001", local_addr=local_addr) as ws:
        started = await start(ws)
        assert started["event"] == "transcription_started", started
        for frame in frames(goforward(), 3200):
            await ws.send(frame)
        await ws.send(json.dumps({"type": "stop_transcription"}))
        run = await collect(ws)
    assert run.close_code == 1000, run.events[-3:]
    return run.final_texts


async def test_flood_from_one_address_is_limited_and_a_normal_session_completes(
    nginx: Proc, gateway: Proc
) -> None:
    # Warm both up (first requests allocate), then take the baseline.
    assert http_get(f"http://127.0.0.1:{nginx.port}/api/v1/health/ready")[0] == 200
    nginx_before, gateway_before = tree_rss_kb(nginx.pid), tree_rss_kb(gateway.pid)

    idle = asyncio.create_task(idle_sockets(nginx.port))
    normal = asyncio.create_task(normal_session(nginx.port))
    flood = await flood_from_one_address(nginx.port)
    # The peak: every let-through socket still held, the idle ones still open.
    nginx_peak, gateway_peak = tree_rss_kb(nginx.pid), tree_rss_kb(gateway.pid)
    try:
        texts = await normal
        idle_closed = await idle
    finally:
        for writer in flood.held:
            writer.close()
    nginx_after, gateway_after = tree_rss_kb(nginx.pid), tree_rss_kb(gateway.pid)
    print(
        f"\nflood: {dict(flood.statuses)} errors {dict(flood.errors)} in {flood.seconds:.1f} s;"
        f" idle sockets closed after {min(idle_closed):.1f}-{max(idle_closed):.1f} s;"
        f" RSS KB nginx {nginx_before}/{nginx_peak}/{nginx_after},"
        f" gateway {gateway_before}/{gateway_peak}/{gateway_after} (before/peak/after)"
    )

    # The limits bite: all but the burst (and what the rate refilled) got 429, and never
    # more sockets were let through than one address may hold.
    assert flood.errors == Counter(), flood.errors
    assert set(flood.statuses) <= {101, 429}, flood.statuses
    let_through = flood.statuses[101]
    assert 1 <= let_through <= PRODUCTION.connections_per_address
    refill = PRODUCTION.requests_per_second * (flood.seconds + 1)
    assert let_through <= PRODUCTION.request_burst + refill
    assert flood.statuses[429] == ATTEMPTS - let_through
    assert flood.limited_body.startswith(b"rate_limited: ")
    # Sockets that never send are closed by NGINX, every one of them.
    assert len(idle_closed) == IDLE_SOCKETS
    # Memory stays bounded.
    assert nginx_peak - nginx_before < NGINX_GROWTH_KB
    assert gateway_peak - gateway_before < GATEWAY_GROWTH_KB
    assert nginx_after - nginx_before < NGINX_GROWTH_KB
    assert gateway_after - gateway_before < GATEWAY_GROWTH_KB
    # A client at another address was served all along, exactly.
    assert texts == ["go forward ten meters"]
    # And once the flood's sockets are closed, its address is served again.
    ready = f"http://127.0.0.1:{nginx.port}/api/v1/health/ready"
    poll_until(lambda: http_get(ready)[0] == 200, 15, "the flooding address served again")
