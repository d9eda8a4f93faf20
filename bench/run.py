"""`python -m bench`: the knee of the bare relay on this machine, then every target at
fractions of it, the gateway's own knee and the gateway at twice it (overload), then
Redis per audio frame; a table, bench/results/latest.json and latest.png, and the
summary as the last line (bench/README.md).

    python -m bench [--quick] [--relay-knee N] [--fractions 0.3,0.6,0.8,0.9,1.0]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import orjson

from bench import knee, procstat, targets
from bench.level import RESULTS, TARGETS, Bench, failed_level, progress
from bench.plot import write_plot
from bench.report import format_table
from bench.summary import summarize

# `--quick`: the same plan with short windows, three fractions and a coarse search; a few
# minutes, to check that everything runs (its figures are not to be quoted).
QUICK = {
    "seconds": 5.0,
    "search_seconds": 3.0,
    "settle": 1.0,
    "fractions": "0.3,0.6,1.0",
    "search_resolution": 0.25,
    "per_frame_streams": 50,
}


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="short windows, coarse: " + str(QUICK))
    p.add_argument(
        "--fractions",
        default=",".join(f"{f:g}" for f in knee.FRACTIONS),
        help="loads as fractions of the relay's knee",
    )
    p.add_argument("--seconds", type=float, default=20.0, help="window of a fraction level")
    p.add_argument("--search-seconds", type=float, default=6.0, help="window of a search probe")
    p.add_argument("--search-start", type=int, default=50, help="the search's first load")
    p.add_argument("--search-max", type=int, default=3000, help="the search's largest load")
    p.add_argument(
        "--search-resolution",
        type=float,
        default=0.05,
        help="stop bisecting when the gap is at most this fraction of the knee",
    )
    p.add_argument(
        "--relay-knee", type=int, default=0, help="skip the relay's search: take this knee"
    )
    p.add_argument(
        "--overload-factor",
        type=float,
        default=knee.OVERLOAD_FACTOR,
        help="the overload level, times the gateway's knee (0: skip it)",
    )
    p.add_argument(
        "--gateway-max-sessions",
        type=int,
        default=0,
        help="the gateways' LIMITS__MAX_CONCURRENT_SESSIONS (0: no cap within the run's loads)",
    )
    p.add_argument(
        "--streams",
        default="",
        help="fixed loads instead of the plan (comma-separated): the targets at these only, "
        "no knee, no overload (while developing)",
    )
    p.add_argument("--settle", type=float, default=2.0, help="after the ramp, before the window")
    p.add_argument("--ramp-rate", type=float, default=250.0, help="sessions opened per second")
    p.add_argument(
        "--stop-rate",
        type=float,
        default=250.0,
        help="sessions stopped per second at the end of a level (0: all at once)",
    )
    p.add_argument("--targets", default=",".join(TARGETS), help="of " + ",".join(TARGETS))
    p.add_argument("--gateway-core", default="0", help="the core of the gateway and relay")
    p.add_argument("--other-core", default="1", help="Redis, the speech server, the load generator")
    p.add_argument(
        "--direct-core",
        default=None,
        help="the gRPC client of `direct` (default: the gateway's core, idle then, where "
        "the gateway's own gRPC client would run)",
    )
    p.add_argument(
        "--streams-per-loadgen",
        type=int,
        default=0,
        help="split the WebSocket load over processes of this many sessions (0: one)",
    )
    p.add_argument(
        "--profile",
        type=int,
        default=0,
        help="record the gateway worker with py-spy during the window at this load",
    )
    p.add_argument(
        "--per-frame-streams",
        type=int,
        default=200,
        help="Redis per frame: the gateway load (0: skip that part)",
    )
    p.add_argument(
        "--per-frame-seconds",
        type=float,
        default=10.0,
        help="Redis per frame: the window; keep it a multiple of the gateway's lease "
        "renewal period (10 s) so every window holds the same renewals",
    )
    p.add_argument(
        "--per-frame-ms",
        default="100,50",
        help="Redis per frame: the frame sizes (ms, each dividing 2000), comma-separated",
    )
    p.add_argument("--out", type=Path, default=RESULTS / "latest.json")
    first, _ = p.parse_known_args(argv)
    if first.quick:
        p.set_defaults(**QUICK)
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    wanted = [t.strip() for t in args.targets.split(",") if t.strip()]
    problem = check_plan(args, wanted)
    if problem:
        print(f"bench: {problem}", file=sys.stderr)
        return 2
    fractions = knee.parse_fractions(args.fractions)
    fixed = [int(n) for n in args.streams.split(",") if n.strip()]
    _raise_open_files_limit()
    run_dir = targets.repo_dir() / ".run" / "bench"
    shutil.rmtree(run_dir, ignore_errors=True)
    run_dir.mkdir(parents=True)

    began = time.monotonic()
    levels: list[dict[str, Any]] = []
    per_frame: list[dict[str, Any]] = []
    frame_sizes = [int(f) for f in args.per_frame_ms.split(",") if f.strip()]
    biggest = max(args.search_max, args.relay_knee, args.per_frame_streams, *fixed)
    bench = Bench(args, run_dir, round(biggest * max(1.0, args.overload_factor)))

    def level(target: str, n: int, phase: str, **kw: Any) -> dict[str, Any]:
        fraction = kw.pop("fraction", None)
        try:
            lv = bench.run_level(target, n, **kw)
        except Exception as exc:  # one broken level must not lose the others
            lv = failed_level(target, n, exc)
        lv["phase"], lv["fraction"] = phase, fraction
        progress(lv, time.monotonic() - began)
        return lv

    def search(target: str, found: knee.KneeSearch) -> knee.KneeSearch:
        while (n := found.next_load()) is not None:
            lv = level(target, n, "search", seconds=args.search_seconds)
            levels.append(lv)
            found.record(n, bool(lv["ok"]))
        return found

    search_kw = {
        "start": args.search_start,
        "limit": args.search_max,
        "resolution": args.search_resolution,
    }
    bounds: dict[str, bool] = {}
    gateway_knee: int | None = None
    relay_knee: int | None = None
    try:
        # --streams: the targets at these loads only (no knee, no overload).
        for n in fixed:
            for target in (t for t in TARGETS if t in wanted):
                levels.append(level(target, n, "fixed"))
        # 1. The yardstick: how many streams the bare relay carries on this machine.
        if not fixed:
            relay_knee = args.relay_knee
            if not relay_knee:
                relay = search("relay", knee.KneeSearch(**search_kw))
                relay_knee, bounds["relay"] = relay.knee, relay.is_lower_bound
        # 2. Every target at fractions of it.
        plan = knee.fraction_loads(relay_knee, fractions) if relay_knee else []
        for f, n in plan:
            for target in (t for t in TARGETS if t in wanted):
                levels.append(level(target, n, "fraction", fraction=f))
        if "gateway" in wanted and plan:
            # 3. The gateway's own knee, from its fraction levels on.
            done = [
                (lv["streams"], bool(lv["ok"]))
                for lv in levels
                if lv["target"] == "gateway" and lv["phase"] == "fraction"
            ]
            found = search("gateway", knee.KneeSearch.seeded(done, **search_kw))
            gateway_knee, bounds["gateway"] = found.knee, found.is_lower_bound
            # 4. Overload: more than it can serve; it must refuse what it cannot carry.
            offered = knee.overload_load(gateway_knee, args.overload_factor)
            if offered and args.overload_factor > 0:
                levels.append(level("gateway", offered, "overload", seconds=args.seconds))
        if "gateway" in wanted and args.per_frame_streams > 0:
            # 5. Redis per audio frame: the same audio in smaller frames.
            for frame_ms in frame_sizes:
                n = args.per_frame_streams
                lv = level("gateway", n, "per_frame", frame_ms=frame_ms,
                           seconds=args.per_frame_seconds)  # fmt: skip
                per_frame.append({**lv, "frame_ms": frame_ms})
    finally:
        bench.close()

    summary = summarize(
        levels,
        per_frame,
        relay_knee=relay_knee,
        gateway_knee=gateway_knee,
        fractions=fractions,
        knee_lower_bounds=bounds,
    )
    summary["runtime_s"] = round(time.monotonic() - began, 1)
    summary["setup"] = _setup(args, frame_sizes)
    _write(args.out, summary, lambda png: write_plot(summary, png, _title(summary)))
    print(format_table(levels, summary, per_frame))
    print(orjson.dumps(summary).decode())
    return 0


def check_plan(args: argparse.Namespace, wanted: Sequence[str]) -> str | None:
    """Why the run cannot be carried out as asked (None if it can), before it starts."""
    unknown = set(wanted) - set(TARGETS)
    if unknown:
        return f"unknown targets {sorted(unknown)}"
    if "relay" not in wanted and not args.relay_knee and not args.streams:
        return "the relay's knee is the yardstick: keep `relay` in --targets or give --relay-knee"
    if shutil.which("taskset") is None:
        return "taskset not found (util-linux)"
    cores = {int(c) for c in f"{args.gateway_core},{args.other_core}".split(",")}
    if not cores <= os.sched_getaffinity(0):
        return f"cores {sorted(cores)} are not all available here"
    try:
        knee.parse_fractions(args.fractions)
    except ValueError as exc:
        return str(exc)
    return None


def _setup(args: argparse.Namespace, frame_sizes: Sequence[int]) -> dict[str, Any]:
    return {
        "cpu": procstat.cpu_info(),
        "cores_available": len(os.sched_getaffinity(0)),
        "gateway_core": args.gateway_core,
        "other_core": args.other_core,
        "direct_client_core": args.direct_core or args.gateway_core,
        "nginx_target": "NGINX + two gunicorn gateways (WEB_CONCURRENCY=1 each), on both cores",
        "quick": args.quick,
        "fixed_streams": args.streams or None,
        "seconds": args.seconds,
        "search": {
            "seconds": args.search_seconds,
            "start": args.search_start,
            "max": args.search_max,
            "resolution": args.search_resolution,
            "relay_knee_given": args.relay_knee or None,
        },
        "overload_factor": args.overload_factor,
        "gateway_max_sessions": args.gateway_max_sessions or None,
        "frame_ms": 100,
        "per_frame": {
            "streams": args.per_frame_streams,
            "seconds": args.per_frame_seconds,
            "frame_ms": list(frame_sizes),
        },
        "synthetic_engine": {"interim_every_s": 0.2, "final_every_s": 2.0},
    }


def _title(summary: dict[str, Any]) -> str:
    cpu = summary["setup"]["cpu"]
    quick = " (--quick: not to be quoted)" if summary["setup"]["quick"] else ""
    return f"make bench on {cpu.get('model')}, {cpu.get('mhz')} MHz{quick}"


def _write(out: Path, summary: dict[str, Any], plot: Callable[[Path], Path]) -> None:
    """The JSON first, so that a failing plot cannot lose it; the PNG beside it."""
    out.parent.mkdir(parents=True, exist_ok=True)
    png = out.with_suffix(".png")
    summary["plot"] = (
        str(png.relative_to(targets.repo_dir()))
        if png.is_relative_to(targets.repo_dir())
        else str(png)
    )
    out.write_text(orjson.dumps(summary, option=orjson.OPT_INDENT_2).decode() + "\n")
    try:
        plot(png)
    except Exception as exc:  # the figures are in the JSON; say why the picture is not
        print(f"bench: no plot ({exc!r})", file=sys.stderr)


def _raise_open_files_limit() -> None:
    # Every session holds a socket in the load generator, one in a gateway, two in NGINX.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 65536 if hard == resource.RLIM_INFINITY else min(hard, 65536)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
