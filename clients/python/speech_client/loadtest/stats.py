"""What a load test counts: per-session results, live counters and latency percentiles."""

from __future__ import annotations

import math
from array import array
from collections.abc import Sequence
from dataclasses import dataclass, field

PERCENTILES = (50, 90, 99)


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """The nearest-rank `q`th percentile (0 < q <= 100) of ascending `sorted_values`."""
    if not sorted_values:
        raise ValueError("no values")
    if not 0 < q <= 100:
        raise ValueError(f"percentile must be in (0, 100], not {q}")
    rank = math.ceil(q / 100 * len(sorted_values))
    return sorted_values[max(rank, 1) - 1]


@dataclass(frozen=True, slots=True)
class LatencySummary:
    count: int
    p50: float | None = None
    p90: float | None = None
    p99: float | None = None
    max: float | None = None

    @classmethod
    def of(cls, values: Sequence[float]) -> LatencySummary:
        if not values:
            return cls(0)
        ordered = sorted(values)
        p50, p90, p99 = (percentile(ordered, q) for q in PERCENTILES)
        return cls(len(ordered), p50, p90, p99, ordered[-1])


@dataclass(slots=True)
class SessionResult:
    """One session's outcome. Times in seconds (monotonic clock differences)."""

    session_id: str
    source: str
    error_code: str | None = None
    error: str = ""
    close_code: int | None = None
    started_s: float | None = None  # session start to transcription_started
    first_transcript_s: float | None = None  # session start to the first transcript
    finals: int = 0
    interims: int = 0
    finals_without_latency: int = 0
    stopped: bool = False  # transcription_stopped arrived
    finals_reported: int | None = None  # transcription_stopped.finals
    audio_ms: int | None = None  # transcription_stopped.audio_ms
    reconnects: int = 0

    @property
    def ok(self) -> bool:
        return self.error_code is None and self.stopped


@dataclass(slots=True)
class LoadStats:
    """Everything the sessions report, also read live by the progress line."""

    sessions: int  # planned
    results: list[SessionResult] = field(default_factory=list)
    final_latencies: array[float] = field(default_factory=lambda: array("d"))
    active: int = 0
    finals: int = 0
    failed: int = 0
    resumes: int = 0  # transcription_resumed events so far

    @property
    def finished(self) -> int:
        return len(self.results)

    def add(self, result: SessionResult) -> None:
        self.results.append(result)
        if not result.ok:
            self.failed += 1
