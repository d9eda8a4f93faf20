"""Bounded under any client (issue 13): oversized text messages and config lists are
refused, and a client that stops reading is ended with `slow_consumer` while a normal
session on the same gateway completes exactly. Real speech server, Redis and gateway."""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import socket
import time
from pathlib import Path

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from speech_client import Audio, AudioFormat, Transcript, transcribe
from tests.support.fixtures_asr import start_asr
from tests.support.fixtures_gateway import GatewayFactory, admin_port_of, http_get
from tests.support.processes import Proc, poll_until
from tests.support.riva_direct import direct_finals
from tests.support.ws import collect, frames, next_event, open_ws, session_url, stream_session
from tests.support.ws import start as start_session

pytestmark = pytest.mark.integration

PCM16 = AudioFormat(encoding="pcm16", sample_rate_hz=16000, channels=1)


def metric(gateway: Proc, prefix: str) -> float:
    _, body = http_get(f"http://127.0.0.1:{admin_port_of(gateway)}/metrics")
    for line in body.decode().splitlines():
        if line.startswith(prefix):
            return float(line.split()[-1])
    return 0.0


def session_errors(gateway: Proc, code: str) -> float:
    return metric(gateway, f'gateway_session_errors_total{{code="{code}"}}')


def active_sessions(gateway: Proc) -> float:
    return metric(gateway, "gateway_sessions_active ")


def noise(seconds: float, seed: int) -> bytes:
    return random.Random(seed).randbytes(int(seconds * 32000))


async def test_oversized_text_and_config_lists_are_refused(
    redis_url: str, gateway_factory: GatewayFactory, asr_synthetic_server: Proc
) -> None:
    gateway = gateway_factory(
        redis_url=redis_url, riva_targets=f"127.0.0.1:{asr_synthetic_server.port}"
    )
    url = f"ws://127.0.0.1:{gateway.port}"
    # 3.9 MB of boosted phrases, the case that used to be kept in Redis for an hour.
    huge = {"boosted_phrases": [{"phrases": ["word"] * 1000, "boost": 1.0}] * 100}
    async with await open_ws(url, f"huge-{time.time_ns()}") as ws:
        event = await start_session(ws, huge)
        run = await collect(ws, 10)
    assert event["code"] == "frame_too_large"
    assert len(event["message"]) < 200
    assert run.close_code == 1009
    # Within the message limit, each list and phrase is bounded too.
    long_phrase = {"boosted_phrases": [{"phrases": ["x" * 5000]}]}
    async with await open_ws(url, f"long-{time.time_ns()}") as ws:
        event = await start_session(ws, long_phrase)
    assert event["code"] == "invalid_config"
    assert "x" * 100 not in event["message"]
    # A text message over the limit mid-session.
    async with await open_ws(url, f"mid-{time.time_ns()}") as ws:
        await start_session(ws)
        await ws.send(json.dumps({"type": "keepalive", "pad": "y" * 20000}))
        run = await collect(ws, 10)
    assert [e["code"] for e in run.of("error")] == ["frame_too_large"]
    assert run.close_code == 1009


async def test_a_client_that_stops_reading_is_a_slow_consumer(
    log_dir: Path, redis_url: str, gateway_factory: GatewayFactory
) -> None:
    # Chatty results (an interim per 10 ms of audio, each with every word of a minute-long
    # utterance) fill the socket buffers quickly.
    server = start_asr(
        "asr-chatty", "synthetic", log_dir, "--interim-every", "0.01", "--final-every", "60"
    )
    port = server.port
    try:
        target = f"127.0.0.1:{port}"
        gateway = gateway_factory(
            redis_url=redis_url,
            riva_targets=target,
            env={
                "LIMITS__SLOW_CONSUMER_TIMEOUT_S": "2",
                "LIMITS__MAX_REALTIME_FACTOR": "100",
                "LIMITS__AUDIO_BURST_S": "600",
            },
        )
        url = f"ws://127.0.0.1:{gateway.port}"
        audio = noise(8.0, 21)
        reference = await direct_finals(target, frames(audio, 3200))

        async def normal() -> list[tuple[str, int]]:
            finals: list[tuple[str, int]] = []
            async with transcribe(url, Audio(audio, PCM16), session_id=f"ok-{time.time_ns()}") as s:
                async for event in s:
                    if isinstance(event, Transcript) and event.is_final:
                        finals.append((event.text, int(event.raw["end_ms"])))
            return finals

        async def stalled() -> float:
            """A client with a small receive buffer that never reads: seconds until the
            gateway ended its session."""
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.connect(("127.0.0.1", gateway.port))
            ws = await connect(
                session_url(url, f"stall-{time.time_ns()}"),
                sock=sock,
                compression=None,
                max_queue=1,
                ping_interval=None,
            )
            config = {"enable_word_time_offsets": True}
            await ws.send(json.dumps({"type": "start_transcription", "config": config}))
            began = time.monotonic()
            with contextlib.suppress(Exception):
                async with asyncio.timeout(40):
                    for frame in frames(noise(120.0, 22), 320):
                        await ws.send(frame)
            await asyncio.to_thread(
                poll_until,
                lambda: session_errors(gateway, "slow_consumer") == 1,
                40,
                "the gateway to end the stalled session",
            )
            waited = time.monotonic() - began
            await ws.close()
            return waited

        finals, waited = await asyncio.gather(normal(), stalled())
        assert finals == reference
        # Ended by the gateway's own check, before uvicorn's pings (~38 s) would reset it.
        assert waited < 30
        await asyncio.to_thread(
            poll_until, lambda: active_sessions(gateway) == 0, 10, "no session left"
        )
    finally:
        server.stop()


async def test_a_worker_at_its_cap_refuses_new_sessions_but_takes_its_resumes(
    redis_url: str, gateway_factory: GatewayFactory, asr_synthetic_server: Proc
) -> None:
    gateway = gateway_factory(
        redis_url=redis_url,
        riva_targets=f"127.0.0.1:{asr_synthetic_server.port}",
        env={"LIMITS__MAX_CONCURRENT_SESSIONS": "2"},
    )
    url = f"ws://127.0.0.1:{gateway.port}"
    # Three sockets upgraded while none has started: the third start finds the cap taken
    # (sessions being opened count) and gets 1013 with retry_after_s.
    sockets = [await open_ws(url, f"cap-{i}-{time.time_ns()}") for i in range(3)]
    answers = await asyncio.gather(*(start_session(ws) for ws in sockets))
    events = sorted(a["event"] for a in answers)
    assert events == ["error", "transcription_started", "transcription_started"], answers
    refused = next(a for a in answers if a["event"] == "error")
    assert (refused["code"], refused["retryable"]) == ("capacity_exhausted", True)
    assert refused["retry_after_s"] > 0
    loser = sockets[answers.index(refused)]
    assert (await collect(loser, 10)).close_code == 1013
    # At the cap: not ready, and a new session is refused before the upgrade.
    assert http_get(f"http://127.0.0.1:{gateway.port}/api/v1/health/ready")[0] == 503
    with pytest.raises(InvalidStatus) as denied:
        await open_ws(url, f"cap-new-{time.time_ns()}")
    assert denied.value.response.status_code == 503
    assert denied.value.response.headers["Retry-After"] == "1"
    # A resume of a session it serves is still taken.
    live = [ws for ws, a in zip(sockets, answers, strict=True) if a is not refused]
    started = next(a for a in answers if a is not refused)
    async with await open_ws(url, started["session_id"]) as again:
        resume = {"type": "resume_transcription", "resume_token": started["resume_token"]}
        await again.send(json.dumps(resume))
        assert (await next_event(again))["event"] == "transcription_resumed"
    for ws in live:
        await ws.close()


async def test_a_worker_whose_loop_lags_refuses_new_sessions(
    redis_url: str, gateway_factory: GatewayFactory, asr_synthetic_server: Proc
) -> None:
    """Flooded by sessions sending audio as fast as they can, a worker's event loop falls
    behind (here: over 1 ms, which the flood makes sure of): it then refuses new sockets
    before the upgrade and reports not ready, while the sessions it took complete."""
    target = f"127.0.0.1:{asr_synthetic_server.port}"
    gateway = gateway_factory(
        redis_url=redis_url, riva_targets=target, env={"LIMITS__MAX_LOOP_LAG_S": "0.001"}
    )
    url = f"ws://127.0.0.1:{gateway.port}"
    audio = noise(25.0, 31)
    reference = await direct_finals(target, frames(audio, 3200))

    async def flood(index: int) -> list[tuple[str, int]] | None:
        """The session's finals, or None if it was refused before the upgrade."""
        try:
            run = await stream_session(url, f"flood-{index}-{time.time_ns()}", frames(audio, 320))
        except InvalidStatus as denied:
            return None if denied.response.status_code == 503 else []
        return [(e["alternatives"][0]["transcript"], e["end_ms"]) for e in run.finals]

    floods = [asyncio.create_task(flood(i)) for i in range(60)]
    refused: list[int] = []
    readiness: list[int] = []
    try:
        async with asyncio.timeout(60):
            while not (refused and 503 in readiness) and not all(f.done() for f in floods):
                readiness.append(
                    (await asyncio.to_thread(http_get, f"{url.replace('ws', 'http')}"
                                             "/api/v1/health/ready"))[0]
                )  # fmt: skip
                try:
                    ws = await open_ws(url, f"late-{time.time_ns()}")
                except InvalidStatus as denied:
                    refused.append(denied.response.status_code)
                else:
                    await ws.close()
                await asyncio.sleep(0.05)
    finally:
        results = await asyncio.gather(*floods)
    assert set(refused) == {503}
    assert 503 in readiness
    admitted = [result for result in results if result is not None]
    assert admitted, "the flood's first sessions were taken"
    assert all(result == reference for result in admitted)
