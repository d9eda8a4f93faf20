"""The sessions live on this process, the pod's capacity, and its housekeeping tick."""

from __future__ import annotations

import asyncio

from gateway.config import LimitSettings
from gateway.observability import metrics
from gateway.observability.fold import FOLDER
from gateway.observability.loop_lag import LoopLag
from gateway.sessions.failures import session_taken_over
from gateway.sessions.live import LiveSession


class SessionRegistry:
    def __init__(self, limits: LimitSettings) -> None:
        self._limits = limits
        self.sessions: dict[str, LiveSession] = {}
        self._empty = asyncio.Event()
        self._empty.set()
        self.loop_lag = LoopLag()  # exported; admission control reads the same tick

    def add(self, session: LiveSession) -> None:
        """Register `session` as its id's driver on this process. Of two connections of one
        session (two resumes racing, in either order) the newer epoch's wins: the other is
        ended with `session_taken_over` (raised here if it is the newcomer)."""
        current = self.sessions.get(session.session_id)
        if current is not None and current is not session:
            if current.epoch > session.epoch:
                raise session_taken_over()
            current.abort(session_taken_over())
        self.sessions[session.session_id] = session
        self._empty.clear()
        metrics.SESSIONS_ACTIVE.set(len(self.sessions))

    def remove(self, session: LiveSession) -> None:
        if self.sessions.get(session.session_id) is session:
            del self.sessions[session.session_id]
            FOLDER.close(session)
        if not self.sessions:
            self._empty.set()
        metrics.SESSIONS_ACTIVE.set(len(self.sessions))

    def renewal_batch(self, tick: int, every: int) -> list[LiveSession]:
        """The sessions whose leases are due at `tick` when each is renewed once every
        `every` ticks: a fixed share of the pod's sessions each tick (by the hash of the
        id, stable for the process) rather than all of them at one instant."""
        phase = tick % every
        return [s for key, s in self.sessions.items() if hash(key) % every == phase]

    async def wait_empty(self) -> None:
        await self._empty.wait()

    def tick(self) -> None:
        """Move every session's rate allowance and idle deadline (once a second, for the
        whole pod, instead of a timer per session)."""
        now = asyncio.get_running_loop().time()
        for session in list(self.sessions.values()):
            session.tick(now)
        FOLDER.fold(self.sessions.values(), now)
