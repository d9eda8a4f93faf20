"""Admission control: a worker that is saturated refuses new sessions, so that the sessions
it took keep their latency (DESIGN.md, "Admission control").

Saturated means at its session cap (sessions plus those being opened), or its event loop
behind, as the housekeeping tick sees it (`observe`): the tick's lateness, held as a peak
that halves each tick (a lone garbage-collection pause refuses for a second or two, a loop
that stays behind keeps refusing); or the loop thread busy nearly all the time (its CPU
time over the tick: a loop of many short callbacks can be full while its timers still
fire on time). A resume of a session this worker already serves is
admitted even then: it replaces a connection rather than adds one.
"""

from __future__ import annotations

from gateway.config import LimitSettings
from gateway.errors import SessionError
from gateway.protocol import CloseCode, ErrorCode


class Admission:
    __slots__ = ("_cap", "_max_busy", "_max_lag_s", "busy_level", "lag_level_s", "opening")

    def __init__(self, limits: LimitSettings) -> None:
        self._cap = limits.max_concurrent_sessions
        self._max_lag_s = limits.max_loop_lag_s
        self._max_busy = limits.max_loop_busy
        self.lag_level_s = 0.0
        self.busy_level = 0.0
        self.opening = 0  # sessions admitted and not yet registered

    def observe(self, lag_s: float, busy: float = 0.0) -> None:
        """Once a tick: how late it woke (s), and the share of the tick the loop's thread
        spent on the CPU (0 to 1)."""
        self.lag_level_s = max(lag_s, self.lag_level_s / 2)
        self.busy_level = (self.busy_level + busy) / 2

    @property
    def lagging(self) -> bool:
        return self.lag_level_s > self._max_lag_s or self.busy_level > self._max_busy

    def saturated(self, active: int) -> bool:
        return self.lagging or active + self.opening >= self._cap

    def refusal(self, active: int, *, serves_it: bool) -> SessionError | None:
        """Why a new connection is refused now, or None to admit it."""
        if serves_it:
            return None
        if active + self.opening >= self._cap:
            return capacity_exhausted("this gateway is at its session cap", 1.0)
        if self.lagging:
            return capacity_exhausted("this gateway is saturated", 2.0)
        return None


def capacity_exhausted(why: str, retry_after_s: float) -> SessionError:
    return SessionError(
        ErrorCode.CAPACITY_EXHAUSTED,
        f"{why}: connect again (another gateway may take it)",
        retryable=True,
        close_code=CloseCode.TRY_AGAIN_LATER,
        retry_after_s=retry_after_s,
    )
