"""The plan of a run, as pure functions: the knee search (the most streams a target
carries: doubling from a start while it carries them, then bisecting between the last
load carried and the first not carried) and the loads at fractions of a knee."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

# The fractions of the relay's knee at which every target runs (bench/README.md).
FRACTIONS = (0.3, 0.6, 0.8, 0.9, 1.0)
# The overload level: this many times the gateway's own knee.
OVERLOAD_FACTOR = 2.0


@dataclass
class KneeSearch:
    """Finds the largest load that is carried, assuming that a load is carried when a
    larger one is. Probe `next_load()`, `record()` what it gave, until `next_load()` is
    None; then `knee` is the largest load carried (0 if none was).

    Loads are multiples of `step`. The search stops when the gap between the largest
    load carried and the smallest not carried is at most `resolution` of the former (or
    one `step`), or when `limit` itself was carried (then the knee is a lower bound)."""

    start: int = 50
    limit: int = 4000
    resolution: float = 0.05
    step: int = 10
    carried: int = 0
    failed: int | None = None
    probes: list[tuple[int, bool]] = field(default_factory=list)

    @classmethod
    def seeded(
        cls,
        results: Iterable[tuple[int, bool]],
        *,
        start: int = 50,
        limit: int = 4000,
        resolution: float = 0.05,
        step: int = 10,
    ) -> KneeSearch:
        """A search that starts from loads already measured: the largest carried, and the
        smallest above it that was not (a lower load that failed is taken as noise)."""
        search = cls(start=start, limit=limit, resolution=resolution, step=step)
        done = list(results)
        search.carried = max((n for n, ok in done if ok), default=0)
        above = [n for n, ok in done if not ok and n > search.carried]
        search.failed = min(above, default=None)
        search.probes = done
        return search

    @property
    def knee(self) -> int:
        return self.carried

    @property
    def is_lower_bound(self) -> bool:
        """The limit was carried: the real knee is at or above it."""
        return self.failed is None and self.carried >= self.limit

    def next_load(self) -> int | None:
        if self.failed is None:
            if self.carried >= self.limit:
                return None
            if self.carried == 0:
                return self._round(min(self.start, self.limit))
            return min(self._round(2 * self.carried), self.limit)
        gap = self.failed - self.carried
        if gap <= max(self.step, self.resolution * self.carried):
            return None
        mid = self._round((self.carried + self.failed) / 2)
        if not self.carried < mid < self.failed:
            return None
        return mid

    def record(self, load: int, carried: bool) -> None:
        self.probes.append((load, carried))
        if carried:
            self.carried = max(self.carried, load)
        elif self.failed is None or load < self.failed:
            self.failed = load
        if self.failed is not None and self.failed <= self.carried:
            # A larger load carried after a smaller one failed: noise; trust the carried.
            self.failed = None

    def _round(self, load: float) -> int:
        return max(self.step, round(load / self.step) * self.step)


def fraction_loads(knee: int, fractions: Sequence[float] = FRACTIONS) -> list[tuple[float, int]]:
    """(fraction, streams) for each fraction of `knee`, at least one stream each; a load
    that two fractions round to is run once (for the first)."""
    out: list[tuple[float, int]] = []
    seen: set[int] = set()
    for f in fractions:
        n = max(1, round(f * knee))
        if n not in seen:
            seen.add(n)
            out.append((f, n))
    return out


def overload_load(gateway_knee: int, factor: float = OVERLOAD_FACTOR) -> int | None:
    """The overload level's streams: `factor` times the gateway's knee (None without one)."""
    if gateway_knee <= 0:
        return None
    return round(factor * gateway_knee)


def parse_fractions(text: str) -> list[float]:
    """`0.3,0.6,1.0` -> [0.3, 0.6, 1.0]: each in (0, 1.5], in the order given."""
    values = [float(v) for v in text.split(",") if v.strip()]
    bad = [v for v in values if not 0 < v <= 1.5]
    if bad or not values:
        raise ValueError(f"fractions must be in (0, 1.5]: {text!r}")
    return values
