"""Nothing lost under every fault (issue 12): Redis that loses data or answers errors,
takeovers, concurrent resumes, idle sessions, retried starts, bad resumes, gRPC keepalive,
and backend streams that go quiet or hang. Real Redis, speech servers and gateways."""

from __future__ import annotations

import asyncio
import json
import random
import shutil
import signal
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import grpc
import pytest
import redis
from riva.client.proto import riva_asr_pb2 as asr
from riva.client.proto import riva_asr_pb2_grpc as asr_grpc

from gateway.backends.riva import channel_options
from gateway.backends.riva_config import streaming_config
from gateway.config import RivaSettings
from gateway.protocol import TranscriptionConfig
from speech_client import Audio, AudioFormat, Transcript, TranscriptionError, transcribe
from tests.support.audio import librivox_clips, silence
from tests.support.fixtures_asr import asr_health_serving, start_asr
from tests.support.fixtures_gateway import GatewayFactory, admin_port_of, http_get
from tests.support.processes import Proc, free_port, poll_until, redis_argv, start
from tests.support.riva_direct import direct_finals
from tests.support.ws import collect, frames, next_event, open_ws, stream_session
from tests.support.ws import start as start_session

pytestmark = pytest.mark.integration

PCM16 = AudioFormat(encoding="pcm16", sample_rate_hz=16000, channels=1)


def noise(seconds: float, seed: int) -> bytes:
    """Audio for the synthetic engine, whose words follow from the audio's content."""
    return random.Random(seed).randbytes(int(seconds * 32000))


async def sdk_finals(
    url: str, audio: bytes, session_id: str, *, speed: float = 1.0, on_final: object = None
) -> tuple[list[tuple[str, int]], int]:
    finals: list[Transcript] = []
    async with transcribe(url, Audio(audio, PCM16), session_id=session_id, speed=speed) as s:
        async for event in s:
            if isinstance(event, Transcript) and event.is_final:
                finals.append(event)
                if callable(on_final):
                    on_final(len(finals))
    assert [f.seq for f in finals] == list(range(1, len(finals) + 1))
    return [(f.text, int(f.raw["end_ms"])) for f in finals], s.reconnects


def meta(redis_url: str, session_id: str) -> dict[str, str]:
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    return client.hgetall(f"speech:{{{session_id}}}:meta")  # type: ignore[return-value]


def ready_status(gateway: Proc) -> int:
    return http_get(f"http://127.0.0.1:{gateway.port}/api/v1/health/ready")[0]


def active_sessions(gateway: Proc) -> float:
    _, body = http_get(f"http://127.0.0.1:{admin_port_of(gateway)}/metrics")
    for line in body.decode().splitlines():
        if line.startswith("gateway_sessions_active"):
            return float(line.split()[-1])
    raise AssertionError("gateway_sessions_active not exported")


@pytest.fixture
def own_redis(log_dir: Path, tmp_path: Path) -> Iterator[dict[str, object]]:
    """A Redis of this test's own, with the AOF written once a second (as the local fleet
    runs it), that the test may kill and restart."""
    port = free_port()
    data = tmp_path / "redis-data"
    argv = [*redis_argv(port, data), "--appendonly", "yes", "--appendfsync", "everysec"]
    state: dict[str, object] = {
        "proc": start("redis-own", argv, log_dir, port=port),
        "argv": argv,
        "data": data,
        "url": f"redis://127.0.0.1:{port}/0",
        "port": port,
    }
    yield state
    proc = state["proc"]
    assert isinstance(proc, Proc)
    proc.stop()


def restart_redis(state: dict[str, object], log_dir: Path) -> None:
    argv, port = state["argv"], state["port"]
    assert isinstance(argv, list)
    assert isinstance(port, int)
    state["proc"] = start("redis-own", argv, log_dir, port=port)


# ---- Redis faults ---------------------------------------------------------------------


@pytest.mark.parametrize("empty", [False, True], ids=["from-aof", "empty"])
async def test_redis_killed_mid_session_the_owner_rebuilds(
    empty: bool,
    own_redis: dict[str, object],
    log_dir: Path,
    gateway_factory: GatewayFactory,
    asr_synthetic_server: Proc,
) -> None:
    """kill -9 of Redis after the 2nd final, restarted (from its AOF, or with no data at
    all): the live session ends with its exact transcript, and can then be read and
    resumed with every final in its log."""
    target = f"127.0.0.1:{asr_synthetic_server.port}"
    redis_url = str(own_redis["url"])
    gateway = gateway_factory(redis_url=redis_url, riva_targets=target)
    audio = noise(12.0, 41)
    reference = await direct_finals(target, frames(audio, 3200))
    session_id = f"redis-kill-{empty}-{time.time_ns()}"
    killed = asyncio.Event()

    def kill_redis(count: int) -> None:
        if count == 2 and not killed.is_set():
            proc = own_redis["proc"]
            assert isinstance(proc, Proc)
            proc.kill(signal.SIGKILL)
            proc.popen.wait(5)
            if empty:
                shutil.rmtree(own_redis["data"])  # type: ignore[arg-type]
                Path(own_redis["data"]).mkdir()  # type: ignore[arg-type]
            restart_redis(own_redis, log_dir)
            killed.set()

    url = f"ws://127.0.0.1:{gateway.port}"
    finals, reconnects = await sdk_finals(url, audio, session_id, on_final=kill_redis)
    assert killed.is_set()
    assert finals == reference
    assert reconnects == 0

    # From Redis itself: the REST read needs the session's resume token (test_auth*).
    record = meta(redis_url, session_id)
    assert (record["state"], int(record["seq"])) == ("stopped", len(reference))
    stored = redis.Redis.from_url(redis_url, decode_responses=True).xrange(
        f"speech:{{{session_id}}}:finals"
    )
    assert [int(entry_id.split("-")[0]) for entry_id, _ in stored] == list(
        range(1, len(reference) + 1)
    )


async def test_redis_at_maxmemory_is_a_store_fault(
    own_redis: dict[str, object], gateway_factory: GatewayFactory, asr_synthetic_server: Proc
) -> None:
    """`maxmemory` reached (OOM replies): the live session keeps streaming and gets every
    final, a new session gets a retryable error, readiness fails; all recover after."""
    target = f"127.0.0.1:{asr_synthetic_server.port}"
    redis_url = str(own_redis["url"])
    gateway = gateway_factory(redis_url=redis_url, riva_targets=target)
    client = redis.Redis.from_url(redis_url)
    audio = noise(10.0, 42)
    reference = await direct_finals(target, frames(audio, 3200))
    url = f"ws://127.0.0.1:{gateway.port}"
    first_final = asyncio.Event()
    session_id = f"oom-live-{time.time_ns()}"
    live = asyncio.create_task(
        sdk_finals(url, audio, session_id, on_final=lambda n: first_final.set())
    )
    await asyncio.wait_for(first_final.wait(), 30)
    client.config_set("maxmemory", 1)
    try:
        async with await open_ws(url, f"oom-new-{time.time_ns()}") as ws:
            refused = await start_session(ws)
            closed = await collect(ws, 10)
        assert (refused["code"], refused["retryable"]) == ("internal_error", True)
        assert closed.close_code == 1013
        await asyncio.to_thread(
            poll_until, lambda: ready_status(gateway) == 503, 10, "not ready under OOM"
        )
        await asyncio.sleep(2)  # a final or two while Redis refuses writes
    finally:
        client.config_set("maxmemory", 0)
    finals, reconnects = await live
    assert finals == reference
    assert reconnects == 0
    await asyncio.to_thread(poll_until, lambda: ready_status(gateway) == 200, 10, "ready again")
    assert int(meta(redis_url, session_id)["seq"]) == len(reference)


# ---- takeovers ------------------------------------------------------------------------


async def started_and_left(url: str, session_id: str, seconds: float = 4.5) -> str:
    """Start a session, stream some audio until a commit, leave; its resume token."""
    async with await open_ws(url, session_id) as ws:
        token = str((await start_session(ws))["resume_token"])
        for frame in frames(noise(seconds, 7), 3200):
            await ws.send(frame)
        while (await next_event(ws))["event"] != "audio_committed":
            pass
    return token


async def test_takeover_is_final_for_the_loser(
    redis_url: str, gateway_factory: GatewayFactory, asr_synthetic_server: Proc
) -> None:
    """Two SDK clients holding one session's token: the session changes hands at most
    once (the older client gets session_taken_over and does not resume)."""
    gateway = gateway_factory(
        redis_url=redis_url, riva_targets=f"127.0.0.1:{asr_synthetic_server.port}"
    )
    url = f"ws://127.0.0.1:{gateway.port}"
    session_id = f"pingpong-{time.time_ns()}"
    token = await started_and_left(url, session_id)
    epoch_before = int(meta(redis_url, session_id)["epoch"])

    async def client(delay_s: float) -> str:
        await asyncio.sleep(delay_s)
        audio = Audio(noise(6.0, 8), PCM16)
        try:
            async with transcribe(url, audio, session_id=session_id, resume_token=token) as s:
                async for _ in s:
                    pass
        except TranscriptionError as e:
            return e.code
        return "completed"

    outcomes = await asyncio.gather(client(0.0), client(1.0))
    assert sorted(outcomes) == ["completed", "session_taken_over"]
    # Two resumes, one change of hands between the two clients: no ping-pong.
    assert int(meta(redis_url, session_id)["epoch"]) == epoch_before + 2


async def test_two_resumes_on_one_pod_leave_one_driver(
    redis_url: str, gateway_factory: GatewayFactory, asr_synthetic_server: Proc
) -> None:
    gateway = gateway_factory(
        redis_url=redis_url, riva_targets=f"127.0.0.1:{asr_synthetic_server.port}"
    )
    url = f"ws://127.0.0.1:{gateway.port}"
    for round_ in range(4):
        session_id = f"one-pod-{round_}-{time.time_ns()}"
        token = await started_and_left(url, session_id)
        resume = json.dumps({"type": "resume_transcription", "resume_token": token})
        sockets = [await open_ws(url, session_id) for _ in range(2)]
        await asyncio.gather(*(ws.send(resume) for ws in sockets))
        runs = await asyncio.wait_for(
            asyncio.gather(*(first_answer_then_maybe_close(ws) for ws in sockets)), 20
        )
        losers = [r for r in runs if r is not None]
        assert len(losers) == 1, runs
        assert losers[0] == ("session_taken_over", False, 1008)
        survivor = sockets[runs.index(None)]
        assert active_sessions(gateway) == 1
        epoch = int(meta(redis_url, session_id)["epoch"])
        await survivor.send(json.dumps({"type": "stop_transcription"}))
        run = await collect(survivor, 20)
        assert run.of("transcription_stopped"), run.events
        assert int(meta(redis_url, session_id)["epoch"]) == epoch
        await asyncio.to_thread(
            poll_until, lambda: active_sessions(gateway) == 0, 5, "no session left"
        )


async def first_answer_then_maybe_close(ws: object) -> tuple[str, bool, int | None] | None:
    """None for the connection that drives the session after both resumes; for the other,
    (code, retryable, close code) of the error that ended it."""
    from websockets.asyncio.client import ClientConnection

    assert isinstance(ws, ClientConnection)
    try:
        async with asyncio.timeout(3):
            while True:
                event = await next_event(ws)
                if event["event"] == "error":
                    run = await collect(ws, 5)
                    return event["code"], event["retryable"], run.close_code
    except TimeoutError:
        return None


# ---- idle, start retries, bad resumes -------------------------------------------------


async def test_idle_timeout_counts_from_the_last_message(
    redis_url: str, gateway_factory: GatewayFactory, asr_synthetic_server: Proc
) -> None:
    """`session_expired` comes LIMITS__IDLE_TIMEOUT_S (+ one housekeeping tick) after the
    last frame, and a keepalive more often than that keeps the session."""
    gateway = gateway_factory(
        redis_url=redis_url,
        riva_targets=f"127.0.0.1:{asr_synthetic_server.port}",
        env={"LIMITS__IDLE_TIMEOUT_S": "3"},
    )
    url = f"ws://127.0.0.1:{gateway.port}"
    async with await open_ws(url, f"idle-kept-{time.time_ns()}") as ws:
        await start_session(ws)
        for frame in frames(noise(1.0, 3), 3200):
            await ws.send(frame)
        for _ in range(5):  # 10 s of keepalives, 2 s apart
            await asyncio.sleep(2)
            await ws.send(json.dumps({"type": "keepalive"}))
        await ws.send(json.dumps({"type": "stop_transcription"}))
        run = await collect(ws, 20)
    assert not run.of("error"), run.events
    assert run.of("transcription_stopped")

    async with await open_ws(url, f"idle-lost-{time.time_ns()}") as ws:
        await start_session(ws)
        for frame in frames(noise(4.0, 4), 3200):
            await ws.send(frame)
            await asyncio.sleep(0.05)
        last_frame = time.monotonic()
        run = await collect(ws, 20)
        waited = time.monotonic() - last_frame
    assert [e["code"] for e in run.of("error")] == ["session_expired"]
    assert run.close_code == 1008
    assert 3.0 <= waited <= 4.5, waited


async def test_start_is_idempotent_until_the_first_final(
    redis_url: str, gateway_factory: GatewayFactory, asr_synthetic_server: Proc
) -> None:
    gateway = gateway_factory(
        redis_url=redis_url, riva_targets=f"127.0.0.1:{asr_synthetic_server.port}"
    )
    url = f"ws://127.0.0.1:{gateway.port}"
    session_id = f"retry-{time.time_ns()}"
    config = {"sample_rate_hz": 16000}
    async with await open_ws(url, session_id) as ws:
        # The reply to this start is "lost": the client never reads it.
        await ws.send(json.dumps({"type": "start_transcription", "config": config}))
        await asyncio.to_thread(poll_until, lambda: meta(redis_url, session_id), 5, "record")
    async with await open_ws(url, session_id) as ws:
        retried = await start_session(ws, config)
        assert retried["event"] == "transcription_started", retried
        for frame in frames(noise(2.5, 5), 3200):
            await ws.send(frame)
        while (await next_event(ws))["event"] != "audio_committed":
            pass
    # A different config, or a session that has finals, is another session: refused.
    for attempt in ({"sample_rate_hz": 8000}, config):
        async with await open_ws(url, session_id) as ws:
            refused = await start_session(ws, attempt)
        assert refused["code"] == "session_exists", (attempt, refused)


async def test_resume_with_last_seq_beyond_the_session_is_refused_before_takeover(
    redis_url: str, gateway_factory: GatewayFactory, asr_synthetic_server: Proc
) -> None:
    target = f"127.0.0.1:{asr_synthetic_server.port}"
    gateway = gateway_factory(redis_url=redis_url, riva_targets=target)
    url = f"ws://127.0.0.1:{gateway.port}"
    session_id = f"last-seq-{time.time_ns()}"
    audio = noise(6.0, 9)
    reference = await direct_finals(target, frames(audio, 3200))
    async with await open_ws(url, session_id) as owner:
        token = (await start_session(owner))["resume_token"]
        for frame in frames(audio[:64000], 3200):
            await owner.send(frame)
        while (await next_event(owner))["event"] != "audio_committed":
            pass
        async with await open_ws(url, session_id) as intruder:
            bad = {"type": "resume_transcription", "resume_token": token, "last_seq": 2**64 - 1}
            await intruder.send(json.dumps(bad))
            refused = await collect(intruder, 10)
        assert [(e["code"], e["retryable"]) for e in refused.of("error")] == [
            ("invalid_message", False)
        ]
        assert refused.close_code == 1008
        # The live owner was not thrown off: it finishes its session.
        for frame in frames(audio[64000:], 3200):
            await owner.send(frame)
        await owner.send(json.dumps({"type": "stop_transcription"}))
        run = await collect(owner, 30)
    assert not run.of("error"), run.events
    assert run.of("transcription_stopped")[0]["finals"] == len(reference)
    assert int(meta(redis_url, session_id)["epoch"]) == 1


# ---- the speech backend ---------------------------------------------------------------


async def idle_then_speak(
    target: str, keepalive_s: float, idle_s: float
) -> tuple[int, grpc.StatusCode | None]:
    """A stream on a channel with the gateway's options, idle for `idle_s`, then 3 s of
    audio: (finals, the status it failed with, if it did)."""
    settings = RivaSettings(targets=[target], keepalive_time_s=keepalive_s)
    config = streaming_config(TranscriptionConfig())
    audio = frames(noise(3.0, 11), 3200)

    async def requests() -> AsyncIterator[asr.StreamingRecognizeRequest]:
        yield asr.StreamingRecognizeRequest(streaming_config=config)
        await asyncio.sleep(idle_s)
        for frame in audio:
            yield asr.StreamingRecognizeRequest(audio_content=frame)

    finals = 0
    async with grpc.aio.insecure_channel(target, options=channel_options(settings)) as channel:
        stub = asr_grpc.RivaSpeechRecognitionStub(channel)
        try:
            async for response in stub.StreamingRecognize(requests(), timeout=60):
                finals += sum(r.is_final for r in response.results)
        except grpc.aio.AioRpcError as exc:
            return finals, exc.code()
    return finals, None


async def test_grpc_keepalive_that_a_default_policy_server_accepts(log_dir: Path) -> None:
    """The gateway pings no oftener than the server's ping policy allows (gRPC's default:
    one ping without data per 5 minutes, GOAWAY after 2 strikes), so a stream idle for
    many ping intervals survives. Scaled down: a server that allows one ping per 2 s, and
    a client at the same interval, idle for 9 s; a client pinging every 0.5 s is thrown
    off by the same server (the check can fail)."""
    server = start_asr("asr-pings", "synthetic", log_dir, "--min-ping-interval-ms", "2000")
    port = server.port
    try:
        target = f"127.0.0.1:{port}"
        assert RivaSettings().keepalive_time_s >= 300  # gRPC servers' default minimum
        polite, rude = await asyncio.gather(
            idle_then_speak(target, keepalive_s=2.0, idle_s=9.0),
            idle_then_speak(target, keepalive_s=1.0, idle_s=9.0),
        )
        assert polite[1] is None, polite
        assert polite[0] >= 1, polite
        assert rude[1] == grpc.StatusCode.UNAVAILABLE
    finally:
        server.stop()


async def test_backend_stream_released_while_keepalives_keep_the_session(
    log_dir: Path, redis_url: str, gateway_factory: GatewayFactory
) -> None:
    """Riva ends a stream that gets no audio (here after 1.5 s): a session kept alive by
    keepalive messages goes on in a new stream, and its transcript is unchanged."""
    server = start_asr("asr-release", "synthetic", log_dir, "--idle-release", "1.5")
    port = server.port
    try:
        target = f"127.0.0.1:{port}"
        gateway = gateway_factory(redis_url=redis_url, riva_targets=target)
        audio = noise(6.0, 12)
        reference = await direct_finals(target, frames(audio, 3200))
        async with await open_ws(f"ws://127.0.0.1:{gateway.port}", f"rel-{time.time_ns()}") as ws:
            await start_session(ws)
            chunks = frames(audio, 3200)
            for frame in chunks[:20]:
                await ws.send(frame)
            for _ in range(6):  # 6 s of keepalives: the backend releases the stream
                await asyncio.sleep(1)
                await ws.send(json.dumps({"type": "keepalive"}))
            for frame in chunks[20:]:
                await ws.send(frame)
            await ws.send(json.dumps({"type": "stop_transcription"}))
            run = await collect(ws, 30)
        assert not run.of("error"), run.events
        assert [(e["alternatives"][0]["transcript"], e["end_ms"]) for e in run.finals] == reference
        assert "stream released" in server.log_tail(200)
    finally:
        server.stop()


async def test_hung_backend_is_failed_over(
    log_dir: Path, redis_url: str, gateway_factory: GatewayFactory, asr_synthetic_server: Proc
) -> None:
    """A backend that takes audio and answers nothing is detected (here after 2 s) and
    the session moves to another endpoint with its audio replayed: the client sees a
    delay, not an error."""
    port = free_port()
    hung = start(
        "riva-hung",
        [sys.executable, "-m", "tests.support.hung_riva", str(port)],
        log_dir,
        port=port,
        ready=lambda: asr_health_serving(port),
    )
    try:
        target = f"127.0.0.1:{asr_synthetic_server.port}"
        gateway = gateway_factory(
            redis_url=redis_url,
            riva_targets=f"127.0.0.1:{port},{target}",
            env={"LIMITS__BACKEND_RESPONSE_TIMEOUT_S": "2"},
        )
        audio = noise(8.0, 13)
        reference = await direct_finals(target, frames(audio, 3200))
        finals, reconnects = await sdk_finals(
            f"ws://127.0.0.1:{gateway.port}", audio, f"hung-{time.time_ns()}", speed=2.0
        )
        assert finals == reference
        assert reconnects == 0
        assert "failing over" in gateway.log_tail(200)
    finally:
        hung.stop()


async def test_compressed_sessions_are_refused_at_resume(
    redis_url: str, gateway_factory: GatewayFactory, asr_server: Proc
) -> None:
    """flac and ogg_opus audio cannot be re-sent from an offset: a resume is refused with
    a clear, final error (README, "Nothing lost": what is not covered)."""
    gateway = gateway_factory(redis_url=redis_url, riva_targets=f"127.0.0.1:{asr_server.port}")
    url = f"ws://127.0.0.1:{gateway.port}"
    session_id = f"flac-{time.time_ns()}"
    async with await open_ws(url, session_id) as ws:
        started = await start_session(ws, {"encoding": "flac"})
        assert started["event"] == "transcription_started", started
    resume = {"type": "resume_transcription", "resume_token": started["resume_token"]}
    async with await open_ws(url, session_id) as ws:
        await ws.send(json.dumps(resume))
        run = await collect(ws, 10)
    assert [(e["code"], e["retryable"]) for e in run.of("error")] == [("invalid_config", False)]
    assert "cannot be resumed" in run.of("error")[0]["message"]
    assert run.close_code == 1008


async def test_a_stopped_session_waits_for_a_slow_backend_past_the_idle_timeout(
    redis_url: str, gateway_factory: GatewayFactory, asr_server: Proc
) -> None:
    """After stop_transcription the client sends nothing while the backend finishes: the
    idle timeout does not cut the last finals off (PocketSphinx takes seconds to decode
    what was sent at full speed; the idle timeout here is 2 s)."""
    target = f"127.0.0.1:{asr_server.port}"
    gateway = gateway_factory(
        redis_url=redis_url, riva_targets=target, env={"LIMITS__IDLE_TIMEOUT_S": "2"}
    )
    pause = silence(500)
    audio = pause.join(pcm for _, pcm, _ in librivox_clips()[:2]) + pause
    reference = await direct_finals(target, frames(audio, 3200))
    run = await stream_session(f"ws://127.0.0.1:{gateway.port}", f"slow-{time.time_ns()}",
                               frames(audio, 3200))  # fmt: skip
    assert not run.of("error"), run.events
    assert [(e["alternatives"][0]["transcript"], e["end_ms"]) for e in run.finals] == reference
