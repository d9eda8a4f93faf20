"""What a session costs this worker in CPU, learnt from its housekeeping ticks, so that
admission control can refuse the session that would saturate it before it does.

A tick's CPU share is modelled as `per_session x (sessions + start_cost_s x starts)`: a
start (the handshake, the session's record in Redis, a new gRPC stream) costs about as
much as `start_cost_s` seconds of a session's stream. Pricing starts apart keeps a flash
crowd (every session starting in the same second) from overstating a session's steady
cost, which would refuse sessions the worker could carry. The estimate is the ratio of
the sums over the last few ticks: a tick of few sessions (where the worker's fixed costs
weigh most) counts for little, a noisy tick is averaged out, and a change of cost (or of
the machine's speed) is followed within seconds.
"""

from __future__ import annotations

from collections import deque

# Below this CPU share the worker's fixed costs weigh too much in a sample, and the
# projection has nothing to protect yet.
_MIN_BUSY = 0.1
_WINDOW_TICKS = 5


class CpuModel:
    __slots__ = ("_start_cost_s", "_ticks", "per_session")

    def __init__(self, start_cost_s: float) -> None:
        self._start_cost_s = start_cost_s
        self._ticks: deque[tuple[float, float]] = deque(maxlen=_WINDOW_TICKS)
        self.per_session: float | None = None  # CPU share of one session's stream

    def observe(self, busy: float, sessions: float, starts: int) -> None:
        """One tick: the CPU share it used (0 to 1), its sessions (the mean of its two
        ends) and how many sessions started during it."""
        load = sessions + self._start_cost_s * starts
        if busy < _MIN_BUSY or load < 1:
            return
        self._ticks.append((busy, load))
        self.per_session = sum(b for b, _ in self._ticks) / sum(n for _, n in self._ticks)

    def projected(self, sessions: int) -> float:
        """The CPU share `sessions` steady streams would use (0 while nothing is known)."""
        return 0.0 if self.per_session is None else self.per_session * sessions
