"""Redis calls as the gateway makes them: bounded, and every fault of the store raised as
`StoreUnavailable` (unreachable, timed out, an error reply that says Redis cannot serve
now, a Cluster between two slot maps). The session store, the quotas and session deletion
all call Redis through the store's one `GuardedCalls`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from redis.asyncio.cluster import RedisCluster
from redis.exceptions import (
    ClusterDownError,
    ClusterError,
    NoScriptError,
    OutOfMemoryError,
    ReadOnlyError,
    ResponseError,
    SlotNotCoveredError,
    TryAgainError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from gateway.errors import StoreUnavailable
from gateway.observability.redis_ops import RedisOp
from gateway.store.cluster_calls import CallGate, closed_under_us
from gateway.store.connection import RedisClient

T = TypeVar("T")

# Error replies that mean the store cannot take writes now (a replica after a failover,
# maxmemory, a failed RDB save, a restart still loading, a script cache emptied by a
# restart, a Cluster resharding): faults of the store, like an unreachable Redis.
_STORE_FAULTS = (
    "READONLY",
    "OOM",
    "MISCONF",
    "LOADING",
    "NOSCRIPT",
    "MASTERDOWN",
    "CLUSTERDOWN",
    "TRYAGAIN",
    "NOREPLICAS",
    "BUSY",
)
_FAULT_CLASSES = (ReadOnlyError, OutOfMemoryError, NoScriptError, ClusterDownError, TryAgainError)


class GuardedCalls:
    """`await calls(op, fn, *args)`: `fn(*args)` counted as Redis operation `op`, with
    the store's faults as StoreUnavailable; on a Cluster client, at most `limit` calls in
    flight (`store/cluster_calls.py` says why)."""

    def __init__(self, client: RedisClient | None, *, limit: int, timeout_s: float) -> None:
        self.cluster = isinstance(client, RedisCluster)
        self._gate = CallGate(limit, timeout_s) if self.cluster else None

    async def __call__(
        self, op: str, fn: Callable[..., Awaitable[T]], *args: Any, **kwargs: Any
    ) -> T:
        try:
            with RedisOp(op):
                if self._gate is None:
                    return await fn(*args, **kwargs)
                async with self._gate:
                    return await fn(*args, **kwargs)
        except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
            raise StoreUnavailable(str(exc)) from exc
        except (SlotNotCoveredError, ClusterError) as exc:
            # A Cluster between a node's failure and its replica's promotion (no node
            # serves the slot yet), or redirected past redis-py's bound.
            raise StoreUnavailable(str(exc)) from exc
        except ResponseError as exc:
            if is_store_fault(exc):
                raise StoreUnavailable(str(exc)) from exc
            raise
        except (RuntimeError, AttributeError, TypeError) as exc:
            if self.cluster and closed_under_us(exc):
                raise StoreUnavailable(f"connection closed by a slot map reload: {exc}") from exc
            raise


def is_store_fault(exc: ResponseError) -> bool:
    """An error reply that says the store cannot serve now, not that the call was wrong.
    Inside a script Redis 7 keeps the original error's code at the start of the message."""
    if isinstance(exc, _FAULT_CLASSES):  # redis-py drops the code from these messages
        return True
    message = str(exc).upper()
    # A pipeline puts the failed command before the server's message.
    _, pipelined, rest = message.partition("OF PIPELINE CAUSED ERROR: ")
    if pipelined:
        message = rest.lstrip("('\"")
    message = message.lstrip("-")
    if message.startswith(_STORE_FAULTS):
        return True
    # A write that reached a replica (a slot map from before a failover): as READONLY.
    if message.startswith(("WAIT CANNOT BE USED WITH REPLICA", "ERR WAIT CANNOT BE USED")):
        return True
    # Older servers wrap an error raised inside a script: look for its code within.
    return message.startswith("ERR ERROR RUNNING SCRIPT") and any(
        f" {code} " in message or f"-{code} " in message for code in _STORE_FAULTS
    )
