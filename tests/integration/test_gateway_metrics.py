"""A pod's /metrics under gunicorn with two workers adds both workers up, and forgets a
worker that died (prometheus-client multiprocess mode)."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import pytest
from websockets.asyncio.client import ClientConnection

from tests.support.fixtures_gateway import GatewayFactory, admin_port_of
from tests.support.metrics import metric_value, samples, scrape
from tests.support.processes import Proc, poll_until
from tests.support.ws import open_ws, start

pytestmark = pytest.mark.integration


def worker_pids(master: int) -> list[int]:
    children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    return [int(pid) for pid in children]


def established_inodes(port: int) -> set[str]:
    """Socket inodes of established TCP connections to local `port`."""
    inodes = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local_port = int(fields[1].rsplit(":", 1)[1], 16)
        if local_port == port and fields[3] == "01":
            inodes.add(fields[9])
    return inodes


def connections_of(pid: int, inodes: set[str]) -> int:
    count = 0
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:[") and target[8:-1] in inodes:
            count += 1
    return count


def per_worker(gateway: Proc) -> dict[int, int]:
    inodes = established_inodes(gateway.port)
    return {pid: connections_of(pid, inodes) for pid in worker_pids(gateway.pid)}


@pytest.fixture
def gateway(gateway_factory: GatewayFactory, redis_url: str, asr_synthetic_server: Proc) -> Proc:
    gw = gateway_factory(
        redis_url=redis_url,
        riva_targets=f"127.0.0.1:{asr_synthetic_server.port}",
        env={"WEB_CONCURRENCY": "2"},
    )
    poll_until(lambda: len(worker_pids(gw.pid)) == 2, 20, "two workers")
    # Each worker reports its capacity once its lifespan has started.
    poll_until(
        lambda: metric_value(admin_port_of(gw), "gateway_sessions_capacity") == 2 * 500,
        20,
        "both workers",
    )
    return gw


def test_metrics_answers_200_without_a_redirect(gateway: Proc) -> None:
    status, text = scrape(admin_port_of(gateway))
    assert status == 200
    found = samples(text)
    assert found["gateway_sessions_capacity"] == 2 * 500  # two workers, 500 each
    assert found["gateway_worker_starts_total"] == 2
    assert 'gateway_sessions_rejected_total{reason="quota"}' in found


async def test_active_sessions_add_up_across_workers_and_forget_a_killed_one(
    gateway: Proc,
) -> None:
    sockets: list[ClientConnection] = []
    base = f"ws://127.0.0.1:{gateway.port}"
    try:
        # Open sessions until both workers hold some (the kernel picks the worker).
        for n in range(40):
            ws = await open_ws(base, f"metrics-mp-{os.getpid()}-{n:03d}")
            started = await start(ws)
            assert started["event"] == "transcription_started", started
            await ws.send(b"\x00" * 3200)
            sockets.append(ws)
            if len(sockets) >= 4 and all(per_worker(gateway).values()):
                break
        held = per_worker(gateway)
        assert all(held.values()), f"sessions did not spread over both workers: {held}"
        assert sum(held.values()) == len(sockets)
        await asyncio.to_thread(
            poll_until,
            lambda: metric_value(admin_port_of(gateway), "gateway_sessions_active") == len(sockets),
            10,
            "the pod's active sessions to count both workers",
        )
        # The audio frames are folded in by the housekeeping tick.
        await asyncio.to_thread(
            poll_until,
            lambda: (
                metric_value(admin_port_of(gateway), "gateway_ws_received_bytes_total")
                >= 3200 * len(sockets)
            ),
            10,
            "received bytes to be folded in",
        )

        victim, survivor = sorted(held, key=held.__getitem__)
        os.kill(victim, signal.SIGKILL)
        await asyncio.to_thread(
            poll_until,
            lambda: (
                metric_value(admin_port_of(gateway), "gateway_sessions_active") == held[survivor]
            ),
            15,
            "the killed worker's sessions to stop counting",
        )
        # gunicorn starts a new worker; the restart shows.
        await asyncio.to_thread(
            poll_until,
            lambda: metric_value(admin_port_of(gateway), "gateway_worker_starts_total") == 3,
            20,
            "the replacement worker to count its start",
        )
        assert metric_value(admin_port_of(gateway), "gateway_sessions_active") == held[survivor]
    finally:
        for ws in sockets:
            await ws.close()
    await asyncio.to_thread(
        poll_until,
        lambda: metric_value(admin_port_of(gateway), "gateway_sessions_active") == 0,
        15,
        "every session to end",
    )
