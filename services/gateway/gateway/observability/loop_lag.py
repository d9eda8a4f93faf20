"""Event-loop lag: how late the pod's housekeeping tick wakes up.

A loop busy with other work (too many sessions, a long garbage collection, blocking
code) runs timers late; the lateness of a one-second sleep measures it without a
probe of its own. Admission control reads `LoopLag.seconds`.
"""

from __future__ import annotations

import asyncio

from gateway.observability import metrics


class LoopLag:
    """The last tick's lateness, in seconds (0 until the first tick)."""

    __slots__ = ("seconds",)

    def __init__(self) -> None:
        self.seconds = 0.0

    async def sleep(self, delay_s: float) -> None:
        """`asyncio.sleep(delay_s)`, measuring how much later than asked it returns."""
        loop = asyncio.get_running_loop()
        started = loop.time()
        await asyncio.sleep(delay_s)
        self.record(loop.time() - started - delay_s)

    def record(self, late_s: float) -> None:
        self.seconds = max(0.0, late_s)
        metrics.EVENT_LOOP_LAG.set(self.seconds)
