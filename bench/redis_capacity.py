"""`make bench-redis`: how many concurrent sessions one Redis core carries, with the
gateway's own Lua scripts and its mix of calls (docs/capacity.md).

    python -m bench.redis_capacity [--seconds 20] [--workers 4] [--modes gateway,raw:1,raw:100]

Starts its own redis-server on a free port of 127.0.0.1, pinned to one core
(`--redis-core`, 0), and client processes pinned to the other (`--client-core`, 1). Each
client process is a few simulated gateway pods of 500 sessions each; a pod loops as fast
as Redis answers over the mix that `make bench` measured per session:

- a final per session every 2 s of its (virtual) time: `append_finals` with one final of
  about `--final-bytes` (200) bytes of PROTOCOL.md's `transcript` JSON;
- every 10 s of virtual time, the pod's lease renewal: `renew` of its 500 sessions, one
  pipeline;
- churn: sessions last `--session-minutes` (5) on average; an ending session gets
  `set_state(stopped)` and is replaced by a new one (`create`).

The scripts are the gateway's, loaded through gateway.store.redis_store.SessionStore.
Mode `gateway`: every call is SessionStore's (its arguments, its redis-py client), every
final on its own as the gateway sends it; Python's client then saturates the client
core long before Redis. Mode `raw:D`: finals are the same EVALSHA (the store's script
object and keys, append_finals' arguments) encoded in RESP here and written D per write
on bare sockets, so Redis, not the client, is the limit: `raw:1` is the gateway's
pattern (one command per read, on 4 x 16 connections), `raw:100` pipelines. In every
mode the renewals (pipelines of 500), starts and stops are SessionStore's own calls.
Mode `cluster:N`: the `gateway` mix on a Redis Cluster of N primaries (all on the Redis
core), through SessionStore in cluster mode (REDIS__MODE=cluster, no WAIT: no
replicas); its figure is sessions per shard, each shard's primary on a core of its own.

Per mode, over the window: Redis commands per second (`INFO commandstats`: those inside
scripts too) and the commands clients sent (EVALSHA and the like; "round trips" as
`make bench` counts them, a pipeline's commands one each), Redis's CPU (% of one core,
/proc) and the client core's; then sessions per Redis core = the rate at 100 % of that
core ÷ the rate per session per second (from `make bench`, plus the churn). Results:
a table, and bench/results/redis-capacity.json.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson
import redis
import uvloop

from bench import procstat, stats, targets
from bench.level import SCRIPT_COMMANDS
from bench.pipes import read_json_line as _read_json_line
from bench.procstat import Group
from bench.redis_cluster import BenchCluster, running_cluster, summed_commandstats
from bench.redis_pods import POD_SESSIONS, worker_main
from tests.support.processes import Proc

RESULTS = Path(__file__).resolve().parent / "results"
# Measured by `python -m bench --targets gateway --streams 500 --seconds 20` (500
# sessions on one gateway, 20 s window): finals and lease renewals, no start or stop.
BENCH_ROUND_TRIPS_PER_SESSION_SECOND = 0.6004
BENCH_OPS_PER_SESSION_SECOND = 3.6002
# Per start and per stop, as the scripts run them: EVALSHA + EXISTS, HSET, EXPIRE for
# _CREATE; EVALSHA + HGET, HSET, EXPIRE, EXISTS, EXPIRE for _SET_STATE.
OPS_PER_CREATE = 4
OPS_PER_SET_STATE = 6


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m bench.redis_capacity", description=__doc__.split("\n")[0]
    )
    p.add_argument(
        "--modes",
        default="gateway,raw:1,raw:100,cluster:1,cluster:3,cluster:6",
        help="gateway (SessionStore's calls), raw:D (the same EVALSHA bytes, D per write), "
        "cluster:N (the gateway's calls on a Cluster of N shards)",
    )
    p.add_argument("--seconds", type=float, default=20.0, help="the measured window per mode")
    p.add_argument("--warmup", type=float, default=5.0, help="before the window")
    p.add_argument("--workers", type=int, default=4, help="client processes")
    p.add_argument("--pods", type=int, default=16, help="simulated pods per client process")
    p.add_argument("--final-bytes", type=int, default=200, help="size of a final's JSON")
    p.add_argument("--session-minutes", type=float, default=5.0, help="mean session length")
    p.add_argument("--redis-core", default="0")
    p.add_argument("--client-core", default="1")
    p.add_argument(
        "--round-trips-per-session-second",
        type=float,
        default=BENCH_ROUND_TRIPS_PER_SESSION_SECOND,
        help="from make bench (finals + renewals), before churn",
    )
    p.add_argument(
        "--ops-per-session-second",
        type=float,
        default=BENCH_OPS_PER_SESSION_SECOND,
        help="from make bench (finals + renewals), before churn",
    )
    p.add_argument("--out", type=Path, default=RESULTS / "redis-capacity.json")
    # A client process (started by the run itself).
    p.add_argument("--worker", type=int, default=None, help=argparse.SUPPRESS)
    p.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("--mode", default="gateway", help=argparse.SUPPRESS)
    p.add_argument("--pipeline", type=int, default=1, help=argparse.SUPPRESS)
    p.add_argument("--cluster-nodes", default="", help=argparse.SUPPRESS)
    return p.parse_args(argv)


# ---- the run -------------------------------------------------------------------------


def measure_mode(args: argparse.Namespace, mode: str, log_dir: Path) -> dict[str, Any]:
    kind, _, depth = mode.partition(":")
    if kind != "cluster":
        return _measure(args, mode, log_dir, targets.start_redis(log_dir / mode, args.redis_core))
    with running_cluster(log_dir / mode, args.redis_core, int(depth)) as cluster:
        return _measure(args, mode, log_dir, cluster)


def _measure(
    args: argparse.Namespace, mode: str, log_dir: Path, server: Proc | BenchCluster
) -> dict[str, Any]:
    cluster = server if isinstance(server, BenchCluster) else None
    redis_proc = server.procs[0] if isinstance(server, BenchCluster) else server
    workers: list[subprocess.Popen[bytes]] = []
    try:
        client = redis.Redis(port=redis_proc.port, decode_responses=True)
        for i in range(args.workers):
            argv = [sys.executable, "-m", "bench.redis_capacity", "--worker", str(i)]
            kind, _, depth = mode.partition(":")
            if cluster is not None:
                kind, depth = "gateway", "1"
                argv += ["--cluster-nodes", ",".join(f"127.0.0.1:{p}" for p in cluster.ports)]
            argv += ["--port", str(redis_proc.port), "--mode", kind]
            argv += ["--pods", str(args.pods), "--pipeline", depth or "1"]
            argv += ["--final-bytes", str(args.final_bytes)]
            argv += ["--session-minutes", str(args.session_minutes)]
            log = (log_dir / f"worker-{mode}-{i}.log").open("ab")
            workers.append(
                subprocess.Popen(
                    targets.pinned(args.client_core, argv),
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=log,
                    cwd=targets.repo_dir(),
                )
            )
            log.close()
        for w in workers:
            _read_json_line(w, 60)
        time.sleep(args.warmup)
        group = Group("redis", cluster.pids if cluster else (redis_proc.pid,))
        clients = Group("clients", tuple(w.pid for w in workers))

        def commandstats() -> Any:
            if cluster is None:
                return client.info("commandstats")
            return summed_commandstats(cluster.info("commandstats"))

        calls0 = commandstats()
        t0, r0, c0, cores0 = time.monotonic(), group.ticks(), clients.ticks(), procstat.core_times()
        time.sleep(args.seconds)
        calls1 = commandstats()
        t1, r1, c1, cores1 = time.monotonic(), group.ticks(), clients.ticks(), procstat.core_times()
        memory = client.info("memory")
        keyspace = client.info("keyspace")
        sample = _memory_sample(client) if cluster is None else {}
        for w in workers:
            assert w.stdin is not None
            w.stdin.write(b"stop\n")
            w.stdin.flush()
        results = [_read_json_line(w, 60) for w in workers]
        client.close()
    finally:
        for w in workers:
            with contextlib.suppress(OSError):
                w.stdin.close()  # type: ignore[union-attr]
            try:
                w.wait(10)
            except subprocess.TimeoutExpired:
                w.kill()
                w.wait(5)
        if cluster is None:
            redis_proc.stop()

    seconds = t1 - t0
    calls = stats.redis_calls_delta(calls0, calls1)
    ops = sum(calls.values())
    trips = stats.redis_top_level_calls(calls, SCRIPT_COMMANDS)
    redis_cpu = procstat.cpu_percent(r1 - r0, seconds)
    busy = procstat.core_busy_percent(cores0, cores1)
    # Scripts by what they ran: XADD only in _APPEND_FINALS, HINCRBY only in _RESUME...
    appends = calls.get("hmget", 0)
    evalsha = calls.get("evalsha", 0) + calls.get("eval", 0)
    return {
        "mode": mode,
        "shards": len(cluster.procs) if cluster else 1,
        "seconds": round(seconds, 2),
        "redis_ops_per_s": round(ops / seconds, 1),
        "redis_round_trips_per_s": round(trips / seconds, 1),
        "scripts_per_s": round(evalsha / seconds, 1),
        "append_finals_per_s": round(appends / seconds, 1),
        "redis_cpu_pct": round(redis_cpu, 1),
        "clients_cpu_pct": round(procstat.cpu_percent(c1 - c0, seconds), 1),
        "core_busy_pct": {str(c): round(v, 1) for c, v in sorted(busy.items())},
        "redis_calls": calls,
        "client_counts": {
            k: sum(int(r.get(k, 0)) for r in results) for k in results[0] if k != "event"
        },
        "used_memory_bytes": int(memory.get("used_memory", 0)),
        "keys": sum(int(db.get("keys", 0)) for db in keyspace.values()),
        "memory_sample": sample,
    }


def _memory_sample(client: redis.Redis, count: int = 300) -> dict[str, Any]:
    """Exact MEMORY USAGE of a sample of sessions: the record, and the finals log as
    fixed + per entry (least squares over the sample's lengths)."""
    metas: list[int] = []
    points: list[tuple[int, int]] = []
    for key in client.scan_iter(match="speech:{*}:finals", count=1000):
        n = int(client.xlen(key))
        used = client.memory_usage(key, samples=0)
        meta = client.memory_usage(str(key).replace(":finals", ":meta"), samples=0)
        if not n or used is None or meta is None:
            continue
        points.append((n, int(used)))
        metas.append(int(meta))
        if len(metas) >= count:
            break
    if len(points) < 2:
        return {"sessions": len(points)}
    mx = sum(n for n, _ in points) / len(points)
    my = sum(u for _, u in points) / len(points)
    var = sum((n - mx) ** 2 for n, _ in points)
    slope = sum((n - mx) * (u - my) for n, u in points) / var if var else None
    return {
        "sessions": len(points),
        "meta_bytes_per_session": round(sum(metas) / len(metas), 1),
        "finals_bytes_per_entry": None if slope is None else round(slope, 1),
        "finals_bytes_fixed": None if slope is None else round(my - slope * mx, 1),
        "finals_per_session_min_max": [min(n for n, _ in points), max(n for n, _ in points)],
    }


def capacity(args: argparse.Namespace, mode: dict[str, Any]) -> dict[str, Any]:
    """Sessions per Redis core: the mode's rates scaled to 100 % of Redis's core, divided
    by the rates per session per second (make bench's, plus the churn)."""
    churn = 1.0 / (args.session_minutes * 60.0)  # starts (and stops) per session-second
    trips_ps = args.round_trips_per_session_second + 2 * churn
    ops_ps = args.ops_per_session_second + (OPS_PER_CREATE + OPS_PER_SET_STATE) * churn
    share = mode["redis_cpu_pct"] / 100.0
    trips_at_full = mode["redis_round_trips_per_s"] / share if share else None
    ops_at_full = mode["redis_ops_per_s"] / share if share else None
    return {
        "round_trips_per_session_second": round(trips_ps, 4),
        "ops_per_session_second": round(ops_ps, 4),
        "redis_saturated": mode["redis_cpu_pct"] >= 90.0,
        "round_trips_per_s_at_100pct": None if trips_at_full is None else round(trips_at_full),
        "ops_per_s_at_100pct": None if ops_at_full is None else round(ops_at_full),
        "sessions_per_redis_core_by_round_trips": None
        if trips_at_full is None
        else round(trips_at_full / trips_ps),
        "sessions_per_redis_core_by_ops": None
        if ops_at_full is None
        else round(ops_at_full / ops_ps),
        "redis_us_per_round_trip": None
        if not mode["redis_round_trips_per_s"]
        else round(1e6 * share / mode["redis_round_trips_per_s"], 2),
        "redis_us_per_op": None
        if not mode["redis_ops_per_s"]
        else round(1e6 * share / mode["redis_ops_per_s"], 2),
    }


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.worker is not None:
        uvloop.run(worker_main(args))
        return 0
    if shutil.which("taskset") is None or shutil.which("redis-server") is None:
        print("bench.redis_capacity: needs taskset and redis-server", file=sys.stderr)
        return 2
    cores = {int(args.redis_core), int(args.client_core)}
    if not cores <= os.sched_getaffinity(0):
        print(f"bench.redis_capacity: cores {sorted(cores)} not available", file=sys.stderr)
        return 2
    log_dir = targets.repo_dir() / ".run" / "bench-redis"
    shutil.rmtree(log_dir, ignore_errors=True)
    log_dir.mkdir(parents=True)
    began = time.monotonic()
    modes = []
    for mode in (m.strip() for m in args.modes.split(",") if m.strip()):
        result = measure_mode(args, mode, log_dir)
        result["capacity"] = capacity(args, result)
        modes.append(result)
        _progress(result, time.monotonic() - began)
    version = subprocess.run(
        ["redis-server", "--version"], capture_output=True, text=True, check=False
    ).stdout.strip()
    summary = {
        "modes": modes,
        "runtime_s": round(time.monotonic() - began, 1),
        "setup": {
            "redis": version,
            "redis_core": args.redis_core,
            "client_core": args.client_core,
            "workers": args.workers,
            "pods_per_worker": args.pods,
            "sessions": args.workers * args.pods * POD_SESSIONS,
            "final_bytes": args.final_bytes,
            "session_minutes": args.session_minutes,
            "persistence": "none (--save '' --appendonly no), no replica",
            "seconds": args.seconds,
            "warmup": args.warmup,
        },
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(orjson.dumps(summary, option=orjson.OPT_INDENT_2).decode() + "\n")
    print(orjson.dumps(summary).decode())
    return 0


def _progress(result: dict[str, Any], elapsed: float) -> None:
    cap = result["capacity"]
    print(
        f"[{elapsed:6.1f}s] {result['mode']:>9}: redis {result['redis_ops_per_s']:.0f} ops/s, "
        f"{result['redis_round_trips_per_s']:.0f} round trips/s, "
        f"{result['append_finals_per_s']:.0f} appends/s, redis cpu {result['redis_cpu_pct']}%, "
        f"clients cpu {result['clients_cpu_pct']}%, cores {result['core_busy_pct']}; "
        f"at 100%: {cap['sessions_per_redis_core_by_round_trips']} sessions (round trips), "
        f"{cap['sessions_per_redis_core_by_ops']} (ops)",
        file=sys.stderr,
        flush=True,
    )


if __name__ == "__main__":
    raise SystemExit(main())
