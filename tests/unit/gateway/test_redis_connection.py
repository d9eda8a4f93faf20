"""Redis connection modes from settings: which redis-py client each builds (no server
needed: the clients connect lazily), and the slot channels of takeover notices."""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster
from redis.crc import key_slot
from redis.exceptions import ResponseError

from gateway.config import RedisSettings, Settings
from gateway.store.connection import BlockingSentinelPool, connect, host_port
from gateway.store.faults import is_store_fault
from gateway.store.takeovers import slot_channel, slot_tags


def test_modes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS__MODE", "sentinel")
    monkeypatch.setenv("REDIS__SENTINELS", "10.0.0.1:26379, 10.0.0.2:26379")
    monkeypatch.setenv("REDIS__SENTINEL_SERVICE", "sessions")
    monkeypatch.setenv("REDIS__PASSWORD", "hunter2")
    settings = Settings().redis
    assert settings.mode == "sentinel"
    assert settings.sentinels == ["10.0.0.1:26379", "10.0.0.2:26379"]
    assert settings.sentinel_service == "sessions"
    assert "hunter2" not in repr(settings)


@pytest.mark.parametrize(
    ("mode", "wait", "expected"),
    [("single", None, 0), ("sentinel", None, 1), ("cluster", None, 1), ("cluster", 0, 0)],
)
def test_wait_for_a_replica_by_default_where_replicas_exist(
    mode: str, wait: int | None, expected: int
) -> None:
    settings = RedisSettings.model_validate({"mode": mode, "wait_replicas": wait})
    assert settings.replicas_to_wait == expected


async def test_each_mode_builds_redis_pys_own_client() -> None:
    single = connect(RedisSettings(url="redis://127.0.0.1:1/0"))
    assert type(single) is aioredis.Redis
    sentinel = connect(
        RedisSettings(mode="sentinel", sentinels=["127.0.0.1:1"], sentinel_service="svc")
    )
    assert isinstance(sentinel, aioredis.Redis)
    pool = sentinel.connection_pool
    assert isinstance(pool, BlockingSentinelPool)
    assert pool.service_name == "svc"
    cluster = connect(RedisSettings(mode="cluster", cluster_nodes=["127.0.0.1:1", "127.0.0.1:2"]))
    assert isinstance(cluster, RedisCluster)
    for client in (single, sentinel, cluster):
        await client.aclose()


def test_a_mode_without_its_addresses_is_refused() -> None:
    with pytest.raises(ValueError, match="REDIS__SENTINELS"):
        connect(RedisSettings(mode="sentinel"))
    with pytest.raises(ValueError, match="REDIS__CLUSTER_NODES"):
        connect(RedisSettings(mode="cluster"))
    with pytest.raises(ValueError, match="host:port"):
        host_port("nohost")


def test_every_slot_has_a_channel_in_that_slot() -> None:
    tags = slot_tags()
    assert len(tags) == 16384
    for slot in (0, 1, 866, 16383):
        assert key_slot(slot_channel("speech", slot).encode()) == slot
    # The channel of a session is in the slot of its keys (a script may touch only it).
    meta = "speech:{session-42}:meta"
    assert key_slot(slot_channel("speech", key_slot(meta.encode())).encode()) == key_slot(
        meta.encode()
    )


def test_store_faults_inside_a_pipeline_are_store_faults() -> None:
    """A pipeline puts the failed command before the server's message; a WAIT that
    reached a replica (a slot map from before a failover) is a fault like READONLY."""
    pipelined = "Command # 1 (EVALSHA abc 2 k1 k2) of pipeline caused error: "
    assert is_store_fault(ResponseError(pipelined + "('MASTERDOWN Link with MASTER is down',)"))
    assert is_store_fault(
        ResponseError(
            "Command # 2 (WAIT 1 500) of pipeline caused error: "
            "('WAIT cannot be used with replica instances.',)"
        )
    )
    assert not is_store_fault(ResponseError(pipelined + "('WRONGTYPE Operation against a key',)"))
