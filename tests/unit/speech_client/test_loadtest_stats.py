from __future__ import annotations

import pytest

from speech_client.loadtest.stats import LatencySummary, LoadStats, SessionResult, percentile


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]  # 1..100
    assert [percentile(values, q) for q in (1, 50, 90, 99, 100)] == [1, 50, 90, 99, 100]
    assert percentile([7.0], 50) == percentile([7.0], 99) == 7.0
    assert percentile([1.0, 2.0], 50) == 1.0
    assert percentile([1.0, 2.0], 51) == 2.0


@pytest.mark.parametrize(
    ("values", "q", "why"), [([], 50, "no values"), ([1.0], 0, "in"), ([1.0], 101, "in")]
)
def test_percentile_refuses_nothing_to_rank_or_a_bad_rank(
    values: list[float], q: float, why: str
) -> None:
    with pytest.raises(ValueError, match=why):
        percentile(values, q)


def test_summary_sorts_its_input_and_has_no_values_when_empty() -> None:
    summary = LatencySummary.of([0.3, 0.1, 0.2, 0.9])
    assert summary == LatencySummary(4, p50=0.2, p90=0.9, p99=0.9, max=0.9)
    assert LatencySummary.of([]) == LatencySummary(0, None, None, None, None)


def test_a_session_is_ok_only_without_error_and_with_its_stop() -> None:
    assert SessionResult("s", "noise", stopped=True).ok
    assert not SessionResult("s", "noise").ok
    assert not SessionResult("s", "noise", stopped=True, error_code="backend_error").ok


def test_stats_count_failed_sessions() -> None:
    stats = LoadStats(2)
    stats.add(SessionResult("a", "noise", stopped=True))
    stats.add(SessionResult("b", "noise", error_code="connect_failed"))
    assert (stats.finished, stats.failed) == (2, 1)
