"""The sessions live on this process, the pod's capacity, and its housekeeping tick."""

from __future__ import annotations

import asyncio
import logging

from gateway.config import LimitSettings
from gateway.observability import metrics
from gateway.sessions.live import LiveSession

log = logging.getLogger(__name__)


class SessionRegistry:
    def __init__(self, limits: LimitSettings, tick_s: float = 1.0) -> None:
        self._limits = limits
        self._tick_s = tick_s
        self.sessions: dict[str, LiveSession] = {}

    @property
    def at_capacity(self) -> bool:
        return len(self.sessions) >= self._limits.max_concurrent_sessions

    def add(self, session: LiveSession) -> None:
        self.sessions[session.session_id] = session
        metrics.SESSIONS_ACTIVE.set(len(self.sessions))

    def remove(self, session: LiveSession) -> None:
        if self.sessions.get(session.session_id) is session:
            del self.sessions[session.session_id]
        metrics.SESSIONS_ACTIVE.set(len(self.sessions))

    def tick(self) -> None:
        now = asyncio.get_running_loop().time()
        for session in list(self.sessions.values()):
            session.tick(now)

    async def run_housekeeping(self) -> None:
        """Once a tick: move every session's rate allowance and idle deadline. One task
        for the pod instead of a timer per session."""
        while True:
            await asyncio.sleep(self._tick_s)
            try:
                self.tick()
            except Exception:
                log.exception("housekeeping tick failed")
