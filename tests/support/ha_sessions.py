"""Sessions through a fleet on replicated Redis (Sentinel or Cluster): the scenarios both
test modules run, each against its own real processes."""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from speech_client import Audio, AudioFormat, Transcript, transcribe
from tests.support.fixtures_fleet import start_nginx
from tests.support.fixtures_gateway import start_gateway
from tests.support.processes import Proc
from tests.support.ws import collect, open_ws

PCM16 = AudioFormat(encoding="pcm16", sample_rate_hz=16000, channels=1)


def noise(seconds: float, seed: int) -> bytes:
    """Audio for the synthetic engine, whose words follow from the audio's content."""
    return random.Random(seed).randbytes(int(seconds * 32000))


@dataclass
class HaFleet:
    pods: dict[str, Proc]
    nginx: Proc

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.nginx.port}"

    def pod_url(self, name: str) -> str:
        return f"ws://127.0.0.1:{self.pods[name].port}"


@contextlib.contextmanager
def ha_fleet(
    log_dir: Path, *, env: dict[str, str], riva_target: str, names: list[str]
) -> Iterator[HaFleet]:
    """Gateways on the replicated Redis described by `env`, and NGINX in front."""
    pods: dict[str, Proc] = {}
    nginx: Proc | None = None
    try:
        for name in names:
            pods[name] = start_gateway(
                log_dir,
                redis_url="redis://unused:1/0",
                riva_targets=riva_target,
                name=name,
                env={**env, "LIMITS__IDLE_TIMEOUT_S": "60"},
            )
        nginx = start_nginx([p.port for p in pods.values()], log_dir / f"nginx-{names[0]}", log_dir)
        yield HaFleet(pods, nginx)
    finally:
        if nginx is not None:
            nginx.stop()
        for pod in pods.values():
            pod.stop()


@dataclass
class SdkRun:
    finals: list[Transcript] = field(default_factory=list)
    committed: list[int] = field(default_factory=list)  # committed_ms of audio_committed
    reconnects: int = 0
    token: str = ""
    audio_ms: int = 0

    def signature(self) -> list[tuple[int, str, int]]:
        return [(f.seq, f.text, int(f.raw["end_ms"])) for f in self.finals]


async def run_sdk(
    url: str,
    audio: bytes,
    session_id: str,
    *,
    speed: float = 1.0,
    on_final: Callable[[SdkRun], None] | None = None,
) -> SdkRun:
    """One SDK session at `speed` x real time; `on_final(run)` after each final."""
    run = SdkRun()
    async with transcribe(url, Audio(audio, PCM16), session_id=session_id, speed=speed) as s:
        async for event in s:
            name = event.raw.get("event")
            if isinstance(event, Transcript) and event.is_final:
                run.finals.append(event)
                if on_final is not None:
                    on_final(run)
            elif name == "audio_committed":
                run.committed.append(int(event.raw["committed_ms"]))
            elif name == "transcription_stopped":
                run.audio_ms = int(event.raw["audio_ms"])
        run.reconnects = s.reconnects
        run.token = s.resume_token or ""
    return run


async def resume_from_start(url: str, session_id: str, token: str) -> list[dict[str, object]]:
    """Resume a stopped session with last_seq 0: every event the gateway sends."""
    async with await open_ws(url, session_id) as ws:
        resume = {"type": "resume_transcription", "resume_token": token, "last_seq": 0}
        await ws.send(json.dumps(resume))
        run = await collect(ws, wait_s=30)
    return run.events


def finals_signature(events: list[dict[str, object]]) -> list[tuple[int, str, int]]:
    out = []
    for e in events:
        if e.get("event") == "transcript" and e.get("is_final"):
            alternatives = e["alternatives"]
            assert isinstance(alternatives, list)
            text = str(alternatives[0]["transcript"])
            out.append((int(str(e["seq"])), text, int(str(e["end_ms"]))))
    return out


def background(fn: Callable[[], None]) -> asyncio.Task[None]:
    """Run blocking `fn` (kill, wait for a promotion, restart) off the event loop."""
    return asyncio.get_running_loop().create_task(asyncio.to_thread(fn))
