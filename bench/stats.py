"""The arithmetic of a run: percentiles, Redis call counts, and when a level is carried.

Pure functions over plain dicts, so that unit tests can check them without servers.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

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
    """Carried: every stream started (none refused), no error, every final delivered,
    CPU below one core per gateway process and a sane p99."""
    p99 = level.get("p99_ms")
    cpu = level.get("cpu_pct")
    return (
        level.get("streams_started") == level.get("streams")
        and not level.get("refused")
        and level.get("errors") == 0
        and level.get("finals_received") == level.get("finals_expected")
        and (cpu is None or cpu < 100.0 * level.get("gateways", 1))
        and p99 is not None
        and p99 < SANE_P99_MS
    )
