"""The run's one JSON object (bench/README.md, "The JSON"): the knees, the ratios at
fractions of the relay's knee, the overload level, Redis per frame, then every level.

Pure functions over the levels' dicts, each tagged by the run with its `phase`
("search", "fraction", "overload", or "fixed" for `--streams`) and, for a fraction
level, its `fraction`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from bench.stats import level_ok, marginal_per_frame

Level = dict[str, Any]
# Full-window levels of the plan (`fixed`: `--streams`, loads given instead of the plan).
MEASURED = ("fraction", "fixed")
# The fraction of the relay's knee at which the gateway's added latency is read.
ADDED_P99_FRACTION = 0.6


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


def fraction_level(levels: Sequence[Level], target: str, fraction: float) -> Level | None:
    for lv in levels:
        same = lv.get("phase") == "fraction" and lv["target"] == target
        if same and abs(float(lv["fraction"]) - fraction) < 1e-9:
            return lv
    return None


def knee_level(levels: Sequence[Level], target: str, streams: int) -> Level | None:
    """The level of `target` at `streams` that was carried, the longest window first (a
    fraction level before a short search probe at the same load)."""
    found = [
        lv
        for lv in levels
        if lv["target"] == target
        and lv["streams"] == streams
        and lv.get("phase") in ("fraction", "search")
        and lv.get("ok")
    ]
    return max(found, key=lambda lv: float(lv.get("seconds") or 0.0), default=None)


def cpu_ratios(levels: Sequence[Level], fractions: Sequence[float]) -> dict[str, float | None]:
    """Gateway ÷ relay CPU per stream at each fraction, where both carried the load
    (None where one did not)."""
    out: dict[str, float | None] = {}
    for f in fractions:
        g, r = fraction_level(levels, "gateway", f), fraction_level(levels, "relay", f)
        ratio = None
        if g is not None and r is not None and level_ok(g) and level_ok(r):
            g_ps, r_ps = g.get("cpu_pct_per_stream"), r.get("cpu_pct_per_stream")
            if g_ps and r_ps:
                ratio = round(g_ps / r_ps, 3)
        out[f"{f:g}"] = ratio
    return out


def search_probes(levels: Sequence[Level], target: str) -> list[list[int | bool]]:
    """[streams, carried] of each search probe of `target`, in the order run."""
    return [
        [lv["streams"], bool(lv.get("ok"))]
        for lv in levels
        if lv.get("phase") == "search" and lv["target"] == target
    ]


def overload_summary(level: Level | None) -> dict[str, Any] | None:
    """The overload level in the issue's names: what was offered, taken and refused, how
    the admitted sessions fared and how fast the refused ones had their answer."""
    if level is None:
        return None
    return {
        "offered": level["streams"],
        "admitted": level.get("streams_started"),
        "refused": level.get("refused"),
        "admitted_p99_ms": level.get("p99_ms"),
        "refusal_p99_ms": level.get("refusal_p99_ms"),
        "rss_kb_per_admitted_session": level.get("rss_kb_per_admitted_session"),
        "finals_lost": level.get("finals_lost"),
    }


def summarize(
    levels: Sequence[Level],
    per_frame_runs: Sequence[Level] = (),
    *,
    relay_knee: int | None,
    gateway_knee: int | None,
    fractions: Sequence[float],
    knee_lower_bounds: Mapping[str, bool] | None = None,
) -> dict[str, Any]:
    """The headline figures, then every level's raw numbers."""
    ratios = cpu_ratios(levels, fractions)
    measured = {f: r for f, r in ratios.items() if r is not None}
    worst_at = max(measured, key=lambda f: measured[f], default=None)

    added = None
    g, d = (fraction_level(levels, t, ADDED_P99_FRACTION) for t in ("gateway", "direct"))
    if g and d and g.get("p99_ms") is not None and d.get("p99_ms") is not None:
        added = g["p99_ms"] - d["p99_ms"]

    at_knee = knee_level(levels, "gateway", gateway_knee) if gateway_knee else None
    overload = next((lv for lv in levels if lv.get("phase") == "overload"), None)
    gateway_fractions = [
        lv for lv in levels if lv.get("phase") in MEASURED and lv["target"] == "gateway"
    ]
    top = max(gateway_fractions, key=lambda lv: lv["streams"], default={})
    nginx_ok = [
        lv["streams"]
        for lv in levels
        if lv.get("phase") in MEASURED and lv["target"] == "nginx" and lv.get("ok")
    ]
    bounds = dict(knee_lower_bounds or {})
    return {
        "relay_knee_streams": relay_knee,
        "gateway_knee_streams": gateway_knee,
        "capacity_ratio": _round(gateway_knee / relay_knee, 3)
        if relay_knee and gateway_knee is not None
        else None,
        # Carried at the search's limit: the real knee is above it.
        "relay_knee_is_lower_bound": bounds.get("relay", False),
        "gateway_knee_is_lower_bound": bounds.get("gateway", False),
        "cpu_ratio_vs_relay": measured[worst_at] if worst_at is not None else None,
        "cpu_ratio_vs_relay_at_fraction": None if worst_at is None else float(worst_at),
        "cpu_ratio_vs_relay_by_fraction": ratios,
        "added_p99_ms_at_0_6": _round(added, 2),
        "rss_kb_per_session": None if at_knee is None else at_knee.get("rss_kb_per_session"),
        "overload": overload_summary(overload),
        **redis_per_frame_summary(per_frame_runs),
        "redis_ops_per_session_second": top.get("redis_ops_per_session_second"),
        "redis_round_trips_per_session_second": top.get("redis_round_trips_per_session_second"),
        "redis_ops_per_frame_avg": top.get("redis_ops_per_frame_avg"),
        "redis_round_trips_per_frame_avg": top.get("redis_round_trips_per_frame_avg"),
        "redis_rates_at_streams": top.get("streams"),
        "e2e_nginx_two_gateways_max_streams": max(nginx_ok, default=None),
        "fractions": list(fractions),
        "knee_search": {t: search_probes(levels, t) for t in ("relay", "gateway")},
        "levels": list(levels),
    }


def redis_per_frame_summary(runs: Sequence[Level]) -> dict[str, Any]:
    """`redis_ops_per_frame`: Redis commands per extra audio frame, from the same sessions
    sending the same audio in frames of two sizes (so the same finals and renewals, and
    twice the frames); the raw rates of each run beside it."""
    ops = marginal_per_frame(runs, "redis_ops_per_s")
    trips = marginal_per_frame(runs, "redis_round_trips_per_s")
    keys = (
        "frame_ms",
        "streams",
        "seconds",
        "ok",
        "frames_per_s",
        "redis_ops_per_s",
        "redis_round_trips_per_s",
        "redis_ops_per_session_second",
        "redis_round_trips_per_session_second",
        "redis_ops_per_frame_avg",
        "finals_received",
        "finals_expected",
        "redis_calls",
    )
    return {
        "redis_ops_per_frame": _round(ops, 3),
        "redis_round_trips_per_frame": _round(trips, 3),
        "redis_per_frame_runs": [{k: r.get(k) for k in keys} for r in runs],
    }
