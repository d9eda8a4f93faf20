"""How long a session is interrupted when the gateway serving it dies.

Starts Redis, the synthetic speech server, two gateways and NGINX on free ports, then
for each trial streams a session through NGINX with the client SDK at real-time pace,
kills the gateway that owns it (`kill -9` of its whole process group) right after the
first final, and measures the time from the kill to the next transcript the client
receives (after it reconnected through NGINX to the other gateway and resumed), and to
the `transcription_resumed` that re-established it. The client streams at real-time pace,
so the next transcript (the next interim, due 200 ms of audio after the final) cannot
come sooner than 200 ms after the kill: the figure is that pace plus the outage. Each
session's final transcript is checked against the speech server called directly.

    .venv/bin/python scripts/measure_resume.py [--trials 20]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import redis

from speech_client import Audio, AudioFormat, Transcript, TranscriptionResumed, transcribe
from tests.support.fixtures_asr import asr_argv, asr_health_serving
from tests.support.fixtures_fleet import start_nginx
from tests.support.fixtures_gateway import start_gateway
from tests.support.processes import Proc, free_port, redis_argv, start
from tests.support.riva_direct import direct_finals

PCM16 = AudioFormat(encoding="pcm16", sample_rate_hz=16000, channels=1)


async def trial(
    index: int, url: str, redis_url: str, target: str, pods: dict[str, Proc], log_dir: Path
) -> tuple[float, float]:
    audio = random.Random(index).randbytes(8 * 32000)
    frames = [audio[i : i + 3200] for i in range(0, len(audio), 3200)]
    reference = await direct_finals(target, frames)
    session_id = f"measure-{index}-{time.time_ns()}"
    killed_at: float | None = None
    gap: float | None = None
    resumed: float | None = None
    killed = ""
    finals: list[Transcript] = []
    async with transcribe(url, Audio(audio, PCM16), session_id=session_id) as session:
        async for event in session:
            if isinstance(event, TranscriptionResumed) and killed_at is not None:
                resumed = time.monotonic() - killed_at
            if isinstance(event, Transcript):
                if killed_at is not None and gap is None:
                    gap = time.monotonic() - killed_at
                if event.is_final:
                    finals.append(event)
                    if killed_at is None:
                        meta_key = f"speech:{{{session_id}}}:meta"
                        killed = str(
                            redis.Redis.from_url(redis_url, decode_responses=True).hget(
                                meta_key, "owner"
                            )
                        )
                        killed_at = time.monotonic()
                        pods[killed].kill_group(signal.SIGKILL)
    got = [(f.text, int(f.raw["end_ms"])) for f in finals]
    if got != reference or [f.seq for f in finals] != list(range(1, len(reference) + 1)):
        raise SystemExit(f"trial {index}: transcript differs from the uninterrupted one")
    if gap is None or resumed is None:
        raise SystemExit(f"trial {index}: no resume or no transcript after the kill")
    # Bring the dead pod back on its port for the next trial, as supervisor would.
    old = pods[killed]
    pods[killed] = start_gateway(
        log_dir,
        redis_url=redis_url,
        riva_targets=target,
        name=killed,
        port=old.port,
    )
    return gap, resumed


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=20)
    args = parser.parse_args()
    log_dir = Path(tempfile.mkdtemp(prefix="measure-resume-"))
    procs: list[Proc] = []
    pods: dict[str, Proc] = {}
    try:
        redis_port = free_port()
        procs.append(
            start("redis", redis_argv(redis_port, log_dir / "redis"), log_dir, port=redis_port)
        )
        redis_url = f"redis://127.0.0.1:{redis_port}/0"
        asr_port = free_port()
        procs.append(
            start(
                "asr",
                asr_argv(asr_port, "synthetic"),
                log_dir,
                port=asr_port,
                ready=lambda: asr_health_serving(asr_port),
            )
        )
        target = f"127.0.0.1:{asr_port}"
        for name in ("gateway-1", "gateway-2"):
            pods[name] = start_gateway(log_dir, redis_url=redis_url, riva_targets=target, name=name)
        nginx = start_nginx([p.port for p in pods.values()], log_dir / "nginx", log_dir)
        procs.append(nginx)
        url = f"ws://127.0.0.1:{nginx.port}"
        gaps, resumes = [], []
        for index in range(args.trials):
            gap, resumed = await trial(index, url, redis_url, target, pods, log_dir)
            gaps.append(gap * 1000)
            resumes.append(resumed * 1000)
            print(
                f"trial {index + 1:2d}: kill -9 -> resumed {resumed * 1000:5.0f} ms, "
                f"-> next transcript {gap * 1000:5.0f} ms"
            )
        summary = {
            "trials": len(gaps),
            "next_transcript_median_ms": round(statistics.median(gaps)),
            "next_transcript_worst_ms": round(max(gaps)),
            "resumed_median_ms": round(statistics.median(resumes)),
            "resumed_worst_ms": round(max(resumes)),
        }
        print(
            f"over {len(gaps)} trials, from a gateway's kill -9 to the resumed session's "
            f"next transcript: median {summary['next_transcript_median_ms']} ms, worst "
            f"{summary['next_transcript_worst_ms']} ms; to transcription_resumed: median "
            f"{summary['resumed_median_ms']} ms, worst {summary['resumed_worst_ms']} ms; "
            "every transcript identical to the uninterrupted one"
        )
        print(json.dumps(summary))
    finally:
        for pod in pods.values():
            pod.stop()
        for proc in reversed(procs):
            proc.stop()


if __name__ == "__main__":
    asyncio.run(main())
