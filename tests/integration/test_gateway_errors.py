"""Every error code the gateway can produce today, provoked against real processes; and
a bad session never harms a good one."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
import redis
from grpc_health.v1 import health, health_pb2_grpc
from websockets.exceptions import InvalidStatus

from tests.support.audio import goforward, silence
from tests.support.fixtures_gateway import GatewayFactory, http_get, start_gateway
from tests.support.processes import Proc, free_port, poll_until
from tests.support.ws import collect, frames, next_event, open_ws, start, stream_session

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def gateway(log_dir: Path, redis_url: str, asr_synthetic_server: Proc) -> Iterator[Proc]:
    proc = start_gateway(
        log_dir,
        redis_url=redis_url,
        riva_targets=f"127.0.0.1:{asr_synthetic_server.port}",
        name="gateway-errors",
        env={"SERVER__ALLOWED_ORIGINS": "https://app.example"},
    )
    yield proc
    proc.stop()


@pytest.fixture
def base(gateway: Proc) -> str:
    return f"ws://127.0.0.1:{gateway.port}"


def _id(name: str) -> str:
    return f"err-{name}-{free_port()}"


async def test_bad_session_id_is_refused_before_the_upgrade(base: str) -> None:
    with pytest.raises(InvalidStatus) as info:
        await open_ws(base, "bad id")
    assert info.value.response.status_code == 400
    with pytest.raises(InvalidStatus) as info:
        await open_ws(base, "x" * 65)
    assert info.value.response.status_code == 400


async def test_forbidden_origin_is_refused_before_the_upgrade(base: str) -> None:
    with pytest.raises(InvalidStatus) as info:
        await open_ws(base, _id("origin"), origin="https://evil.example")
    assert info.value.response.status_code == 403
    async with await open_ws(base, _id("origin-ok"), origin="https://app.example") as ws:
        assert (await start(ws))["event"] == "transcription_started"


async def test_malformed_json_unknown_type_and_unknown_fields(base: str) -> None:
    async with await open_ws(base, _id("json")) as ws:
        await ws.send("{not json")
        event = await next_event(ws)
        assert (event["code"], event["retryable"]) == ("invalid_message", False)
        await ws.send(json.dumps({"type": "dance"}))
        assert (await next_event(ws))["code"] == "invalid_message"
        await ws.send(json.dumps({"type": "finalize"}))
        event = await next_event(ws)
        assert event["code"] == "invalid_message"
        assert "before start_transcription" in event["message"]
        event = await start(ws, {"sample_rate": 16000})
        assert event["code"] == "invalid_config"
        assert "sample_rate" in event["message"]
        event = await start(ws, {"sample_rate_hz": 1000})
        assert event["code"] == "invalid_config"
        event = await start(ws, {"channels": "two"})
        assert event["code"] == "invalid_config"
        # The socket survived every bad message: a valid start still works.
        assert (await start(ws))["event"] == "transcription_started"
        await ws.send(json.dumps({"type": "start_transcription"}))
        assert (await next_event(ws))["code"] == "invalid_message"


async def test_audio_before_start_closes_with_policy(base: str) -> None:
    async with await open_ws(base, _id("early")) as ws:
        await ws.send(silence(100))
        run = await collect(ws, 10)
    assert [e["code"] for e in run.of("error")] == ["invalid_message"]
    assert run.close_code == 1008


async def test_session_exists(base: str) -> None:
    session_id = _id("dup")
    run = await stream_session(base, session_id, frames(silence(400), 3200))
    assert run.of("transcription_stopped")
    async with await open_ws(base, session_id) as ws:
        event = await start(ws)
        run = await collect(ws, 10)
    assert event["code"] == "session_exists"
    assert run.close_code == 1008


async def test_frame_too_large_closes_1009(base: str) -> None:
    async with await open_ws(base, _id("big")) as ws:
        await start(ws)
        await ws.send(b"\x00" * (300 * 1024))
        run = await collect(ws, 10)
    assert [e["code"] for e in run.of("error")] == ["frame_too_large"]
    assert run.close_code == 1009


async def test_backend_rejection_is_invalid_config(base: str) -> None:
    # The gateway accepts every encoding of PROTOCOL.md; the CPU server decodes no FLAC.
    async with await open_ws(base, _id("flac")) as ws:
        # No audio: a write after the server's abort would turn its status into INTERNAL
        # (grpc/grpc#36066), and the gateway opens the stream at start anyway.
        await start(ws, {"encoding": "flac"})
        run = await collect(ws, 10)
    errors = run.of("error")
    assert [e["code"] for e in errors] == ["invalid_config"]
    assert "not supported" in errors[0]["message"].lower()
    assert run.close_code == 1008


async def test_resume_of_unknown_session(base: str) -> None:
    async with await open_ws(base, _id("resume")) as ws:
        await ws.send(json.dumps({"type": "resume_transcription", "resume_token": "x"}))
        run = await collect(ws, 10)
    assert [e["code"] for e in run.of("error")] == ["session_not_found"]


async def test_limits(
    gateway_factory: GatewayFactory, redis_url: str, asr_synthetic_server: Proc
) -> None:
    """capacity_exhausted, audio_too_fast and the idle timeout, on a gateway with tight
    limits."""
    proc = gateway_factory(
        redis_url=redis_url,
        riva_targets=f"127.0.0.1:{asr_synthetic_server.port}",
        env={
            "LIMITS__MAX_CONCURRENT_SESSIONS": "1",
            "LIMITS__AUDIO_BURST_S": "2",
            "LIMITS__MAX_REALTIME_FACTOR": "1",
            "LIMITS__IDLE_TIMEOUT_S": "1.5",
        },
    )
    base = f"ws://127.0.0.1:{proc.port}"
    async with await open_ws(base, _id("first")) as first:
        assert (await start(first))["event"] == "transcription_started"
        # Over capacity: refused before the upgrade with a retry hint (NGINX tries
        # another gateway); test_bounds.py shows the 1013 of a start that races the cap.
        with pytest.raises(InvalidStatus) as refused:
            await open_ws(base, _id("second"))
        assert refused.value.response.status_code == 503
        assert int(refused.value.response.headers["Retry-After"]) > 0
        assert b"capacity_exhausted" in refused.value.response.body
        # The first session was not harmed: it streams, and 10 s of audio at once is
        # over 1x real time after a 2 s burst.
        for frame in frames(silence(10_000), 3200):
            await first.send(frame)
        run = await collect(first, 10)
    codes = [e["code"] for e in run.of("error")]
    assert codes == ["audio_too_fast"]
    assert run.close_code == 1008

    # Idle: no audio and no keepalive for 1.5 s ends the session; keepalives keep it.
    ready = f"http://127.0.0.1:{proc.port}/api/v1/health/ready"
    await asyncio.to_thread(poll_until, lambda: http_get(ready)[0] == 200, 10, "a free slot")
    async with await open_ws(base, _id("idle")) as ws:
        await start(ws)
        for _ in range(4):
            await ws.send(json.dumps({"type": "keepalive"}))
            await asyncio.sleep(0.5)
        await ws.send(json.dumps({"type": "stop_transcription"}))
        run = await collect(ws, 10)
    assert run.of("transcription_stopped"), run.events
    await asyncio.to_thread(poll_until, lambda: http_get(ready)[0] == 200, 10, "a free slot")
    async with await open_ws(base, _id("idle2")) as ws:
        await start(ws)
        run = await collect(ws, 10)
    assert [e["code"] for e in run.of("error")] == ["session_expired"]
    assert run.close_code == 1008


async def test_backend_unavailable(gateway_factory: GatewayFactory, redis_url: str) -> None:
    proc = gateway_factory(redis_url=redis_url, riva_targets=f"127.0.0.1:{free_port()}")
    base = f"ws://127.0.0.1:{proc.port}"
    status, body = http_get(f"http://127.0.0.1:{proc.port}/api/v1/health/ready")
    assert status == 503
    assert json.loads(body)["checks"]["speech_backend"] is False
    async with await open_ws(base, _id("nobackend")) as ws:
        await start(ws)
        await ws.send(silence(100))
        run = await collect(ws, 15)
    errors = run.of("error")
    assert [e["code"] for e in errors] == ["backend_unavailable"]
    assert errors[0]["retryable"] is True
    assert run.close_code == 1013


async def test_redis_unreachable_refuses_new_sessions(
    gateway_factory: GatewayFactory, asr_synthetic_server: Proc
) -> None:
    proc = gateway_factory(
        redis_url=f"redis://127.0.0.1:{free_port()}/0",
        riva_targets=f"127.0.0.1:{asr_synthetic_server.port}",
    )
    status, body = http_get(f"http://127.0.0.1:{proc.port}/api/v1/health/ready")
    assert status == 503
    assert json.loads(body)["checks"]["redis"] is False
    async with await open_ws(f"ws://127.0.0.1:{proc.port}", _id("noredis")) as ws:
        event = await start(ws)
        run = await collect(ws, 10)
    assert (event["code"], event["retryable"]) == ("internal_error", True)
    assert run.close_code == 1013


async def test_a_bad_session_does_not_disturb_a_good_one(base: str, redis_url: str) -> None:
    audio = frames(goforward(), 3200)

    async def bad() -> None:
        async with await open_ws(base, _id("bad")) as ws:
            await start(ws)
            await ws.send("{broken")
            await ws.send(b"\x00" * (300 * 1024))
            await collect(ws, 10)

    good, _ = await asyncio.gather(stream_session(base, _id("good"), audio), bad())
    assert good.of("transcription_stopped")
    assert not good.of("error")
    client = redis.Redis.from_url(redis_url)
    assert client.ping()


async def test_backend_error_from_a_server_without_riva(
    gateway_factory: GatewayFactory, redis_url: str
) -> None:
    """A real gRPC server that serves only the health service (a stand-in for a
    misconfigured target): the stream fails UNIMPLEMENTED, which is `backend_error`."""
    server = grpc.aio.server()
    health_pb2_grpc.add_HealthServicer_to_server(health.aio.HealthServicer(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        proc = gateway_factory(redis_url=redis_url, riva_targets=f"127.0.0.1:{port}")
        async with await open_ws(f"ws://127.0.0.1:{proc.port}", _id("unimpl")) as ws:
            await start(ws)
            run = await collect(ws, 15)
        errors = run.of("error")
        assert [e["code"] for e in errors] == ["backend_error"]
        # UNIMPLEMENTED, or INTERNAL when the server's reset races the gateway's writes
        # (seen on a loaded CI machine: grpc-core reports the RST_STREAM, not the status).
        assert errors[0]["message"] in {
            "speech backend error (UNIMPLEMENTED)",
            "speech backend error (INTERNAL)",
        }
        assert errors[0]["retryable"] is False
        assert run.close_code == 1011
    finally:
        await server.stop(None)
