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

from speech_client import Audio, AudioFormat, Transcript, transcribe
from tests.support.fixtures_asr import asr_argv, asr_health_serving
from tests.support.fixtures_gateway import GatewayFactory, http_get
from tests.support.processes import Proc, free_port, poll_until, start
from tests.support.riva_direct import direct_finals
from tests.support.ws import collect, frames, open_ws, session_url
from tests.support.ws import start as start_session

pytestmark = pytest.mark.integration

PCM16 = AudioFormat(encoding="pcm16", sample_rate_hz=16000, channels=1)


def metric(gateway: Proc, prefix: str) -> float:
    _, body = http_get(f"http://127.0.0.1:{gateway.port}/metrics")
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
    port = free_port()
    # Chatty results (an interim per 10 ms of audio, each with every word of a minute-long
    # utterance) fill the socket buffers quickly.
    server = start(
        "asr-chatty",
        asr_argv(port, "synthetic", "--interim-every", "0.01", "--final-every", "60"),
        log_dir,
        port=port,
        ready=lambda: asr_health_serving(port),
    )
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
