"""Takeover notices: how a resume on any pod tells the session's previous driver at once.

The RESUME and CREATE scripts publish "<epoch> <session_id>" in the same step as they
bump the epoch. Single and Sentinel modes: on one channel, `{prefix}:takeover`, which
every pod subscribes to. Cluster mode: on sharded pub/sub (`SPUBLISH`, Redis 7), on the
channel of the session's own slot, `{prefix}:takeover:{<tag>}`, where <tag> is a string
that hashes to that slot. Why one channel per slot:

- A script may only touch its own slot, shard channels included: the notice can stay in
  the script (atomic with the bump) only if its channel is in the session's slot.
- The channel moves with its slot (resharding, failover), so a notice always goes to the
  shard that holds the session, and nowhere else (classic PUBLISH in a Cluster is copied
  to every node over the bus).
- A pod subscribes once to all 16384 slot channels (one SSUBSCRIBE each, on one pub/sub
  connection per primary, a fraction of a second), whatever its sessions: no
  subscription per session, nothing to add or drop as sessions come and go. Each shard
  holds the channels of its own slots only.

A subscription ends (raises) when a connection breaks or a shard drops channels (a slot
moved away: Redis 7 sends `sunsubscribe`); the caller subscribes again, and renews its
leases once the new subscription is confirmed, so that a notice lost in the gap still
stops the old driver (the renewal sees the newer epoch).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import AsyncIterator
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.connection import ConnectionPool
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.crc import REDIS_CLUSTER_HASH_SLOTS, key_slot

# How long the server may take to confirm a subscription.
_CONFIRM_TIMEOUT_S = 10.0


class SubscriptionLost(Exception):
    """The subscription no longer covers every channel: subscribe again."""


@functools.cache
def slot_tags() -> tuple[str, ...]:
    """For each Cluster slot, a short string that hashes to it (about 0.2 s, once)."""
    tags: list[str | None] = [None] * REDIS_CLUSTER_HASH_SLOTS
    missing = REDIS_CLUSTER_HASH_SLOTS
    i = 0
    while missing:
        tag = str(i)
        slot = key_slot(tag.encode())
        if tags[slot] is None:
            tags[slot] = tag
            missing -= 1
        i += 1
    return tuple(t for t in tags if t is not None)


def slot_channel(prefix: str, slot: int) -> str:
    return f"{prefix}:takeover:{{{slot_tags()[slot]}}}"


def parse(data: Any) -> tuple[str, int]:
    """(session_id, epoch) from a notice's payload."""
    epoch, _, session_id = str(data).partition(" ")
    return session_id, int(epoch)


class TakeoverSubscription:
    """One pod's subscription; `subscribe()` returns once the server confirmed it."""

    def __init__(self, client: aioredis.Redis | RedisCluster, prefix: str) -> None:
        self._client = client
        self._prefix = prefix
        self._pubsub: aioredis.client.PubSub | None = None
        self._node_pubsubs: list[aioredis.client.PubSub] = []
        self._pools: list[ConnectionPool] = []
        self._queue: asyncio.Queue[tuple[str, int] | BaseException] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []

    async def subscribe(self) -> None:
        if isinstance(self._client, RedisCluster):
            await self._subscribe_cluster(self._client)
        else:
            await self._subscribe_single(self._client)

    async def _subscribe_single(self, client: aioredis.Redis) -> None:
        pubsub = self._pubsub = client.pubsub()
        await pubsub.subscribe(f"{self._prefix}:takeover")
        async with asyncio.timeout(_CONFIRM_TIMEOUT_S):
            while True:
                message = await pubsub.get_message(timeout=_CONFIRM_TIMEOUT_S)
                if message is not None and message["type"] == "subscribe":
                    break
        self._tasks.append(
            asyncio.create_task(self._pump(pubsub, "message", "subscribe", "unsubscribe"))
        )

    async def _subscribe_cluster(self, client: RedisCluster) -> None:
        # A slot map from before a failover or resharding would send subscriptions to
        # nodes that no longer hold the slots: read it afresh (after the client's own
        # first initialisation, which also reads the server's command table).
        await client.initialize()
        await client.nodes_manager.initialize()
        # The Cluster client's slot map says which primary holds each slot's channel;
        # each primary gets one pub/sub connection of its own (redis-py's ClusterPubSub
        # rebuilds its bookkeeping per channel: seconds for 16384 of them).
        by_node: dict[str, tuple[ClusterNode, list[str]]] = {}
        for slot in range(REDIS_CLUSTER_HASH_SLOTS):
            channel = slot_channel(self._prefix, slot)
            node = client.get_node_from_key(channel)
            if node is None:
                raise SubscriptionLost(f"no node holds slot {slot}")
            by_node.setdefault(node.name, (node, []))[1].append(channel)
        for node, channels in by_node.values():
            # No silent reconnect: a broken connection ends the subscription (and the
            # caller subscribes again, then renews its leases).
            kwargs = {**node.connection_kwargs, "retry": Retry(NoBackoff(), 0)}
            pool = ConnectionPool(
                connection_class=node.connection_class, max_connections=1, **kwargs
            )
            self._pools.append(pool)
            pubsub = aioredis.client.PubSub(connection_pool=pool)
            self._node_pubsubs.append(pubsub)
            await pubsub.ssubscribe(channels[0])  # opens the connection
            connection = pubsub.connection
            assert connection is not None
            # One SSUBSCRIBE per slot (several in one would be CROSSSLOT), all in one write.
            await connection.send_packed_command(
                connection.pack_commands([("SSUBSCRIBE", c) for c in channels[1:]])
            )
            pubsub.shard_channels.update(dict.fromkeys(channels[1:]))
        async with asyncio.timeout(_CONFIRM_TIMEOUT_S):
            for pubsub, (_, channels) in zip(self._node_pubsubs, by_node.values(), strict=True):
                await _await_confirmations(pubsub, len(channels))
        for pubsub in self._node_pubsubs:
            self._tasks.append(
                asyncio.create_task(self._pump(pubsub, "smessage", "ssubscribe", "sunsubscribe"))
            )

    async def _pump(
        self, pubsub: aioredis.client.PubSub, data: str, added: str, dropped: str
    ) -> None:
        try:
            while True:
                message = await pubsub.get_message(timeout=None)
                if message is None:
                    continue
                if message["type"] == data:
                    self._queue.put_nowait(parse(message["data"]))
                elif message["type"] == dropped:
                    raise SubscriptionLost(f"the server dropped {message['channel']}")
                elif message["type"] == added:
                    # redis-py reconnected and subscribed again by itself: notices in the
                    # gap are lost, so start over (and renew the leases).
                    raise SubscriptionLost("subscribed again after a reconnect")
        except asyncio.CancelledError:
            raise
        except BaseException as exc:
            self._queue.put_nowait(exc)

    async def notices(self) -> AsyncIterator[tuple[str, int]]:
        """(session_id, epoch) of each takeover; raises when the subscription is lost."""
        while True:
            item = await self._queue.get()
            if isinstance(item, BaseException):
                raise item
            yield item

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(BaseException):
                await task
        if self._pubsub is not None:
            with contextlib.suppress(Exception):
                await self._pubsub.aclose()  # type: ignore[no-untyped-call]
        for pubsub in self._node_pubsubs:
            with contextlib.suppress(Exception):
                await pubsub.aclose()  # type: ignore[no-untyped-call]
        for pool in self._pools:
            with contextlib.suppress(Exception):
                await pool.aclose()


async def _await_confirmations(pubsub: aioredis.client.PubSub, expected: int) -> None:
    confirmed = 0
    while confirmed < expected:
        message = await pubsub.get_message(timeout=_CONFIRM_TIMEOUT_S)
        if message is not None and message["type"] == "ssubscribe":
            confirmed += 1
