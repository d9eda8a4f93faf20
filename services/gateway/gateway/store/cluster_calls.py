"""What the Cluster client needs around each call that the other modes' clients do not.

redis-py's asyncio Cluster client keeps a plain list of connections per node: a call
beyond `max_connections` on a node fails at once (`MaxConnectionsError`) where the
single and Sentinel pools make it wait. And when it reloads its slot map (after a
connection error, a timeout, a ClusterDown) it closes every connection, those that other
calls are writing on included: those calls fail with the event loop's own error for a
closed transport (RuntimeError under uvloop, AttributeError or TypeError on a writer
already gone), which no retry policy of redis-py's recognises. Measured with
`make bench-redis` (cluster:3, 16 simulated pods in one process) and
tests/integration/test_redis_cluster.py.
"""

from __future__ import annotations

import asyncio
from types import TracebackType

from gateway.errors import StoreUnavailable


class CallGate:
    """At most `limit` calls in flight (so no node ever has more: a call or pipeline
    holds one connection per node it touches); a caller waits up to `timeout_s`."""

    def __init__(self, limit: int, timeout_s: float) -> None:
        self._slots = asyncio.Semaphore(limit)
        self._timeout_s = timeout_s

    async def __aenter__(self) -> None:
        try:
            async with asyncio.timeout(self._timeout_s):
                await self._slots.acquire()
        except TimeoutError:
            raise StoreUnavailable(
                f"no Redis connection free within {self._timeout_s:g} s"
            ) from None

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._slots.release()


def closed_under_us(exc: BaseException) -> bool:
    """Whether `exc` is a write on a connection the client closed meanwhile."""
    text = str(exc)
    if isinstance(exc, RuntimeError):
        return "handler is closed" in text or "closed=True" in text
    if isinstance(exc, AttributeError | TypeError):
        return "'NoneType'" in text
    return False
