"""The JSON of `make bench`, from levels as the run tags them, without servers: the
knees and their ratio, the CPU ratio at the fractions both targets carried, the added
latency at 0.6, memory at the gateway's knee, the overload object, and when a level
counts as carried."""

from __future__ import annotations

from typing import Any

import pytest

from bench import stats, summary


def _level(target: str, n: int, phase: str = "fraction", **kw: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "target": target,
        "streams": n,
        "phase": phase,
        "fraction": None,
        "seconds": 20.0 if phase != "search" else 6.0,
        "streams_started": n,
        "refused": 0,
        "errors": 0,
        "finals_received": 10 * n,
        "finals_expected": 10 * n,
        "finals_lost": 0,
        "cpu_pct": 0.1 * n,
        "cpu_pct_per_stream": 0.1,
        "p99_ms": 20.0,
        "rss_kb_per_session": 100.0,
        "ok": True,
    }
    level = {**base, **kw}
    level["ok"] = stats.level_ok(level) if target != "direct" else level["ok"]
    return level


FRACTIONS = [0.3, 0.6, 1.0]


def _run() -> list[dict[str, Any]]:
    """A relay knee of 600; the gateway carries 0.3 and 0.6 of it, not 1.0, and its own
    knee is 500; then the overload level at 1000."""
    return [
        _level("relay", 400, "search"),
        _level("relay", 800, "search", p99_ms=400.0),
        _level("relay", 600, "search"),
        _level("direct", 180, fraction=0.3, cpu_pct=None, cpu_pct_per_stream=None),
        _level("relay", 180, fraction=0.3, cpu_pct_per_stream=0.10),
        _level("gateway", 180, fraction=0.3, cpu_pct_per_stream=0.12),
        _level("nginx", 180, fraction=0.3, gateways=2),
        _level("direct", 360, fraction=0.6, cpu_pct=None, cpu_pct_per_stream=None, p99_ms=4.0),
        _level("relay", 360, fraction=0.6, cpu_pct_per_stream=0.09),
        _level("gateway", 360, fraction=0.6, cpu_pct_per_stream=0.117, p99_ms=11.5),
        _level("nginx", 360, fraction=0.6, gateways=2),
        _level("direct", 600, fraction=1.0, cpu_pct=None, cpu_pct_per_stream=None),
        _level("relay", 600, fraction=1.0, cpu_pct_per_stream=0.09),
        # Carried by the relay, not by the gateway (p99): no ratio at 1.0.
        _level("gateway", 600, fraction=1.0, cpu_pct_per_stream=0.15, p99_ms=180.0),
        _level("nginx", 600, fraction=1.0, gateways=2),
        _level("gateway", 480, "search", rss_kb_per_session=95.0),
        _level("gateway", 540, "search", p99_ms=120.0),
        _level("gateway", 510, "search", rss_kb_per_session=98.0),
        _level(
            "gateway",
            1020,
            "overload",
            streams_started=530,
            refused=490,
            p99_ms=60.0,
            refusal_p99_ms=12.5,
            rss_kb_per_admitted_session=120.0,
            finals_lost=0,
        ),
    ]


def test_the_headline_fields_and_their_values() -> None:
    levels = _run()
    out = summary.summarize(levels, relay_knee=600, gateway_knee=510, fractions=FRACTIONS)
    assert out["relay_knee_streams"] == 600
    assert out["gateway_knee_streams"] == 510
    assert out["capacity_ratio"] == pytest.approx(0.85)
    # The worst of 1.2 (0.3) and 1.3 (0.6); 1.0 does not count: the gateway did not carry it.
    assert out["cpu_ratio_vs_relay"] == pytest.approx(1.3)
    assert out["cpu_ratio_vs_relay_at_fraction"] == 0.6
    assert out["cpu_ratio_vs_relay_by_fraction"] == {"0.3": 1.2, "0.6": 1.3, "1": None}
    assert out["added_p99_ms_at_0_6"] == pytest.approx(7.5)
    # At the gateway's knee (510, a search probe).
    assert out["rss_kb_per_session"] == 98.0
    assert out["overload"] == {
        "offered": 1020,
        "admitted": 530,
        "refused": 490,
        "admitted_p99_ms": 60.0,
        "refusal_p99_ms": 12.5,
        "rss_kb_per_admitted_session": 120.0,
        "finals_lost": 0,
    }
    assert out["e2e_nginx_two_gateways_max_streams"] == 600
    assert out["knee_search"] == {
        "relay": [[400, True], [800, False], [600, True]],
        "gateway": [[480, True], [540, False], [510, True]],
    }
    assert out["fractions"] == FRACTIONS
    assert out["levels"] == levels


def test_the_json_has_every_name_the_issue_asks_for() -> None:
    out = summary.summarize(_run(), relay_knee=600, gateway_knee=510, fractions=FRACTIONS)
    for name in (
        "relay_knee_streams",
        "gateway_knee_streams",
        "capacity_ratio",
        "cpu_ratio_vs_relay",
        "added_p99_ms_at_0_6",
        "rss_kb_per_session",
        "overload",
        "redis_ops_per_frame",
    ):
        assert name in out, name
    assert set(out["overload"]) == {
        "offered",
        "admitted",
        "refused",
        "admitted_p99_ms",
        "refusal_p99_ms",
        "rss_kb_per_admitted_session",
        "finals_lost",
    }


def test_memory_at_the_knee_prefers_the_longer_window() -> None:
    levels = [
        _level("gateway", 360, "search", rss_kb_per_session=140.0),
        _level("gateway", 360, fraction=0.6, rss_kb_per_session=110.0),
    ]
    out = summary.summarize(levels, relay_knee=600, gateway_knee=360, fractions=[0.6])
    assert out["rss_kb_per_session"] == 110.0


def test_a_run_without_a_knee_or_an_overload_says_none() -> None:
    levels = [_level("relay", 50, "search", errors=50)]
    out = summary.summarize(levels, relay_knee=0, gateway_knee=None, fractions=FRACTIONS)
    assert out["relay_knee_streams"] == 0
    assert out["capacity_ratio"] is None
    assert out["cpu_ratio_vs_relay"] is None
    assert out["added_p99_ms_at_0_6"] is None
    assert out["rss_kb_per_session"] is None
    assert out["overload"] is None


def test_redis_per_frame_is_the_marginal_cost_of_a_frame() -> None:
    runs = [
        {"frame_ms": 100, "frames_per_s": 2000.0, "redis_ops_per_s": 720.0,
         "redis_round_trips_per_s": 120.0},
        {"frame_ms": 50, "frames_per_s": 4000.0, "redis_ops_per_s": 720.0,
         "redis_round_trips_per_s": 120.0},
    ]  # fmt: skip
    out = summary.summarize([], runs, relay_knee=600, gateway_knee=510, fractions=FRACTIONS)
    assert out["redis_ops_per_frame"] == 0.0
    runs[1]["redis_ops_per_s"] = 1720.0
    assert summary.redis_per_frame_summary(runs)["redis_ops_per_frame"] == pytest.approx(0.5)


def test_a_level_with_a_refusal_a_lost_final_or_an_error_is_not_carried() -> None:
    assert stats.level_ok(_level("gateway", 100))
    assert not stats.level_ok(_level("gateway", 100, refused=1, streams_started=99))
    assert not stats.level_ok(_level("gateway", 100, finals_received=999))
    assert not stats.level_ok(_level("gateway", 100, errors=1))
    assert not stats.level_ok(_level("gateway", 100, p99_ms=None))
    assert not stats.level_ok(_level("gateway", 100, p99_ms=100.0))
    assert not stats.level_ok(_level("gateway", 100, cpu_pct=100.0))
    # Two gateways on two cores: 150 % is below their two cores.
    assert stats.level_ok(_level("nginx", 500, cpu_pct=150.0, gateways=2))


def test_fixed_loads_give_rates_but_no_knee() -> None:
    levels = [
        _level("relay", 500, "fixed", cpu_pct_per_stream=0.1),
        _level("gateway", 500, "fixed", cpu_pct_per_stream=0.12),
        _level("nginx", 500, "fixed", gateways=2),
    ]
    out = summary.summarize(levels, relay_knee=None, gateway_knee=None, fractions=FRACTIONS)
    assert out["relay_knee_streams"] is None
    assert out["capacity_ratio"] is None
    assert out["cpu_ratio_vs_relay"] is None  # ratios are taken at fractions of a knee
    assert out["redis_rates_at_streams"] == 500
    assert out["e2e_nginx_two_gateways_max_streams"] == 500
