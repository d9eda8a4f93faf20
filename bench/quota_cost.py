"""What the quotas cost Redis (docs/quotas.md, "Redis cost"): commands per admission, per
renewal and per end, and bytes per counting session, from `INFO commandstats` and
`MEMORY USAGE` around the gateway's own `QuotaGate` calls. Counts, not timings: quick,
and the same on any machine.

    python -m bench.quota_cost [--sessions 500]

Starts its own redis-server (no persistence) on a free port of 127.0.0.1 and stops it.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass

import redis

from gateway.config import QuotaSettings, RedisSettings
from gateway.quotas.gate import QuotaGate
from gateway.store.connection import connect

_LARGE = 10**6  # quotas that the run never reaches: every check and count still runs


@dataclass
class _Session:
    session_id: str
    session_start_ms: int = 0
    audio_ms: int = 0


def _calls(client: redis.Redis) -> dict[str, int]:
    stats = client.info("commandstats")
    return {name.removeprefix("cmdstat_"): int(v["calls"]) for name, v in stats.items()}


def _delta(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    skip = ("info", "memory|usage")
    changed = {k: v - before.get(k, 0) for k, v in after.items() if k not in skip}
    return {k: v for k, v in changed.items() if v}


async def _measure(port: int, sessions: int) -> None:
    admin = redis.Redis(port=port, decode_responses=True)
    settings = QuotaSettings(
        max_sessions=_LARGE, starts_per_s=_LARGE, start_burst=_LARGE, audio_hours_per_day=_LARGE
    )
    client = connect(RedisSettings(url=f"redis://127.0.0.1:{port}/0"))
    gate = QuotaGate(client, settings, "speech")
    try:
        # UUID-long session keys, of the anonymous tenant.
        live = [_Session(f"{i:08d}-0000-4000-8000-000000000000") for i in range(sessions)]
        await gate.admit("", "warm-up", new=True)  # loads the script
        await gate.ended("warm-up", None, added=True, keep=False)
        steps: list[tuple[str, dict[str, int]]] = []
        before = _calls(admin)
        for session in live:
            await gate.admit("", session.session_id, new=True)
        steps.append((f"{sessions} admissions", _delta(before, after := _calls(admin))))
        for session in live:
            session.audio_ms += 10_000
        await gate.renew(live)
        steps.append((f"one renewal of {sessions}", _delta(after, after2 := _calls(admin))))
        keys = gate.keys("")
        memory = {key: admin.memory_usage(key, samples=0) or 0 for key in keys}
        for session in live:
            session.audio_ms += 3_000
            await gate.ended(session.session_id, session, added=True, keep=False)
        steps.append((f"{sessions} ends", _delta(after2, _calls(admin))))
    finally:
        await client.aclose()
        admin.close()
    for what, calls in steps:
        print(f"{what}: {sum(calls.values())} commands, {calls.get('evalsha', 0)} EVALSHA")
        print(f"    {dict(sorted(calls.items()))}")
    per_session = (memory[keys[0]] + memory[keys[1]]) / sessions
    print(f"memory: {memory}; {per_session:.0f} bytes per counting session")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=500)
    args = parser.parse_args()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    server = shutil.which("redis-server") or "redis-server"
    argv = [server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                redis.Redis(port=port).ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        asyncio.run(_measure(port, args.sessions))
    finally:
        proc.terminate()
        proc.wait(10)


if __name__ == "__main__":
    main()
