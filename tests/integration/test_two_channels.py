"""Two-channel sessions (`channels: 2`): audio is committed while one channel is silent,
and a kill -9 of the serving gateway neither repeats nor drops a final on either channel.
Real speech (PocketSphinx), NGINX and two gateways."""

from __future__ import annotations

import array
import signal
import time
from pathlib import Path

import pytest
import redis

from speech_client import Audio, AudioFormat, Transcript, transcribe
from tests.support.audio import librivox_clips, silence
from tests.support.fixtures_gateway import gateways_behind_nginx
from tests.support.processes import Proc

pytestmark = pytest.mark.integration

STEREO = AudioFormat(encoding="pcm16", sample_rate_hz=16000, channels=2)


def interleave(left: bytes, right: bytes) -> bytes:
    n = max(len(left), len(right)) // 2
    left_s = array.array("h", left + b"\x00" * (2 * n - len(left)))
    right_s = array.array("h", right + b"\x00" * (2 * n - len(right)))
    out = array.array("h", bytes(4 * n))
    out[0::2] = left_s
    out[1::2] = right_s
    return out.tobytes()


def speech(order: list[int]) -> bytes:
    clips = [pcm for _, pcm, _ in librivox_clips()]
    pause = silence(700)
    return pause.join(clips[i] for i in order) + pause


async def run(
    url: str, audio: bytes, session_id: str, fleet: dict[str, Proc], redis_url: str, kill: bool
) -> tuple[list[tuple[int, int, str]], list[int], int]:
    """(seq, channel, text) of each final, the committed offsets seen, and reconnects;
    with `kill`, the gateway serving the session is killed after its 2nd final."""
    finals: list[tuple[int, int, str]] = []
    committed: list[int] = []
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    async with transcribe(url, Audio(audio, STEREO), session_id=session_id, speed=3.0) as s:
        async for event in s:
            if isinstance(event, Transcript) and event.is_final:
                finals.append((event.seq, int(event.raw["channel"]), event.text))
                if kill and len(finals) == 2:
                    owner = str(client.hget(f"speech:{{{session_id}}}:meta", "owner"))
                    fleet[owner].kill_group(signal.SIGKILL)
            elif event.raw.get("event") == "audio_committed":
                committed.append(int(event.raw["committed_ms"]))
    return finals, committed, s.reconnects


@pytest.mark.parametrize(
    ("left", "right"), [([0, 1, 2, 3], None), ([0, 1, 2, 3], [2, 0, 3])], ids=["left-only", "both"]
)
async def test_two_channels_commit_and_survive_a_killed_gateway(
    left: list[int],
    right: list[int] | None,
    log_dir: Path,
    redis_url: str,
    asr_server: Proc,
) -> None:
    left_pcm = speech(left)
    right_pcm = speech(right) if right else silence(len(left_pcm) * 1000 // 32000)
    audio = interleave(left_pcm, right_pcm)
    with gateways_behind_nginx(
        log_dir,
        redis_url=redis_url,
        riva_targets=f"127.0.0.1:{asr_server.port}",
        names=["gateway-st1", "gateway-st2"],
    ) as (pods, nginx):
        url = f"ws://127.0.0.1:{nginx.port}"
        fleet = {"nginx": nginx, **pods}
        reference, committed, _ = await run(
            url, audio, f"stereo-ref-{time.time_ns()}", fleet, redis_url, kill=False
        )
        finals, _, reconnects = await run(
            url, audio, f"stereo-kill-{time.time_ns()}", fleet, redis_url, kill=True
        )
    assert {channel for _, channel, _ in reference} == ({0} if right is None else {0, 1})
    # The silent (or quieter) channel does not hold the commit point at 0.
    assert max(committed) > 0
    assert reconnects >= 1
    assert finals == reference
