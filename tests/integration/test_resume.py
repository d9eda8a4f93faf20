"""Nothing lost: resume on any pod after a gateway dies, backend failover, drain, one
driver per session, and Redis faults. Real Redis, NGINX, gateways and speech servers."""

from __future__ import annotations

import asyncio
import json
import random
import signal
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
from websockets.exceptions import InvalidStatus

from speech_client import Audio, AudioFormat, Transcript, transcribe
from tests.support.audio import librivox_clips, silence
from tests.support.fixtures_asr import asr_argv, asr_health_serving
from tests.support.fixtures_gateway import gateways_behind_nginx, http_get, start_gateway
from tests.support.processes import Proc, free_port, poll_until, redis_argv, start
from tests.support.riva_direct import direct_finals
from tests.support.ws import collect, frames, next_event, open_ws
from tests.support.ws import start as start_session

pytestmark = pytest.mark.integration

PCM16 = AudioFormat(encoding="pcm16", sample_rate_hz=16000, channels=1)


def librivox_audio() -> bytes:
    pause = silence(500)
    return pause.join(pcm for _, pcm, _ in librivox_clips()) + pause


def noise(seconds: float, seed: int) -> bytes:
    """Audio for the synthetic engine, whose words follow from the audio's content."""
    return random.Random(seed).randbytes(int(seconds * 32000))


def direct_client(redis_url: str) -> redis.Redis | redis.RedisCluster:
    """A client for the node at `redis_url`, or for its whole Cluster when it is one (a
    plain client cannot follow a Cluster's redirections)."""
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    if client.info("cluster").get("cluster_enabled"):
        client.close()
        return redis.RedisCluster.from_url(redis_url, decode_responses=True)
    return client


def owner_of(redis_url: str, session_id: str) -> str:
    meta = direct_client(redis_url).hgetall(f"speech:{{{session_id}}}:meta")
    return str(meta.get("owner", ""))


def on_first_final_signal_owner(
    redis_url: str, session_id: str, pods: dict[str, Proc], act: Callable[[Proc], None]
) -> tuple[list[str], Callable[[int], None]]:
    """An `on_final` callback that, at the first final, applies `act` to the gateway
    owning the session; the list names the pod it acted on."""
    done: list[str] = []

    def on_final(count: int) -> None:
        if count == 1 and not done:
            owner = owner_of(redis_url, session_id)
            done.append(owner)
            act(pods[owner])

    return done, on_final


def post(url: str, timeout: float = 60.0) -> dict[str, object]:
    request = urllib.request.Request(url, method="POST")
    with urllib.request.urlopen(request, timeout=timeout) as response:
        result: dict[str, object] = json.loads(response.read())
        return result


async def run_sdk(
    url: str,
    audio: bytes,
    session_id: str,
    speed: float,
    on_final: object = None,
    seen: list[str] | None = None,
) -> tuple[list[Transcript], int, int]:
    """(finals, reconnects, audio_ms) of one SDK session; `on_final(n)` after each final;
    the name of every event in `seen` if given."""
    finals: list[Transcript] = []
    audio_ms = 0
    async with transcribe(url, Audio(audio, PCM16), session_id=session_id, speed=speed) as session:
        async for event in session:
            if seen is not None:
                seen.append(str(event.raw.get("event")))
            if isinstance(event, Transcript) and event.is_final:
                finals.append(event)
                if callable(on_final):
                    on_final(len(finals))
            elif event.raw.get("event") == "transcription_stopped":
                audio_ms = int(event.raw["audio_ms"])
    return finals, session.reconnects, audio_ms


def signature(finals: list[Transcript]) -> list[tuple[int, str, int]]:
    return [(f.seq, f.text, int(f.raw["end_ms"])) for f in finals]


@pytest.fixture(scope="module")
def sphinx_fleet(log_dir: Path, redis_url: str, asr_server: Proc) -> Iterator[dict[str, Proc]]:
    with gateways_behind_nginx(
        log_dir,
        redis_url=redis_url,
        riva_targets=f"127.0.0.1:{asr_server.port}",
        names=["gateway-r1", "gateway-r2"],
    ) as (pods, nginx):
        yield {"nginx": nginx, **pods}


async def test_gateway_killed_mid_stream_resumes_on_the_other(
    log_dir: Path, redis_url: str, asr_server: Proc
) -> None:
    target = f"127.0.0.1:{asr_server.port}"
    with gateways_behind_nginx(
        log_dir, redis_url=redis_url, riva_targets=target, names=["gateway-k1", "gateway-k2"]
    ) as (pods, nginx):
        audio = librivox_audio()
        reference = await direct_finals(target, frames(audio, 3200))
        session_id = f"kill-gateway-{time.time_ns()}"
        killed, kill_owner = on_first_final_signal_owner(
            redis_url, session_id, pods, lambda pod: pod.kill_group(signal.SIGKILL)
        )
        url = f"ws://127.0.0.1:{nginx.port}"
        finals, reconnects, _ = await run_sdk(url, audio, session_id, 3.0, kill_owner)

        assert killed, "a gateway was killed mid-stream"
        assert reconnects >= 1
        assert owner_of(redis_url, session_id) not in killed
        assert [(f.text, int(f.raw["end_ms"])) for f in finals] == reference
        assert [f.seq for f in finals] == list(range(1, len(reference) + 1))


async def test_speech_server_killed_mid_stream_fails_over(log_dir: Path, redis_url: str) -> None:
    servers = []
    for name in ("asr-fo-a", "asr-fo-b"):
        port = free_port()
        servers.append(
            start(
                name,
                asr_argv(port, "pocketsphinx"),
                log_dir,
                port=port,
                ready=lambda p=port: asr_health_serving(p),
                ready_timeout=60,
            )
        )
    gateway = start_gateway(
        log_dir,
        redis_url=redis_url,
        riva_targets=",".join(f"127.0.0.1:{s.port}" for s in servers),
        name="gateway-fo",
    )
    try:
        audio = librivox_audio()
        reference = await direct_finals(f"127.0.0.1:{servers[1].port}", frames(audio, 3200))

        def kill_first_server(count: int) -> None:
            # With one stream, the balancer placed it on the first endpoint.
            if count == 1:
                servers[0].kill(signal.SIGKILL)

        finals, reconnects, _ = await run_sdk(
            f"ws://127.0.0.1:{gateway.port}", audio, "kill-asr-0001", 3.0, kill_first_server
        )
        assert not servers[0].alive()
        assert reconnects == 0, "the client saw a delay, not a reconnect"
        assert [(f.text, int(f.raw["end_ms"])) for f in finals] == reference
        assert [f.seq for f in finals] == list(range(1, len(reference) + 1))
    finally:
        gateway.stop()
        for server in servers:
            server.stop()


async def test_drain_moves_20_sessions_without_loss(
    log_dir: Path, redis_url: str, asr_synthetic_server: Proc
) -> None:
    target = f"127.0.0.1:{asr_synthetic_server.port}"
    with gateways_behind_nginx(
        log_dir, redis_url=redis_url, riva_targets=target, names=["gateway-d1", "gateway-d2"]
    ) as (pods, nginx):
        gateways = list(pods.values())
        audios = [noise(8.0, seed) for seed in range(20)]
        references = await asyncio.gather(*(direct_finals(target, frames(a, 3200)) for a in audios))
        url = f"ws://127.0.0.1:{nginx.port}"
        streaming: set[int] = set()
        all_streaming = asyncio.Event()

        def on_final(index: int) -> object:
            def mark(count: int) -> None:
                streaming.add(index)
                if len(streaming) == len(audios):
                    all_streaming.set()

            return mark

        runs = [
            asyncio.create_task(
                run_sdk(url, a, f"drain-{i:04d}-{time.time_ns()}", 1.0, on_final(i))
            )
            for i, a in enumerate(audios)
        ]
        # Drain gateway 1 once every session has had a final (2 s of audio).
        await asyncio.wait_for(all_streaming.wait(), 30)
        drained = await asyncio.to_thread(
            post, f"http://127.0.0.1:{gateways[0].port}/admin/drain?timeout_s=20"
        )
        results = await asyncio.gather(*runs)

        assert drained["remaining"] == 0
        assert drained["sessions"] > 0, "some sessions were on the drained gateway"
        assert sum(reconnects for _, reconnects, _ in results) >= drained["sessions"]
        for (finals, _, audio_ms), reference in zip(results, references, strict=True):
            assert [(f.text, int(f.raw["end_ms"])) for f in finals] == reference
            assert [f.seq for f in finals] == list(range(1, len(reference) + 1))
            assert audio_ms == 8000
        # A drained gateway is not ready and refuses new sockets before the upgrade.
        status, _ = await asyncio.to_thread(
            http_get, f"http://127.0.0.1:{gateways[0].port}/api/v1/health/ready"
        )
        assert status == 503
        with pytest.raises(InvalidStatus) as refused:
            await open_ws(f"ws://127.0.0.1:{gateways[0].port}", f"late-{time.time_ns()}")
        assert refused.value.response.status_code == 503


async def test_two_resumes_at_once_leave_exactly_one_driver(
    log_dir: Path, redis_url: str, asr_synthetic_server: Proc
) -> None:
    target = f"127.0.0.1:{asr_synthetic_server.port}"
    gateways = [
        start_gateway(log_dir, redis_url=redis_url, riva_targets=target, name=f"gateway-t{i}")
        for i in (1, 2)
    ]
    try:
        session_id = f"twice-{time.time_ns()}"
        first = f"ws://127.0.0.1:{gateways[0].port}"
        async with await open_ws(first, session_id) as ws:
            started = await start_session(ws)
            for frame in frames(noise(4.5, 7), 3200):
                await ws.send(frame)
            while (await next_event(ws))["event"] != "audio_committed":
                pass
        token = started["resume_token"]
        resume = json.dumps({"type": "resume_transcription", "resume_token": token, "last_seq": 0})

        sockets = [await open_ws(f"ws://127.0.0.1:{g.port}", session_id) for g in gateways]
        await asyncio.gather(*(ws.send(resume) for ws in sockets))
        # Each is answered; then the one that lost the race is told and closed with 1008.
        for ws in sockets:
            while (await next_event(ws))["event"] != "transcription_resumed":
                pass
        done, pending = await asyncio.wait(
            [asyncio.create_task(collect(ws, 10)) for ws in sockets],
            return_when=asyncio.FIRST_COMPLETED,
        )
        assert len(done) == 1
        lost = next(iter(done)).result()
        assert lost.close_code == 1008
        assert [(e["code"], e["retryable"]) for e in lost.of("error")] == [
            ("session_taken_over", False)
        ]
        survivor = sockets[[ws.close_code is None for ws in sockets].index(True)]
        await survivor.send(json.dumps({"type": "stop_transcription"}))
        run = await next(iter(pending))
        assert run.of("transcription_stopped"), run.events
        assert run.close_code == 1000
    finally:
        for g in gateways:
            g.stop()


async def test_resume_refusals(sphinx_fleet: dict[str, Proc], redis_url: str) -> None:
    url = f"ws://127.0.0.1:{sphinx_fleet['nginx'].port}"
    session_id = f"refuse-{time.time_ns()}"
    async with await open_ws(url, session_id) as ws:
        token = (await start_session(ws))["resume_token"]

    async def resume(sid: str, resume_token: str) -> tuple[str, int | None]:
        async with await open_ws(url, sid) as ws:
            message = {"type": "resume_transcription", "resume_token": resume_token}
            await ws.send(json.dumps(message))
            run = await collect(ws, 10)
        return run.of("error")[0]["code"], run.close_code

    assert await resume(session_id, "not-the-token") == ("unauthorized", 1008)
    assert await resume(f"unknown-{time.time_ns()}", token) == ("session_not_found", 1008)
    # Idle past the resume window (LIMITS__SESSION_TIMEOUT_S, 300 s by default).
    direct_client(redis_url).hset(f"speech:{{{session_id}}}:meta", "updated_ms", 0)
    assert await resume(session_id, token) == ("session_expired", 1008)


async def test_resume_replays_missed_finals_and_continues(
    sphinx_fleet: dict[str, Proc], asr_server: Proc
) -> None:
    """A client that lost its socket gets the finals after its last seq from Redis,
    resumes from the committed offset, and ends with the uninterrupted transcript."""
    audio = librivox_audio()
    reference = await direct_finals(f"127.0.0.1:{asr_server.port}", frames(audio, 3200))
    url = f"ws://127.0.0.1:{sphinx_fleet['nginx'].port}"
    session_id = f"replay-{time.time_ns()}"
    async with await open_ws(url, session_id) as ws:
        token = (await start_session(ws))["resume_token"]
        for frame in frames(audio[: 32 * 14_000], 3200):
            await ws.send(frame)
        seen = 0
        while seen < 2:
            event = await next_event(ws, 60)
            seen += event["event"] == "transcript" and event["is_final"]
    async with await open_ws(url, session_id) as ws:
        await ws.send(
            json.dumps({"type": "resume_transcription", "resume_token": token, "last_seq": 1})
        )
        replayed = []
        while True:
            event = await next_event(ws)
            if event["event"] == "transcription_resumed":
                break
            replayed.append(event)
        assert event["replayed_finals"] == len(replayed) >= 1
        assert [e["seq"] for e in replayed] == list(range(2, 2 + len(replayed)))
        resume_from = event["resume_from_ms"]
        assert resume_from == replayed[-1]["end_ms"]
        for frame in frames(audio[resume_from * 32 :], 3200):
            await ws.send(frame)
        await ws.send(json.dumps({"type": "stop_transcription"}))
        run = await collect(ws)
    texts = [(e["alternatives"][0]["transcript"], e["end_ms"]) for e in replayed + run.finals]
    assert texts == reference[1:]
    assert run.of("transcription_stopped")[0]["finals"] == len(reference)


async def test_redis_down_for_5_seconds(
    log_dir: Path, tmp_path: Path, asr_synthetic_server: Proc
) -> None:
    port = free_port()
    argv = [*redis_argv(port, tmp_path / "data"), "--appendonly", "yes", "--appendfsync", "always"]
    redis_proc = start("redis-faults", argv, log_dir, port=port)
    redis_url = f"redis://127.0.0.1:{port}/0"
    target = f"127.0.0.1:{asr_synthetic_server.port}"
    gateway = start_gateway(log_dir, redis_url=redis_url, riva_targets=target, name="gateway-rf")
    try:
        audio = noise(12.0, 99)
        reference = await direct_finals(target, frames(audio, 3200))
        url = f"ws://127.0.0.1:{gateway.port}"
        first_final = asyncio.Event()
        live = asyncio.create_task(
            run_sdk(url, audio, f"redis-live-{time.time_ns()}", 1.0, lambda n: first_final.set())
        )
        await asyncio.wait_for(first_final.wait(), 30)
        redis_proc.stop()
        # While Redis is down: a new session gets a clear, retryable error.
        async with await open_ws(url, f"redis-new-{time.time_ns()}") as ws:
            event = await start_session(ws)
        assert (event["code"], event["retryable"]) == ("internal_error", True)
        await asyncio.sleep(5)  # the outage the scenario asks for, not a readiness wait
        redis_proc = start("redis-faults", argv, log_dir, port=port)

        finals, _, _ = await live
        assert [(f.text, int(f.raw["end_ms"])) for f in finals] == reference
        assert [f.seq for f in finals] == list(range(1, len(reference) + 1))
        # The fleet recovered without a restart: what was sent is now persisted too.
        session_id = [k for k in redis.Redis.from_url(redis_url).keys("speech:*redis-live*meta")]
        assert len(session_id) == 1
        meta = redis.Redis.from_url(redis_url, decode_responses=True).hgetall(session_id[0])
        assert int(meta["seq"]) == len(reference)
        assert meta["state"] == "stopped"
        poll_until(
            lambda: (
                urllib.request.urlopen(
                    f"http://127.0.0.1:{gateway.port}/api/v1/health/ready", timeout=2
                ).status
                == 200
            ),
            10,
            "readiness after Redis returned",
        )
    finally:
        gateway.stop()
        redis_proc.stop()


async def test_sigterm_drains_before_the_gateway_exits(
    log_dir: Path, redis_url: str, asr_synthetic_server: Proc
) -> None:
    """A rolling deploy's SIGTERM to gunicorn: the worker drains first, so its sessions
    move to the other gateway instead of being cut off with 1012."""
    target = f"127.0.0.1:{asr_synthetic_server.port}"
    with gateways_behind_nginx(
        log_dir, redis_url=redis_url, riva_targets=target, names=["gateway-s1", "gateway-s2"]
    ) as (pods, nginx):
        audio = noise(6.0, 5)
        reference = await direct_finals(target, frames(audio, 3200))
        session_id = f"sigterm-{time.time_ns()}"
        terminated, terminate_owner = on_first_final_signal_owner(
            redis_url, session_id, pods, lambda pod: pod.kill(signal.SIGTERM)
        )
        url = f"ws://127.0.0.1:{nginx.port}"
        seen: list[str] = []
        finals, reconnects, _ = await run_sdk(url, audio, session_id, 1.0, terminate_owner, seen)
        assert terminated
        assert "reconnect" in seen, "the client was asked to move, not cut off"
        assert reconnects == 1
        assert owner_of(redis_url, session_id) not in terminated
        assert [(f.text, int(f.raw["end_ms"])) for f in finals] == reference
        poll_until(lambda: not pods[terminated[0]].alive(), 15, "the drained gateway to exit")
        assert "drained" in pods[terminated[0]].log_tail(200)


async def test_resume_may_resend_uncommitted_audio_beyond_the_burst(
    gateway_factory: object, redis_url: str, asr_server: Proc
) -> None:
    """Silence yields no finals, so nothing is committed and a resuming client re-sends
    all of it at once: the rate bound makes room for what the session had received."""
    gateway = gateway_factory(  # type: ignore[operator]
        redis_url=redis_url,
        riva_targets=f"127.0.0.1:{asr_server.port}",
        env={"LIMITS__AUDIO_BURST_S": "2", "LIMITS__MAX_REALTIME_FACTOR": "1"},
    )
    url = f"ws://127.0.0.1:{gateway.port}"
    session_id = f"resend-{time.time_ns()}"
    quiet = frames(silence(4000), 3200)
    async with await open_ws(url, session_id) as ws:
        token = (await start_session(ws))["resume_token"]
        for index, frame in enumerate(quiet):
            await ws.send(frame)
            if index % 10 == 9:
                await asyncio.sleep(0.8)  # stay under 1x real time after the burst
    resume = {"type": "resume_transcription", "resume_token": token, "last_seq": 0}
    async with await open_ws(url, session_id) as ws:
        await ws.send(json.dumps(resume))
        resumed = await next_event(ws)
        assert resumed["event"] == "transcription_resumed", resumed
        assert resumed["resume_from_ms"] == 0
        for frame in quiet:
            await ws.send(frame)
        await ws.send(json.dumps({"type": "stop_transcription"}))
        run = await collect(ws, 30)
    assert not run.of("error"), run.events
    assert run.of("transcription_stopped")[0]["audio_ms"] == 4000
