"""The fleet on Redis with Sentinel: a primary, a replica and three sentinels (real
`redis-server` and `redis-sentinel` processes), one setup shared by the module."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tests.support.ha_sessions import (
    HaFleet,
    SdkRun,
    background,
    finals_signature,
    ha_fleet,
    noise,
    resume_from_start,
    run_sdk,
)
from tests.support.processes import Proc, poll_until
from tests.support.redis_ha import SentinelSetup, sentinel_setup
from tests.support.riva_direct import direct_finals
from tests.support.ws import frames

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def sentinel(log_dir: Path) -> Iterator[SentinelSetup]:
    with sentinel_setup(log_dir) as setup:
        yield setup


@pytest.fixture(scope="module")
def fleet(log_dir: Path, sentinel: SentinelSetup, asr_synthetic_server: Proc) -> Iterator[HaFleet]:
    with ha_fleet(
        log_dir,
        env=sentinel.gateway_env(),
        riva_target=f"127.0.0.1:{asr_synthetic_server.port}",
        names=["gateway-s1", "gateway-s2"],
    ) as fleet:
        yield fleet


def primary(setup: SentinelSetup) -> redis.Redis:
    return redis.Redis(port=setup.primary_port(), decode_responses=True)


def stored_seqs(client: redis.Redis, session_id: str) -> list[int]:
    entries = client.xrange(f"speech:{{{session_id}}}:finals")
    return [int(entry_id.split("-")[0]) for entry_id, _ in entries]


async def test_a_session_through_nginx_on_sentinels_primary(
    fleet: HaFleet, sentinel: SentinelSetup, asr_synthetic_server: Proc
) -> None:
    audio = noise(6.0, 61)
    reference = await direct_finals(f"127.0.0.1:{asr_synthetic_server.port}", frames(audio, 3200))
    session_id = f"sentinel-{time.time_ns()}"
    run = await run_sdk(fleet.url, audio, session_id)
    assert [(f.text, int(f.raw["end_ms"])) for f in run.finals] == reference
    assert run.committed, "finals were committed (WAIT for the replica answered)"
    with primary(sentinel) as client:
        assert stored_seqs(client, session_id) == list(range(1, len(reference) + 1))
        assert client.hget(f"speech:{{{session_id}}}:meta", "state") == "stopped"


async def test_primary_killed_mid_session_the_replica_takes_over(
    fleet: HaFleet, sentinel: SentinelSetup, asr_synthetic_server: Proc
) -> None:
    """kill -9 of the primary after the 2nd final; the sentinels promote the replica
    (and the old primary comes back as a replica, as supervisor would restart it): the
    session ends with its exact transcript; every final it was told was committed is on
    the promoted replica; the log has no hole, and a resume on the other gateway
    replays every final."""
    target = f"127.0.0.1:{asr_synthetic_server.port}"
    audio = noise(14.0, 62)
    reference = await direct_finals(target, frames(audio, 3200))
    session_id = f"sentinel-kill-{time.time_ns()}"
    old_port = sentinel.wait_until_settled()
    seen: dict[str, object] = {}

    def fail_over() -> None:
        sentinel.servers[old_port].kill(signal.SIGKILL)
        sentinel.servers[old_port].popen.wait(5)
        poll_until(lambda: sentinel.primary_port() != old_port, 30, "a replica promoted")
        with primary(sentinel) as client:
            # Before the old primary returns: what the promoted replica holds.
            seen["promoted_seqs"] = stored_seqs(client, session_id)
        sentinel.restart(old_port)

    def on_final(run: SdkRun) -> None:
        if len(run.finals) == 2 and "task" not in seen:
            seen["committed"] = len(run.committed)
            seen["task"] = background(fail_over)

    run = await run_sdk(fleet.url, audio, session_id, on_final=on_final)
    task = seen["task"]
    await task  # type: ignore[misc]
    sentinel.wait_until_settled()

    assert [(f.text, int(f.raw["end_ms"])) for f in run.finals] == reference
    assert [f.seq for f in run.finals] == list(range(1, len(reference) + 1))
    assert run.reconnects == 0, "the session went on through the failover"
    # Each audio_committed covered one more final here (one final per commit).
    promoted = seen["promoted_seqs"]
    assert isinstance(promoted, list)
    assert len(promoted) >= int(str(seen["committed"])), (promoted, seen["committed"])
    with primary(sentinel) as client:
        assert stored_seqs(client, session_id) == list(range(1, len(reference) + 1))
        owner = str(client.hget(f"speech:{{{session_id}}}:meta", "owner"))
    other = next(name for name in fleet.pods if name != owner)
    events = await resume_from_start(fleet.pod_url(other), session_id, run.token)
    assert finals_signature(events) == run.signature()
    assert events[-1]["event"] == "transcription_stopped"
