"""Admission control: a worker that is saturated refuses new sessions, so that the sessions
it took keep their latency (DESIGN.md, "Admission control").

Saturated means at its session cap (sessions plus those being opened), or its event loop
behind, as the housekeeping tick sees it (`observe`): the tick's lateness, held as a peak
that halves each tick (a lone garbage-collection pause refuses for a second or two, a loop
that stays behind keeps refusing); or the worker busy nearly all the time (its CPU time
over the tick, every thread's: the loop and gRPC's poller thread share one core, and a
loop of many short callbacks can be full while its timers still fire on time); or one
more session projected to take it past that CPU share (`CpuModel`, sampled four
times a second: a flash crowd is refused as it arrives, not after it has saturated the
worker). A resume of a session this worker already serves is admitted even then: it
replaces a connection rather than adds one.
"""

from __future__ import annotations

from gateway.config import LimitSettings
from gateway.errors import SessionError
from gateway.protocol import CloseCode, ErrorCode
from gateway.sessions.cpu_model import CpuModel

# A worker this busy (averaged over a few ticks) is full, whatever its sessions' projected
# cost: starts, long results or a noisy neighbour took what the projection left.
_FULL = 0.95


class Admission:
    __slots__ = (
        "_cap",
        "_last_sessions",
        "_max_busy",
        "_max_lag_s",
        "busy_level",
        "cpu",
        "lag_level_s",
        "opening",
        "started",
    )

    def __init__(self, limits: LimitSettings) -> None:
        self._cap = limits.max_concurrent_sessions
        self._max_lag_s = limits.max_loop_lag_s
        self._max_busy = limits.max_loop_busy
        self.lag_level_s = 0.0
        self.busy_level = 0.0
        self.opening = 0  # sessions admitted and not yet registered
        self.started = 0  # sessions admitted since the last CPU sample
        self._last_sessions = 0
        self.cpu = CpuModel(limits.start_cost_s)

    def admitted(self) -> None:
        self.opening += 1
        self.started += 1

    def observe(self, lag_s: float, busy: float = 0.0) -> None:
        """Once a tick: how late it woke (s), and the share of the tick the worker spent
        on the CPU (0 to 1)."""
        self.lag_level_s = max(lag_s, self.lag_level_s / 2)
        self.busy_level = (self.busy_level + busy) / 2

    def sample(self, cpu_s: float, elapsed_s: float, sessions: int) -> None:
        """A few times a second: the worker's CPU time over `elapsed_s` and the sessions
        it serves now (what the CPU projection learns from)."""
        mean = (self._last_sessions + sessions) / 2
        self.cpu.observe(cpu_s, elapsed_s, mean, self.started)
        self._last_sessions, self.started = sessions, 0

    @property
    def lagging(self) -> bool:
        """Behind now, whatever the projection said: its loop late, or its core full."""
        full = self._max_busy < 1 and self.busy_level > max(self._max_busy, _FULL)
        return self.lag_level_s > self._max_lag_s or full

    def over_budget(self, active: int) -> bool:
        """One more session would take the worker past its CPU share (1: no bound)."""
        return self._max_busy < 1 and self.cpu.projected(active + self.opening + 1) > self._max_busy

    def saturated(self, active: int) -> bool:
        return self.lagging or active + self.opening >= self._cap or self.over_budget(active)

    def refusal(self, active: int, *, serves_it: bool) -> SessionError | None:
        """Why a new connection is refused now, or None to admit it."""
        if serves_it:
            return None
        if active + self.opening >= self._cap:
            return capacity_exhausted("this gateway is at its session cap", 1.0)
        if self.lagging:
            return capacity_exhausted("this gateway is saturated", 2.0)
        if self.over_budget(active):
            return capacity_exhausted("this gateway is at its CPU budget", 1.0)
        return None


def capacity_exhausted(why: str, retry_after_s: float) -> SessionError:
    return SessionError(
        ErrorCode.CAPACITY_EXHAUSTED,
        f"{why}: connect again (another gateway may take it)",
        retryable=True,
        close_code=CloseCode.TRY_AGAIN_LATER,
        retry_after_s=retry_after_s,
    )
