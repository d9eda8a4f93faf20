"""What a session costs this worker in CPU, learnt from samples of its process's CPU time
(four a second), so that admission control can refuse the session that would saturate
the worker before it does.

A sample's CPU time is modelled as `per_session x (session-seconds + start_cost_s x
starts)`: a start (the handshake, the session's record in Redis, a new gRPC stream) costs
about as much as `start_cost_s` seconds of a session's stream. Pricing starts apart keeps
a flash crowd (every session starting in the same second) from overstating a session's
steady cost, which would refuse sessions the worker could carry. The estimate is the
ratio of the sums over the last few seconds: a sample of few sessions (where the
worker's fixed and warm-up costs weigh most) counts for little, a noisy one is averaged
out, and a change of cost (or of the machine's speed) is followed within seconds.
"""

from __future__ import annotations

from collections import deque

# Below this CPU share the worker's fixed costs weigh too much in a sample, and the
# projection has nothing to protect yet.
_MIN_BUSY = 0.1
_WINDOW = 20  # samples: 5 s at four a second
# A worker this busy over a sample was saturated: the work asked of it was more than the
# CPU time it used (a flash crowd's starts queue up), so the sample can raise the
# estimate, never lower it.
_SATURATED = 0.85


class CpuModel:
    __slots__ = ("_samples", "_start_cost_s", "per_session")

    def __init__(self, start_cost_s: float) -> None:
        self._start_cost_s = start_cost_s
        self._samples: deque[tuple[float, float]] = deque(maxlen=_WINDOW)
        self.per_session: float | None = None  # CPU share of one session's stream

    def observe(self, cpu_s: float, elapsed_s: float, sessions: float, starts: int) -> None:
        """One sample: the CPU time the worker used over `elapsed_s`, its sessions (the
        mean of the sample's two ends) and how many sessions started during it."""
        if sessions < 1 or cpu_s < _MIN_BUSY * elapsed_s:
            return  # the worker's own costs (its start, a warm-up request), not a stream's
        load = sessions * elapsed_s + self._start_cost_s * starts  # session-seconds
        if (
            cpu_s >= _SATURATED * elapsed_s
            and self.per_session is not None
            and cpu_s / load < self.per_session
        ):
            return  # a saturated worker did less than was asked: a floor, not the cost
        self._samples.append((cpu_s, load))
        self.per_session = sum(c for c, _ in self._samples) / sum(n for _, n in self._samples)

    def projected(self, sessions: int) -> float:
        """The CPU share `sessions` steady streams would use (0 while nothing is known)."""
        return 0.0 if self.per_session is None else self.per_session * sessions
