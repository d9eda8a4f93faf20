"""Fleet-wide quotas end to end: real gateway processes (gunicorn), one real Redis, the
synthetic speech server. Until authentication lands every session is the anonymous
tenant's (""), so these quotas bound the gateways' whole traffic; each test has its own
Redis key prefix, so its counts are its own."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection

from tests.support.fixtures_gateway import GatewayFactory
from tests.support.processes import Proc
from tests.support.ws import collect, next_event, open_ws, start

pytestmark = pytest.mark.integration

PCM_MS = 32  # bytes of 16 kHz 16-bit mono audio per millisecond


def base(gateway: Proc) -> str:
    return f"ws://127.0.0.1:{gateway.port}"


def two_gateways(
    gateway_factory: GatewayFactory, redis_url: str, asr: Proc, **quotas: str
) -> tuple[Proc, Proc]:
    env = {
        "REDIS__KEY_PREFIX": f"quota{time.time_ns()}",
        # Leases renewed every second and gone 4 s after a pod's last renewal.
        "QUOTAS__RENEW_INTERVAL_S": "1",
        "QUOTAS__LEASE_S": "4",
        "QUOTAS__MAX_SESSIONS": "0",
        "QUOTAS__STARTS_PER_S": "0",
        "QUOTAS__AUDIO_HOURS_PER_DAY": "0",
        **{f"QUOTAS__{name.upper()}": value for name, value in quotas.items()},
    }
    target = f"127.0.0.1:{asr.port}"
    gateways = tuple(
        gateway_factory(redis_url=redis_url, riva_targets=target, env=env) for _ in range(2)
    )
    return gateways  # type: ignore[return-value]


@contextlib.asynccontextmanager
async def started(gateway: Proc, session_id: str) -> AsyncIterator[ClientConnection]:
    """A session started on `gateway`, open until the block ends."""
    async with await open_ws(base(gateway), session_id) as ws:
        event = await start(ws)
        assert event["event"] == "transcription_started", event
        yield ws


async def refused(gateway: Proc, session_id: str) -> tuple[dict[str, Any], int | None]:
    """A start that the gateway refuses: its error event and the close code."""
    async with await open_ws(base(gateway), session_id) as ws:
        event = await start(ws)
        assert event["event"] == "error", event
        run = await collect(ws, wait_s=10)
        return event, run.close_code


async def stop(ws: ClientConnection) -> dict[str, Any]:
    await ws.send(json.dumps({"type": "stop_transcription"}))
    run = await collect(ws, wait_s=30)
    (stopped,) = run.of("transcription_stopped")
    return stopped


async def test_the_cap_holds_across_two_gateways_and_frees_when_a_session_stops(
    gateway_factory: GatewayFactory, redis_url: str, asr_synthetic_server: Proc
) -> None:
    gw1, gw2 = two_gateways(gateway_factory, redis_url, asr_synthetic_server, max_sessions="2")
    async with started(gw1, "cap-one-0001"), started(gw2, "cap-two-0002") as second:
        for gateway in (gw1, gw2):
            error, close_code = await refused(gateway, "cap-three-0003")
            assert error["code"] == "quota_exceeded"
            assert error["retryable"] is True
            assert error["retry_after_s"] > 0
            assert close_code == 1013
        await stop(second)
        # Its place is free at once (released at its end, not at its lease's expiry).
        async with started(gw1, "cap-three-0003"):
            error, _ = await refused(gw2, "cap-four-0004")
            assert error["code"] == "quota_exceeded"


async def test_a_killed_gateways_sessions_stop_counting_once_their_leases_expire(
    gateway_factory: GatewayFactory, redis_url: str, asr_synthetic_server: Proc
) -> None:
    gw1, gw2 = two_gateways(gateway_factory, redis_url, asr_synthetic_server, max_sessions="2")
    async with started(gw2, "kill-two-0002"):
        async with started(gw1, "kill-one-0001"):
            gw1.kill_group(signal.SIGKILL)
        # Its session still counts: its lease has not run out yet.
        error, _ = await refused(gw2, "kill-three-0003")
        assert error["code"] == "quota_exceeded"
        killed_at = time.monotonic()
        # Within the lease (4 s) plus a renewal, it stops counting.
        while True:
            with contextlib.suppress(AssertionError):
                async with started(gw2, "kill-three-0003"):
                    break
            assert time.monotonic() - killed_at < 20, "the killed gateway's session still counts"
            await asyncio.sleep(0.5)


async def test_the_start_rate_bites_and_says_when_to_come_back(
    gateway_factory: GatewayFactory, redis_url: str, asr_synthetic_server: Proc
) -> None:
    gw1, gw2 = two_gateways(
        gateway_factory, redis_url, asr_synthetic_server, starts_per_s="0.1", start_burst="2"
    )
    async with started(gw1, "rate-one-0001"), started(gw2, "rate-two-0002"):
        error, close_code = await refused(gw1, "rate-three-0003")
        assert error["code"] == "rate_limited"
        assert error["retryable"] is True
        assert 0 < error["retry_after_s"] <= 10
        assert close_code == 1013


async def test_the_days_audio_quota_bites_fleet_wide(
    gateway_factory: GatewayFactory, redis_url: str, asr_synthetic_server: Proc
) -> None:
    # 0.0005 h = 1.8 s of audio a day, for the whole (anonymous) tenant.
    gw1, gw2 = two_gateways(
        gateway_factory, redis_url, asr_synthetic_server, audio_hours_per_day="0.0005"
    )
    async with started(gw1, "audio-one-0001") as ws:
        await ws.send(bytes(3000 * PCM_MS))  # 3 s of silence
        stopped = await stop(ws)
        assert stopped["audio_ms"] == 3000
    # Counted when the session ended: the next start, on the other gateway, is refused.
    error, close_code = await refused(gw2, "audio-two-0002")
    assert error["code"] == "quota_exceeded"
    assert error["retryable"] is False
    assert 0 < error["retry_after_s"] <= 86400
    assert close_code == 1008


async def test_a_resume_on_another_gateway_is_admitted_at_the_cap(
    gateway_factory: GatewayFactory, redis_url: str, asr_synthetic_server: Proc
) -> None:
    gw1, gw2 = two_gateways(gateway_factory, redis_url, asr_synthetic_server, max_sessions="1")
    async with await open_ws(base(gw1), "resume-one-0001") as ws:
        token = (await start(ws))["resume_token"]
        gw1.kill_group(signal.SIGKILL)
    # The session counts (the cap of 1 is full), yet its own resume is not refused: a
    # resume counts once, under the same key.
    async with await open_ws(base(gw2), "resume-one-0001") as ws:
        message = {"type": "resume_transcription", "resume_token": token, "last_seq": 0}
        await ws.send(json.dumps(message))
        assert (await next_event(ws))["event"] == "transcription_resumed"
        error, _ = await refused(gw2, "resume-two-0002")
        assert error["code"] == "quota_exceeded"
