"""What a session costs this worker in CPU, learnt from its housekeeping ticks, so that
admission control can refuse the session that would saturate it before it does.

A tick's CPU share is modelled as `per_session x (sessions + start_cost_s x starts)`: a
start (the handshake, the session's record in Redis, a new gRPC stream) costs about as
much as `start_cost_s` seconds of a session's stream. Pricing starts apart keeps a flash
crowd (every session starting in the same second) from overstating a session's steady
cost, which would refuse sessions the worker could carry.
"""

from __future__ import annotations

# Below this CPU share the worker's fixed costs weigh too much in a sample, and the
# projection has nothing to protect yet.
_MIN_BUSY = 0.1
# Each sample moves the estimate this far: a few seconds to follow a change of load.
_WEIGHT = 0.3


class CpuModel:
    __slots__ = ("_start_cost_s", "per_session")

    def __init__(self, start_cost_s: float) -> None:
        self._start_cost_s = start_cost_s
        self.per_session: float | None = None  # CPU share of one session's stream

    def observe(self, busy: float, sessions: float, starts: int) -> None:
        """One tick: the CPU share it used (0 to 1), its sessions (the mean of its two
        ends) and how many sessions started during it."""
        load = sessions + self._start_cost_s * starts
        if busy < _MIN_BUSY or load < 1:
            return
        sample = busy / load
        if self.per_session is None:
            self.per_session = sample
        else:
            # A tick of many starts says less about a session's steady cost (what a start
            # costs varies with what else is starting): it moves the estimate less.
            self.per_session += _WEIGHT * sessions / load * (sample - self.per_session)

    def projected(self, sessions: int) -> float:
        """The CPU share `sessions` steady streams would use (0 while nothing is known)."""
        return 0.0 if self.per_session is None else self.per_session * sessions
