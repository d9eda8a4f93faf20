"""Live speech end to end through NGINX and a gateway to the CPU speech server, against
real Redis: the same finals as the speech server gives directly, and the data resume
needs written to Redis."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import jiwer
import pytest
import redis

from tests.support.audio import goforward, librivox_clips, silence
from tests.support.fixtures_gateway import admin_port_of, gateways_behind_nginx, http_get
from tests.support.processes import Proc
from tests.support.riva_direct import direct_finals
from tests.support.ws import collect, frames, open_ws, start, stream_session

pytestmark = pytest.mark.integration

FRAME_100MS = 3200  # 16 kHz, 16-bit, mono


@pytest.fixture(scope="module")
def stack(log_dir: Path, redis_url: str, asr_server: Proc) -> Iterator[dict[str, Proc]]:
    """Two gateways on the PocketSphinx server, NGINX in front."""
    with gateways_behind_nginx(
        log_dir,
        redis_url=redis_url,
        riva_targets=f"127.0.0.1:{asr_server.port}",
        names=["gw-stream-1", "gw-stream-2"],
    ) as (pods, nginx):
        yield {"nginx": nginx, "gw1": pods["gw-stream-1"], "gw2": pods["gw-stream-2"]}


@pytest.fixture
def base(stack: dict[str, Proc]) -> str:
    return f"ws://127.0.0.1:{stack['nginx'].port}"


async def test_goforward_through_nginx(base: str, redis_url: str) -> None:
    run = await stream_session(base, "goforward-0001", frames(goforward(), FRAME_100MS))
    assert run.final_texts == ["go forward ten meters"]
    assert run.interims, "interim results arrive while speaking"
    final = run.finals[0]
    assert final["seq"] == 1
    assert all(i["seq"] == 1 for i in run.interims)
    assert 0 <= final["start_ms"] < final["end_ms"] <= 2800
    stopped = run.of("transcription_stopped")[0]
    assert stopped == {
        "event": "transcription_stopped",
        "session_id": "goforward-0001",
        "audio_ms": 2786,
        "finals": 1,
    }
    assert run.of("audio_committed")[0]["committed_ms"] == final["end_ms"]
    assert run.close_code == 1000

    # What resume will need is in Redis: the record and the finals log, under one tag.
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    meta = client.hgetall("speech:{goforward-0001}:meta")
    assert meta["state"] == "stopped"
    assert int(meta["seq"]) == 1
    assert int(meta["committed_ms"]) == final["end_ms"]
    assert meta["token_hash"]
    assert run.events[0]["resume_token"] not in meta.values()
    logged = client.xrange("speech:{goforward-0001}:finals")
    assert [json.loads(fields["f"]) for _, fields in logged] == run.finals
    assert 0 < client.ttl("speech:{goforward-0001}:meta") <= 600  # LIMITS__STOPPED_TTL_S
    assert 0 < client.ttl("speech:{goforward-0001}:finals") <= 600


async def test_librivox_matches_the_speech_server_called_directly(
    base: str, asr_server: Proc
) -> None:
    pause = silence(500)
    audio = pause.join(pcm for _, pcm, _ in librivox_clips()) + pause
    audio_frames = frames(audio, FRAME_100MS)
    direct = await direct_finals(f"127.0.0.1:{asr_server.port}", audio_frames)
    run = await stream_session(base, "librivox-0001", audio_frames)

    assert [(f["alternatives"][0]["transcript"], f["end_ms"]) for f in run.finals] == direct
    assert [f["seq"] for f in run.finals] == list(range(1, len(direct) + 1))
    assert not run.of("error")

    hypothesis = " ".join(run.final_texts)
    reference = " ".join(ref for _, _, ref in librivox_clips())
    wer = jiwer.wer(reference, hypothesis)
    print(f"\nLibriVox through NGINX + gateway: {len(direct)} finals, WER {wer:.3f}")
    assert wer < 0.45


async def test_finalize_forces_a_final_and_offsets_continue(base: str) -> None:
    audio = goforward()
    half = len(audio) // 2 // FRAME_100MS * FRAME_100MS
    async with await open_ws(base, "finalize-0001") as ws:
        await start(ws)
        for frame in frames(audio[:half], FRAME_100MS):
            await ws.send(frame)
        await ws.send(json.dumps({"type": "finalize"}))
        for frame in frames(audio[half:], FRAME_100MS):
            await ws.send(frame)
        await ws.send(json.dumps({"type": "stop_transcription"}))
        run = await collect(ws)
    assert len(run.finals) >= 2, run.final_texts
    ends = [f["end_ms"] for f in run.finals]
    assert ends == sorted(ends)
    assert ends[0] <= half // 32 + 50
    assert ends[-1] > half // 32
    assert [f["seq"] for f in run.finals] == list(range(1, len(run.finals) + 1))


async def test_health_and_session_record_through_nginx(stack: dict[str, Proc]) -> None:
    port = stack["nginx"].port
    status, body = http_get(f"http://127.0.0.1:{port}/api/v1/health/ready")
    assert status == 200, body
    assert json.loads(body)["checks"] == {
        "redis": True,
        "speech_backend": True,
        "capacity": True,
        "accepting": True,
    }
    run = await stream_session(f"ws://127.0.0.1:{port}", "record-0001", frames(goforward(), 3200))
    record_url = f"http://127.0.0.1:{port}/api/v1/sessions/record-0001"
    # Without authentication the session's resume token proves ownership.
    assert http_get(record_url)[0] == 404
    token = run.events[0]["resume_token"]
    status, body = http_get(record_url, headers={"X-Resume-Token": token})
    assert status == 200, body
    record = json.loads(body)
    assert (record["state"], record["finals"], record["audio_ms"]) == ("stopped", 1, 2786)
    status, _ = http_get(
        f"http://127.0.0.1:{port}/api/v1/sessions/unknown-0001", headers={"X-Resume-Token": token}
    )
    assert status == 404
    status, body = http_get(f"http://127.0.0.1:{admin_port_of(stack['gw1'])}/metrics")
    assert status == 200
    assert b"gateway_sessions_started_total" in body
