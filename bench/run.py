"""`python -m bench`: for each load, the same streams sent directly to the speech server,
through the bare relay, through one gateway on one core, and through NGINX to two
gateways; a table, bench/results/latest.json, and the summary as the last line.

    python -m bench [--streams 100,200,300,400,500] [--seconds 20] [--targets ...]

Then, with the gateway among the targets, Redis per audio frame: the same gateway load
sent in 100 ms and in 50 ms frames (`--per-frame-*`); the Redis commands per second
must not change, so Δ(commands/s) ÷ Δ(frames/s) is what one more frame costs Redis.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import resource
import selectors
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

import orjson
import redis

from bench import procstat, stats, targets
from bench.procstat import Group
from bench.report import format_table
from gateway.store import scripts as store_scripts
from tests.support.processes import VENV_BIN, Proc

TARGETS = ("direct", "relay", "gateway", "nginx")
RESULTS = Path(__file__).resolve().parent / "results"
# What the gateway's Lua scripts run inside Redis (every module-level script), so that
# the commands clients sent can be told from those that ran in scripts.
SCRIPT_COMMANDS = stats.script_commands(
    v for v in vars(store_scripts).values() if isinstance(v, str) and "redis.call" in v
)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    p.add_argument("--streams", default="100,200,300,400,500", help="loads, comma-separated")
    p.add_argument("--seconds", type=float, default=20.0, help="steady window per level")
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
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    loads = [int(n) for n in args.streams.split(",") if n.strip()]
    wanted = [t.strip() for t in args.targets.split(",") if t.strip()]
    unknown = set(wanted) - set(TARGETS)
    if unknown:
        print(f"bench: unknown targets {sorted(unknown)}", file=sys.stderr)
        return 2
    if shutil.which("taskset") is None:
        print("bench: taskset not found (util-linux)", file=sys.stderr)
        return 2
    cores = {int(c) for c in f"{args.gateway_core},{args.other_core}".split(",")}
    if not cores <= os.sched_getaffinity(0):
        print(f"bench: cores {sorted(cores)} are not all available here", file=sys.stderr)
        return 2
    _raise_open_files_limit()
    run_dir = targets.repo_dir() / ".run" / "bench"
    shutil.rmtree(run_dir, ignore_errors=True)
    run_dir.mkdir(parents=True)

    began = time.monotonic()
    levels: list[dict[str, Any]] = []
    per_frame: list[dict[str, Any]] = []
    frame_sizes = [int(f) for f in args.per_frame_ms.split(",") if f.strip()]
    bench = Bench(args, run_dir, max([*loads, args.per_frame_streams]))
    try:
        for n in loads:
            for target in (t for t in TARGETS if t in wanted):
                try:
                    level = bench.run_level(target, n)
                except Exception as exc:  # one broken level must not lose the others
                    level = failed_level(target, n, exc)
                levels.append(level)
                _progress(level, time.monotonic() - began)
        if "gateway" in wanted and args.per_frame_streams > 0:
            for frame_ms in frame_sizes:
                n = args.per_frame_streams
                try:
                    level = bench.run_level(
                        "gateway", n, frame_ms=frame_ms, seconds=args.per_frame_seconds
                    )
                except Exception as exc:
                    level = {**failed_level("gateway", n, exc), "frame_ms": frame_ms}
                per_frame.append(level)
                _progress(level, time.monotonic() - began)
    finally:
        bench.close()

    summary = stats.summarize(levels, per_frame)
    summary["runtime_s"] = round(time.monotonic() - began, 1)
    summary["setup"] = {
        "gateway_core": args.gateway_core,
        "other_core": args.other_core,
        "direct_client_core": args.direct_core or args.gateway_core,
        "nginx_target": "NGINX + two gunicorn gateways (WEB_CONCURRENCY=1 each), on both cores",
        "seconds": args.seconds,
        "frame_ms": 100,
        "per_frame": {
            "streams": args.per_frame_streams,
            "seconds": args.per_frame_seconds,
            "frame_ms": frame_sizes,
        },
        "synthetic_engine": {"interim_every_s": 0.2, "final_every_s": 2.0},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(orjson.dumps(summary, option=orjson.OPT_INDENT_2).decode() + "\n")
    print(format_table(levels, summary, per_frame))
    print(orjson.dumps(summary).decode())
    return 0


class Bench:
    """Redis and the speech server for the whole run; one level at a time on top."""

    def __init__(self, args: argparse.Namespace, run_dir: Path, max_load: int) -> None:
        self.args = args
        self.run_dir = run_dir
        self.log_dir = run_dir / "logs"
        self.max_load = max_load
        self.redis_proc = targets.start_redis(self.log_dir, args.other_core)
        self.asr = targets.start_speech_server(
            self.log_dir, args.other_core, max_streams=max(2000, 2 * max_load)
        )
        self.redis = redis.Redis(port=self.redis_proc.port, decode_responses=True)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.redis.close()
        for proc in (self.asr, self.redis_proc):
            with contextlib.suppress(Exception):
                proc.stop()

    # ---- one level -----------------------------------------------------------------------

    def _start_target(self, name: str) -> targets.Target:
        a, log_dir = self.args, self.log_dir
        common = {"redis_port": self.redis_proc.port, "asr_port": self.asr.port}
        sessions = 4 * self.max_load
        if name == "direct":
            return targets.Target(name, self.asr.port, "grpc")
        if name == "relay":
            relay = targets.start_relay(log_dir, a.gateway_core, asr_port=self.asr.port)
            return targets.Target(name, relay.port, "ws", procs=[relay], gateways=[relay])
        if name == "gateway":
            gw = targets.start_gateway(
                log_dir, "gateway", a.gateway_core, max_sessions=sessions, **common
            )
            return targets.Target(name, gw.port, "ws", procs=[gw], gateways=[gw])
        both = f"{a.gateway_core},{a.other_core}"
        target = targets.Target(name, 0, "ws")
        try:
            for i in (1, 2):
                gw = targets.start_gateway(
                    log_dir, f"gateway-{i}", both, max_sessions=sessions, **common
                )
                target.procs.append(gw)
                target.gateways.append(gw)
            nginx = targets.start_nginx(log_dir, both, [g.port for g in target.gateways])
        except Exception:
            target.stop()
            raise
        target.procs.append(nginx)
        target.nginx = nginx
        target.port = nginx.port
        return target

    def run_level(
        self, name: str, n: int, *, frame_ms: int = 100, seconds: float | None = None
    ) -> dict[str, Any]:
        a = self.args
        window = a.seconds if seconds is None else seconds
        self.redis.flushall()
        target = self._start_target(name)
        loadgens: list[subprocess.Popen[bytes]] = []
        profiler: subprocess.Popen[bytes] | None = None
        try:
            if target.mode == "ws":
                targets.warm_up(target.port)
                time.sleep(0.5)
            gateway = Group("target", tuple(p for g in target.gateways for p in _tree(g)))
            rss_idle = gateway.rss_kb()

            loadgens = self._start_loadgens(target, n, frame_ms)
            ready = [_read_json_line(p, n / a.ramp_rate + 40) for p in loadgens]
            time.sleep(a.settle)

            groups = {
                "target": gateway,
                "loadgen": Group("loadgen", tuple(p.pid for p in loadgens)),
                "asr": Group("asr", (self.asr.pid,)),
                "redis": Group("redis", (self.redis_proc.pid,)),
            }
            if target.nginx is not None:
                groups["nginx"] = Group("nginx", tuple(_tree(target.nginx)))
            if a.profile == n and name == "gateway":
                profiler = self._start_profiler(target, n)

            t0, ticks0, cores0, calls0 = self._sample(groups)
            time.sleep(window)
            t1, ticks1, cores1, calls1 = self._sample(groups)
            rss_load = gateway.rss_kb()
            # Every session sends once more after the window, so that the stop's flush of
            # a partial window never falls inside it.
            time.sleep(0.3)
            for p in loadgens:
                _send_line(p.stdin, {"cmd": "stop", "window": [t0, t1]})
            results = [_read_json_line(p, 60) for p in loadgens]
        finally:
            for p in loadgens:
                with contextlib.suppress(OSError):
                    p.stdin.close()  # type: ignore[union-attr]
                _end(p)
            if profiler is not None:
                _end(profiler, wait=30)
            target.stop()

        seconds = t1 - t0
        cpu = {k: procstat.cpu_percent(ticks1[k] - ticks0[k], seconds) for k in groups}
        busy = procstat.core_busy_percent(cores0, cores1)
        merged = _merge(results)
        lat = merged.pop("latencies_ms")
        frames = merged["frames_in_window"]
        calls = stats.redis_calls_delta(calls0, calls1)
        redis_ops = sum(calls.values())
        round_trips = stats.redis_top_level_calls(calls, SCRIPT_COMMANDS)
        has_target = bool(target.gateways)
        level: dict[str, Any] = {
            "target": name,
            "streams": n,
            "frame_ms": frame_ms,
            "seconds": round(seconds, 2),
            "ramp_s": max(r.get("ramp_s", 0.0) for r in ready),
            "gateways": len(target.gateways),
            "cpu_pct": round(cpu["target"], 2) if has_target else None,
            "cpu_pct_per_stream": round(cpu["target"] / n, 4) if has_target else None,
            "rss_kb_idle": rss_idle if has_target else None,
            "rss_kb_load": rss_load if has_target else None,
            "rss_kb_per_session": round((rss_load - rss_idle) / n, 1) if has_target else None,
            "p50_ms": _r(stats.percentile(lat, 50)),
            "p99_ms": _r(stats.percentile(lat, 99)),
            "max_ms": _r(max(lat, default=None)),
            "latency_samples": len(lat),
            **merged,
            "frames_per_s": round(frames / seconds, 1),
            # Every command Redis ran (those inside scripts too), and the commands clients
            # sent (EVALSHA, PUBLISH, ...; a pipeline's commands count one each).
            "redis_ops": redis_ops,
            "redis_round_trips": round_trips,
            "redis_ops_per_s": round(redis_ops / seconds, 1),
            "redis_round_trips_per_s": round(round_trips / seconds, 1),
            "redis_ops_per_session_second": round(redis_ops / seconds / n, 4),
            "redis_round_trips_per_session_second": round(round_trips / seconds / n, 4),
            "redis_ops_per_frame_avg": round(redis_ops / frames, 4) if frames else None,
            "redis_round_trips_per_frame_avg": round(round_trips / frames, 4) if frames else None,
            "redis_calls": calls,
            "loadgen_procs": len(loadgens),
            "loadgen_cpu_pct": round(cpu["loadgen"], 2),
            "asr_cpu_pct": round(cpu["asr"], 2),
            "redis_cpu_pct": round(cpu["redis"], 2),
            "nginx_cpu_pct": round(cpu["nginx"], 2) if "nginx" in cpu else None,
            "core_busy_pct": {str(c): round(v, 1) for c, v in sorted(busy.items())},
        }
        level["ok"] = stats.level_ok(level) if has_target else _direct_ok(level)
        return level

    def _sample(
        self, groups: dict[str, Group]
    ) -> tuple[float, dict[str, int], dict[int, tuple[int, int]], dict[str, Any]]:
        calls = self.redis.info("commandstats")
        t = time.monotonic()
        ticks = {k: g.ticks() for k, g in groups.items()}
        return t, ticks, procstat.core_times(), calls

    def _start_loadgens(
        self, target: targets.Target, n: int, frame_ms: int = 100
    ) -> list[subprocess.Popen[bytes]]:
        a = self.args
        if target.mode == "grpc":
            cores, parts = a.direct_core or a.gateway_core, [n]
        else:
            cores = a.other_core
            per = a.streams_per_loadgen or n
            parts = [min(per, n - i) for i in range(0, n, per)]
        procs = []
        for i, count in enumerate(parts):
            argv = [sys.executable, "-m", "bench.loadgen", "--mode", target.mode]
            argv += ["--port", str(target.port), "--streams", str(count)]
            argv += ["--ramp-rate", str(a.ramp_rate / len(parts)), "--seed", str(i + 1)]
            argv += ["--stop-rate", str(a.stop_rate / len(parts)), "--frame-ms", str(frame_ms)]
            argv += ["--id-prefix", f"b{target.name[:2]}{n}p{i}-{time.time_ns() % 10**8}-"]
            log = (self.log_dir / f"loadgen-{target.name}-{n}-{frame_ms}ms-{i}.log").open("ab")
            procs.append(
                subprocess.Popen(
                    targets.pinned(cores, argv),
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=log,
                    cwd=targets.repo_dir(),
                )
            )
            log.close()
        return procs

    def _start_profiler(self, target: targets.Target, n: int) -> subprocess.Popen[bytes] | None:
        py_spy = VENV_BIN / "py-spy"
        if not py_spy.exists():
            print("bench: --profile needs py-spy in the venv (pip install py-spy)", file=sys.stderr)
            return None
        worker = _tree(target.gateways[0])[-1]
        out = RESULTS / f"profile-gateway-{n}.collapsed.txt"
        argv = [
            str(py_spy),
            "record",
            "--pid",
            str(worker),
            "--duration",
            str(int(self.args.seconds)),
        ]
        argv += ["--rate", "100", "--nonblocking", "--format", "raw", "--output", str(out)]
        log = (self.log_dir / "py-spy.log").open("ab")
        proc = subprocess.Popen(targets.pinned(self.args.other_core, argv), stdout=log, stderr=log)
        log.close()
        return proc


def failed_level(target: str, n: int, exc: Exception) -> dict[str, Any]:
    return {
        "target": target,
        "streams": n,
        "cpu_pct": None,
        "cpu_pct_per_stream": None,
        "rss_kb_per_session": None,
        "p50_ms": None,
        "p99_ms": None,
        "errors": n,
        "error_kinds": {f"level failed: {exc}"[:300]: 1},
        "finals_received": 0,
        "finals_expected": None,
        "loadgen_cpu_pct": 0.0,
        "core_busy_pct": {},
        "ok": False,
    }


def _tree(proc: Proc) -> list[int]:
    return procstat.descendants(proc.pid)


def _merge(results: Sequence[dict[str, Any]]) -> dict[str, Any]:
    merged: dict[str, Any] = {
        "streams_started": 0,
        "frames_in_window": 0,
        "finals_received": 0,
        "finals_expected": 0,
        "errors": 0,
        "error_kinds": {},
        "latencies_ms": [],
    }
    for r in results:
        for key in ("streams_started", "frames_in_window", "finals_received", "finals_expected"):
            merged[key] += r[key]
        merged["errors"] += r["errors"]
        merged["latencies_ms"].extend(r["latencies_ms"])
        for kind, count in r["error_kinds"].items():
            merged["error_kinds"][kind] = merged["error_kinds"].get(kind, 0) + count
    return merged


def _direct_ok(level: dict[str, Any]) -> bool:
    return stats.level_ok({**level, "cpu_pct": None})


def _r(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def _send_line(stream: IO[bytes] | None, obj: dict[str, Any]) -> None:
    assert stream is not None
    stream.write(orjson.dumps(obj) + b"\n")
    stream.flush()


def _read_json_line(proc: subprocess.Popen[bytes], timeout: float) -> dict[str, Any]:
    """The next JSON line the load generator prints, within `timeout` seconds."""
    assert proc.stdout is not None
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        if not sel.select(timeout):
            raise TimeoutError(f"load generator {proc.pid} said nothing in {timeout:g} s")
    line = proc.stdout.readline()
    if not line:
        raise RuntimeError(f"load generator {proc.pid} exited with {proc.wait()}")
    result: dict[str, Any] = orjson.loads(line)
    return result


def _end(proc: subprocess.Popen[bytes], wait: float = 5) -> None:
    try:
        proc.wait(wait)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


def _progress(level: dict[str, Any], elapsed: float) -> None:
    cpu = level["cpu_pct"]
    print(
        f"[{elapsed:6.1f}s] {level['target']:>7} N={level['streams']:<4} "
        f"frame={level.get('frame_ms', 100)}ms "
        f"cpu={'-' if cpu is None else f'{cpu:.1f}%'} "
        f"p50={level['p50_ms']} p99={level['p99_ms']} errors={level['errors']} "
        f"finals={level['finals_received']}/{level['finals_expected']} "
        f"loadgen={level['loadgen_cpu_pct']:.1f}% cores={level['core_busy_pct']}",
        file=sys.stderr,
        flush=True,
    )


def _raise_open_files_limit() -> None:
    # Every session holds a socket in the load generator, one in a gateway, two in NGINX.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 65536 if hard == resource.RLIM_INFINITY else min(hard, 65536)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
