"""The quotas on a Redis Cluster (three primaries, three replicas): a tenant's keys live
on one slot, each script runs on its tenant's shard, one renewal pipeline spans tenants
on different shards, and a renewal after the scripts were flushed (a restarted node, a
promoted replica) loads them again instead of failing."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis

from gateway.config import QuotaSettings, RedisSettings, Settings
from gateway.errors import SessionError
from gateway.protocol import ErrorCode
from gateway.quotas.gate import QuotaGate
from gateway.store.redis_store import SessionStore
from tests.support.redis_ha import ClusterSetup, cluster_setup

pytestmark = pytest.mark.integration


@dataclass
class Driver:
    session_id: str
    session_start_ms: int = 0
    audio_ms: int = 0


@pytest.fixture(scope="module")
def cluster(log_dir: Path) -> Iterator[ClusterSetup]:
    with cluster_setup(log_dir) as setup:
        yield setup


def tenants_on_every_shard(cluster: ClusterSetup, gate: QuotaGate) -> list[str]:
    by_primary: dict[int, str] = {}
    for i in range(200):
        tenant = f"tenant{i}"
        by_primary.setdefault(cluster.primary_of(gate.keys(tenant)[0]), tenant)
        if len(by_primary) == 3:
            return list(by_primary.values())
    raise AssertionError(f"tenants found on {len(by_primary)} shards only")


async def test_quotas_on_a_cluster(cluster: ClusterSetup) -> None:
    settings = Settings(
        redis=RedisSettings(
            mode="cluster", cluster_nodes=cluster.seeds.split(","), key_prefix="qc"
        ),
        quotas=QuotaSettings(max_sessions=1, starts_per_s=0),
    )
    # As the gateway builds it: on the session store's client and guarded calls.
    store = SessionStore.from_settings(settings.redis)
    gate = QuotaGate.for_store(store, settings)
    try:
        tenants = tenants_on_every_shard(cluster, gate)
        drivers = [Driver(f"{tenant}/s1") for tenant in tenants]
        for tenant, driver in zip(tenants, drivers, strict=True):
            assert await gate.admit(tenant, driver.session_id, new=True)
            with pytest.raises(SessionError) as refused:
                await gate.admit(tenant, f"{tenant}/s2", new=True)
            assert refused.value.code is ErrorCode.QUOTA_EXCEEDED
        for driver in drivers:
            driver.audio_ms = 1234
        # Scripts gone from every node: the renewal loads them and goes on.
        for port in cluster.nodes:
            with redis.Redis(port=port) as node:
                node.script_flush()
        await gate.renew(drivers)  # one pipeline over the three shards
        with cluster.client() as admin:
            seconds, _ = admin.time()
            day = str(seconds // 86400)
            for tenant in tenants:
                assert admin.hget(gate.keys(tenant)[2], day) == "1234"
        for tenant, driver in zip(tenants, drivers, strict=True):
            await gate.ended(driver.session_id, driver, added=True, keep=False)
            assert await gate.admit(tenant, f"{tenant}/s2", new=True)
    finally:
        await gate.close()
        await store.close()
