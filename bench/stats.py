"""The arithmetic of a run: percentiles, Redis call counts, and the JSON summary.

Pure functions over plain dicts, so that unit tests can check them without servers.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

# NVIDIA's Node.js WebSocket bridge, measured at about 0.10 % of a core per stream.
NVIDIA_BRIDGE_PCT_PER_STREAM = 0.10
# Above this p99 a level does not count as carried, whatever its CPU.
SANE_P99_MS = 100.0

Level = dict[str, Any]


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0..100) with linear interpolation between closest ranks (as
    numpy's default); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    if len(ordered) == 1:
        return float(ordered[0])
    rank = (len(ordered) - 1) * q / 100.0
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return float(ordered[low] + (ordered[high] - ordered[low]) * (rank - low))


def redis_total_calls(commandstats: Mapping[str, Mapping[str, Any]]) -> int:
    """Sum of `calls` over `INFO commandstats` (as redis-py parses it: one dict per
    `cmdstat_NAME`). Commands run inside Lua scripts are counted too, under their own
    names, besides the EVALSHA that ran them."""
    return sum(int(stats.get("calls", 0)) for stats in commandstats.values())


def redis_script_calls(commandstats: Mapping[str, Mapping[str, Any]]) -> int:
    """Calls of EVAL/EVALSHA (and their _RO forms) alone: the client's round trips
    that ran a script."""
    return sum(
        int(stats.get("calls", 0))
        for name, stats in commandstats.items()
        if name.removeprefix("cmdstat_") in {"eval", "evalsha", "eval_ro", "evalsha_ro"}
    )


# The bench's own command (it samples INFO commandstats), never the gateway's.
_OWN_COMMANDS = frozenset({"info"})
_REDIS_CALL = re.compile(r"redis\.(?:p?call)\(\s*['\"]([A-Za-z]+)['\"]")


def script_commands(sources: Iterable[str]) -> frozenset[str]:
    """The commands (lower case) that the Lua `sources` run with redis.call/pcall."""
    return frozenset(m.lower() for src in sources for m in _REDIS_CALL.findall(src))


def redis_calls_delta(
    before: Mapping[str, Mapping[str, Any]], after: Mapping[str, Mapping[str, Any]]
) -> dict[str, int]:
    """Calls per command (lower-case name) between two `INFO commandstats`, without the
    bench's own INFO; commands that ran inside scripts are counted under their names."""
    out: dict[str, int] = {}
    for key, stats in after.items():
        name = key.removeprefix("cmdstat_").lower()
        if name in _OWN_COMMANDS:
            continue
        calls = int(stats.get("calls", 0)) - int(before.get(key, {}).get("calls", 0))
        if calls:
            out[name] = calls
    return dict(sorted(out.items()))


def redis_top_level_calls(calls: Mapping[str, int], in_scripts: Iterable[str]) -> int:
    """The commands a client sent (EVALSHA, EVAL, PUBLISH, ...): every call but those of
    commands that the scripts run. A command that is both sent by a client and run by a
    script (the gateway's HGET of the epoch, on a resume) counts as run by a script, so
    this is exact for a load without resumes."""
    inner = {c.lower() for c in in_scripts}
    return sum(n for name, n in calls.items() if name not in inner)


def marginal_per_frame(runs: Sequence[Mapping[str, Any]], key: str) -> float | None:
    """(rate of `key` per second) per extra frame per second between the runs with the
    fewest and the most frames per second: Δ(key/s) ÷ Δ(frames/s). Zero when nothing in
    Redis scales with frames."""
    done = [r for r in runs if r.get("frames_per_s") and r.get(key) is not None]
    if len(done) < 2:
        return None
    low = min(done, key=lambda r: float(r["frames_per_s"]))
    high = max(done, key=lambda r: float(r["frames_per_s"]))
    d_frames = float(high["frames_per_s"]) - float(low["frames_per_s"])
    if d_frames <= 0:
        return None
    return (float(high[key]) - float(low[key])) / d_frames


def level_ok(level: Mapping[str, Any]) -> bool:
    """Carried: every stream started, no error, every final delivered, CPU below one
    core per gateway process and a sane p99."""
    p99 = level.get("p99_ms")
    cpu = level.get("cpu_pct")
    return (
        level.get("streams_started") == level.get("streams")
        and level.get("errors") == 0
        and level.get("finals_received") == level.get("finals_expected")
        and (cpu is None or cpu < 100.0 * level.get("gateways", 1))
        and p99 is not None
        and p99 < SANE_P99_MS
    )


def _by_streams(levels: Sequence[Level], target: str) -> dict[int, Level]:
    return {lv["streams"]: lv for lv in levels if lv["target"] == target}


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


def summarize(levels: Sequence[Level], per_frame_runs: Sequence[Level] = ()) -> dict[str, Any]:
    """The run's one JSON object: the headline figures, then every level's raw numbers.
    `per_frame_runs`: the same gateway load at several frame sizes (Redis per frame)."""
    gateway = _by_streams(levels, "gateway")
    relay = _by_streams(levels, "relay")
    direct = _by_streams(levels, "direct")
    e2e = _by_streams(levels, "nginx")

    carried = [n for n, lv in gateway.items() if level_ok(lv)]
    streams_per_core = max(carried, default=0)

    added_p99 = None
    if 300 in gateway and 300 in direct:
        g, d = gateway[300].get("p99_ms"), direct[300].get("p99_ms")
        if g is not None and d is not None:
            added_p99 = g - d

    # The CPU ratio where both carried the load; else where both were measured.
    both = sorted(n for n in gateway.keys() & relay.keys())
    both_ok = [n for n in both if level_ok(gateway[n]) and level_ok(relay[n])]
    ratio_at = max(both_ok, default=None)
    ratio_both_ok = ratio_at is not None
    if ratio_at is None and both:
        ratio_at = both[-1]
    cpu_ratio = None
    if ratio_at is not None:
        g_ps = gateway[ratio_at].get("cpu_pct_per_stream")
        r_ps = relay[ratio_at].get("cpu_pct_per_stream")
        if g_ps and r_ps:
            cpu_ratio = g_ps / r_ps

    per_stream_400 = gateway[400].get("cpu_pct_per_stream") if 400 in gateway else None
    biggest = max(gateway, default=None)
    top = gateway[biggest] if biggest is not None else {}
    rss = top.get("rss_kb_per_session")

    e2e_carried = [n for n, lv in e2e.items() if level_ok(lv)]

    return {
        "streams_per_core": streams_per_core,
        # Carried at the highest load tried: the real ceiling is above it.
        "streams_per_core_is_lower_bound": bool(gateway) and streams_per_core == max(gateway),
        "added_p99_ms_at_300": _round(added_p99, 2),
        "cpu_ratio_vs_relay": _round(cpu_ratio, 3),
        "cpu_ratio_vs_relay_at_streams": ratio_at,
        "cpu_ratio_vs_relay_both_carried": ratio_both_ok,
        "cpu_pct_per_stream_at_400": _round(per_stream_400, 4),
        "rss_kb_per_session": _round(rss, 1),
        "rss_kb_per_session_at_streams": biggest,
        **redis_per_frame_summary(per_frame_runs),
        "redis_ops_per_session_second": top.get("redis_ops_per_session_second"),
        "redis_round_trips_per_session_second": top.get("redis_round_trips_per_session_second"),
        "redis_ops_per_frame_avg": top.get("redis_ops_per_frame_avg"),
        "redis_round_trips_per_frame_avg": top.get("redis_round_trips_per_frame_avg"),
        "redis_rates_at_streams": biggest,
        "ratio_vs_nvidia_bridge": _round(
            None if per_stream_400 is None else per_stream_400 / NVIDIA_BRIDGE_PCT_PER_STREAM, 3
        ),
        "nvidia_bridge_pct_per_stream": NVIDIA_BRIDGE_PCT_PER_STREAM,
        "e2e_nginx_two_gateways_max_streams": max(e2e_carried, default=None) if e2e else None,
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
