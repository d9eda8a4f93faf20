"""The Redis client for the configured mode: one server, Sentinel, or Cluster.

redis-py's own clients do the routing: Sentinel's pool asks the sentinels for the current
primary (again after a failover: a READONLY reply or a broken connection sends it back to
them), and the Cluster client follows the slot map (MOVED, ASK, a failed node). Every
call stays bounded by the socket timeouts, whatever the mode.
"""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.connection import BlockingConnectionPool
from redis.asyncio.sentinel import Sentinel, SentinelConnectionPool
from redis.maint_notifications import MaintNotificationsConfig

from gateway.config import RedisSettings

# What SessionStore talks to: the calls it makes exist on both.
RedisClient = aioredis.Redis | RedisCluster


class BlockingSentinelPool(SentinelConnectionPool, BlockingConnectionPool):
    """Sentinel's pool, but callers beyond `max_connections` wait for a connection
    (bounded by `timeout`) rather than fail, as in single mode: finals of many sessions
    can land at once."""


def host_port(address: str) -> tuple[str, int]:
    host, sep, port = address.strip().rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ValueError(f"{address!r} is not host:port")
    return host, int(port)


def connect(settings: RedisSettings) -> RedisClient:
    """A client for `settings.mode`; nothing connects until the first call."""
    if settings.mode == "sentinel":
        return _sentinel_client(settings)
    if settings.mode == "cluster":
        return _cluster_client(settings)
    # Calls beyond the pool's size wait for a connection (bounded by the socket
    # timeout) rather than fail: finals of many sessions can land at once.
    pool = aioredis.BlockingConnectionPool.from_url(
        settings.url,
        max_connections=settings.max_connections,
        timeout=settings.socket_timeout_s,
        socket_timeout=settings.socket_timeout_s,
        socket_connect_timeout=settings.connect_timeout_s,
        decode_responses=True,
    )
    return aioredis.Redis(connection_pool=pool)


def _common(settings: RedisSettings) -> dict[str, Any]:
    kwargs: dict[str, Any] = {
        "socket_timeout": settings.socket_timeout_s,
        "socket_connect_timeout": settings.connect_timeout_s,
        "decode_responses": True,
    }
    if settings.password is not None:
        kwargs["password"] = settings.password.get_secret_value()
    if settings.tls:
        kwargs["ssl"] = True
        if settings.tls_ca_file:
            kwargs["ssl_ca_certs"] = settings.tls_ca_file
    return kwargs


def _sentinel_client(settings: RedisSettings) -> aioredis.Redis:
    if not settings.sentinels:
        raise ValueError("REDIS__MODE=sentinel needs REDIS__SENTINELS (host:port,...)")
    common = _common(settings)
    sentinel_kwargs: dict[str, Any] = {
        "socket_timeout": settings.socket_timeout_s,
        "socket_connect_timeout": settings.connect_timeout_s,
    }
    if settings.sentinel_password is not None:
        sentinel_kwargs["password"] = settings.sentinel_password.get_secret_value()
    if settings.tls:
        sentinel_kwargs["ssl"] = True
        if settings.tls_ca_file:
            sentinel_kwargs["ssl_ca_certs"] = settings.tls_ca_file
    sentinel = Sentinel(  # type: ignore[no-untyped-call]
        [host_port(a) for a in settings.sentinels],
        sentinel_kwargs=sentinel_kwargs,
        **common,
    )
    client: aioredis.Redis = sentinel.master_for(
        settings.sentinel_service,
        redis_class=aioredis.Redis,
        connection_pool_class=BlockingSentinelPool,
        max_connections=settings.max_connections,
        timeout=settings.socket_timeout_s,
    )
    return client


def _cluster_client(settings: RedisSettings) -> RedisCluster:
    if not settings.cluster_nodes:
        raise ValueError("REDIS__MODE=cluster needs REDIS__CLUSTER_NODES (host:port,...)")
    nodes = [ClusterNode(*host_port(a)) for a in settings.cluster_nodes]
    return RedisCluster(
        startup_nodes=nodes,
        max_connections=settings.max_connections,  # per node
        # redis-py's maintenance notifications (a RESP3 handshake on each new connection,
        # for Redis Enterprise's and Redis 8's planned moves) race with concurrent calls
        # on one node: a connection opened while another task's call reconnects fails
        # with a closed writer, a RuntimeError no caller can classify (measured:
        # `make bench-redis` cluster:3 with 8 simulated pods in one process). Off: slot
        # moves are followed through MOVED/ASK as before.
        maint_notifications_config=MaintNotificationsConfig(enabled=False),
        # A MOVED reply patches the slot map from the reply itself; redis-py's default
        # also reloads the whole map every 5th MOVED by closing every connection, those
        # of other sessions' calls in flight included, which then fail with a closed
        # transport (measured: 16 concurrent callers on a Cluster of 3). The map is
        # still reloaded after a connection error, a ClusterDown or a timeout.
        reinitialize_steps=0,
        **_common(settings),
    )
