"""The fleet on a Redis Cluster: three primaries and three replicas (real `redis-server`
processes, created by `redis-cli --cluster create`), one Cluster shared by the module."""

from __future__ import annotations

import asyncio
import json
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from redis.crc import key_slot

from gateway.config import RedisSettings
from gateway.store.redis_store import SessionStore
from gateway.store.takeovers import slot_channel
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
from tests.support.redis_ha import ClusterSetup, cluster_setup, first_slot_of, reshard
from tests.support.riva_direct import direct_finals
from tests.support.ws import frames, next_event, open_ws
from tests.support.ws import start as start_session

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def cluster(log_dir: Path) -> Iterator[ClusterSetup]:
    with cluster_setup(log_dir) as setup:
        yield setup


@pytest.fixture(scope="module")
def fleet(log_dir: Path, cluster: ClusterSetup, asr_synthetic_server: Proc) -> Iterator[HaFleet]:
    with ha_fleet(
        log_dir,
        env=cluster.gateway_env(),
        riva_target=f"127.0.0.1:{asr_synthetic_server.port}",
        names=["gateway-c1", "gateway-c2"],
    ) as fleet:
        yield fleet


def meta_key(session_id: str) -> str:
    return f"speech:{{{session_id}}}:meta"


def stored_seqs(client: redis.RedisCluster, session_id: str) -> list[int]:
    entries = client.xrange(f"speech:{{{session_id}}}:finals")
    return [int(entry_id.split("-")[0]) for entry_id, _ in entries]


async def test_a_session_through_nginx_on_the_cluster(
    fleet: HaFleet, cluster: ClusterSetup, asr_synthetic_server: Proc
) -> None:
    audio = noise(6.0, 71)
    reference = await direct_finals(f"127.0.0.1:{asr_synthetic_server.port}", frames(audio, 3200))
    session_id = f"cluster-{time.time_ns()}"
    run = await run_sdk(fleet.url, audio, session_id)
    assert [(f.text, int(f.raw["end_ms"])) for f in run.finals] == reference
    assert run.committed, "finals were committed (WAIT for the shard's replica answered)"
    with cluster.client() as client:
        assert stored_seqs(client, session_id) == list(range(1, len(reference) + 1))
        assert client.hget(meta_key(session_id), "state") == "stopped"


async def test_calls_beyond_the_pool_wait_for_a_connection(cluster: ClusterSetup) -> None:
    """redis-py's Cluster client fails a call beyond `max_connections` on a node at once;
    the store makes it wait instead, as the single and Sentinel pools do: a burst of
    finals from many sessions must not turn into store faults."""
    settings = RedisSettings(
        mode="cluster",
        cluster_nodes=cluster.seeds.split(","),
        max_connections=4,
        key_prefix="burst",
        wait_replicas=0,
    )
    store = SessionStore.from_settings(settings)
    try:
        epochs = await asyncio.gather(
            *(
                store.create(
                    f"burst-{i:04d}",
                    config_json="{}",
                    token=f"t{i}",
                    owner="test",
                    ttl_s=60,
                    retry_window_s=0,
                )
                for i in range(64)
            )
        )
    finally:
        await store.close()
    assert epochs == [1] * 64


async def test_takeover_reaches_the_old_driver_on_every_shard(
    fleet: HaFleet, cluster: ClusterSetup
) -> None:
    """One session on each shard, driven from gateway 1; each resumed on gateway 2:
    every old connection gets session_taken_over at once (sharded pub/sub on the
    session's slot), not at the next lease renewal (10 s)."""
    cluster.wait_healthy()
    by_shard: dict[int, str] = {}
    n = 0
    while len(by_shard) < 3:
        session_id = f"takeover-{n}-{time.time_ns()}"
        by_shard.setdefault(cluster.primary_of(meta_key(session_id)), session_id)
        n += 1
    for port, session_id in by_shard.items():
        channel = slot_channel("speech", key_slot(meta_key(session_id).encode()))
        with redis.Redis(port=port, decode_responses=True) as node:
            poll_until(
                lambda n=node, c=channel: n.execute_command("PUBSUB", "SHARDNUMSUB", c)[1] == 2,
                60,
                "both gateways subscribed to the slot's channel",
            )
    first, second = fleet.pod_url("gateway-c1"), fleet.pod_url("gateway-c2")
    audio = frames(noise(3.0, 72), 3200)

    async def taken_over(session_id: str) -> tuple[str, float]:
        async with await open_ws(first, session_id) as old:
            token = str((await start_session(old))["resume_token"])
            for frame in audio:
                await old.send(frame)
            while (await next_event(old))["event"] != "audio_committed":
                pass
            async with await open_ws(second, session_id) as new:
                resume = {"type": "resume_transcription", "resume_token": token, "last_seq": 0}
                resumed_at = time.monotonic()
                await new.send(json.dumps(resume))
                while True:
                    event = await next_event(old, wait_s=30)
                    if event["event"] == "error":
                        return str(event["code"]), time.monotonic() - resumed_at

    outcomes = await asyncio.gather(*(taken_over(s) for s in by_shard.values()))
    for code, after_s in outcomes:
        assert code == "session_taken_over"
        assert after_s < 5.0, f"told after {after_s:.1f} s: by a lease renewal, not a notice"


async def test_shard_primary_killed_mid_session_its_replica_takes_over(
    fleet: HaFleet, cluster: ClusterSetup, asr_synthetic_server: Proc
) -> None:
    """kill -9 of the primary that holds the session's slot after the 2nd final; its
    replica is promoted (and the old primary comes back as a replica): the session ends
    with its exact transcript; what it was told was committed is on the promoted
    replica; no hole; a resume on the other gateway replays every final."""
    cluster.wait_healthy()
    target = f"127.0.0.1:{asr_synthetic_server.port}"
    audio = noise(14.0, 73)
    reference = await direct_finals(target, frames(audio, 3200))
    session_id = f"cluster-kill-{time.time_ns()}"
    old_port = cluster.primary_of(meta_key(session_id))
    seen: dict[str, object] = {}

    def fail_over() -> None:
        cluster.nodes[old_port].kill(signal.SIGKILL)
        cluster.nodes[old_port].popen.wait(5)

        def promoted() -> bool:
            new_port = cluster.primary_of(meta_key(session_id))
            with redis.Redis(port=new_port, decode_responses=True) as node:
                seen["promoted_seqs"] = [
                    int(i.split("-")[0]) for i, _ in node.xrange(f"speech:{{{session_id}}}:finals")
                ]
            return new_port != old_port

        poll_until(promoted, 30, "the shard's replica promoted")
        cluster.restart(old_port)

    def on_final(run: SdkRun) -> None:
        if len(run.finals) == 2 and "task" not in seen:
            seen["committed"] = len(run.committed)
            seen["task"] = background(fail_over)

    run = await run_sdk(fleet.url, audio, session_id, on_final=on_final)
    await seen["task"]  # type: ignore[misc]
    cluster.wait_healthy()

    assert [(f.text, int(f.raw["end_ms"])) for f in run.finals] == reference
    assert [f.seq for f in run.finals] == list(range(1, len(reference) + 1))
    assert run.reconnects == 0, "the session went on through the failover"
    promoted = seen["promoted_seqs"]
    assert isinstance(promoted, list)
    assert len(promoted) >= int(str(seen["committed"])), (promoted, seen["committed"])
    with cluster.client() as client:
        assert stored_seqs(client, session_id) == list(range(1, len(reference) + 1))
        owner = str(client.hget(meta_key(session_id), "owner"))
    other = next(name for name in fleet.pods if name != owner)
    events = await resume_from_start(fleet.pod_url(other), session_id, run.token)
    assert finals_signature(events) == run.signature()
    assert events[-1]["event"] == "transcription_stopped"


def session_id_in_slot(slot: int, prefix: str) -> str:
    n = 0
    while key_slot(f"{prefix}-{n}".encode()) != slot:
        n += 1
    return f"{prefix}-{n}"


async def test_resharding_a_live_sessions_slot_loses_nothing(
    fleet: HaFleet, cluster: ClusterSetup, asr_synthetic_server: Proc
) -> None:
    """`redis-cli --cluster reshard` moves the slot of a live session (after its 2nd
    final) to another shard: the session goes on with its exact transcript, no
    reconnect, no hole in its log, now on the other shard."""
    cluster.wait_healthy()
    primaries = [p for p in cluster.nodes if cluster.is_primary(p)]
    source, destination = primaries[0], primaries[1]
    session_id = session_id_in_slot(first_slot_of(source), f"reshard{time.time_ns()}")
    assert cluster.primary_of(meta_key(session_id)) == source
    target = f"127.0.0.1:{asr_synthetic_server.port}"
    audio = noise(12.0, 74)
    reference = await direct_finals(target, frames(audio, 3200))
    seen: dict[str, object] = {}

    def on_final(run: SdkRun) -> None:
        if len(run.finals) == 2 and "task" not in seen:
            seen["task"] = background(lambda: reshard(source, destination))

    run = await run_sdk(fleet.url, audio, session_id, on_final=on_final)
    await seen["task"]  # type: ignore[misc]

    assert cluster.primary_of(meta_key(session_id)) == destination
    assert [(f.text, int(f.raw["end_ms"])) for f in run.finals] == reference
    assert run.reconnects == 0
    with cluster.client() as client:
        assert stored_seqs(client, session_id) == list(range(1, len(reference) + 1))
        assert client.hget(meta_key(session_id), "state") == "stopped"
