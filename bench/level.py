"""One level of a run: N sessions against one target (the speech server directly, the
relay, one gateway, or NGINX in front of two gateways), started afresh on top of the
Redis and speech server that live for the whole run; what the window measured, as one
dict (bench/README.md lists its fields)."""

from __future__ import annotations

import argparse
import contextlib
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import redis

from bench import procstat, stats, targets
from bench.pipes import end, read_json_line, send_line
from bench.procstat import Group
from gateway.store import redis_store, scripts
from tests.support.processes import VENV_BIN, Proc

TARGETS = ("direct", "relay", "gateway", "nginx")
RESULTS = Path(__file__).resolve().parent / "results"
# What the gateway's Lua scripts run inside Redis (every module-level script of the
# store's modules), so that the commands clients sent can be told from those that ran in
# scripts (tests/unit/bench checks that this finds the scripts where they now live).
SCRIPT_COMMANDS = stats.script_commands(
    v
    for module in (redis_store, scripts)
    for v in vars(module).values()
    if isinstance(v, str) and "redis.call" in v
)


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
        # No cap by default (4 x the largest load): admission is the gateway's own call.
        sessions = a.gateway_max_sessions or 4 * self.max_load
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
            ready = [read_json_line(p, n / a.ramp_rate + 40) for p in loadgens]
            time.sleep(a.settle)

            groups = {
                "target": gateway,
                "loadgen": Group("loadgen", tuple(p.pid for p in loadgens)),
                "asr": Group("asr", (self.asr.pid,)),
                "redis": Group("redis", (self.redis_proc.pid,)),
            }
            if target.nginx is not None:
                groups["nginx"] = Group("nginx", tuple(_tree(target.nginx)))
            if a.profile == n and name in ("gateway", "relay"):
                profiler = self._start_profiler(name, target, n)

            t0, ticks0, cores0, calls0 = self._sample(groups)
            time.sleep(window)
            t1, ticks1, cores1, calls1 = self._sample(groups)
            rss_load = gateway.rss_kb()
            # Every session sends once more after the window, so that the stop's flush of
            # a partial window never falls inside it.
            time.sleep(0.3)
            for p in loadgens:
                send_line(p.stdin, {"cmd": "stop", "window": [t0, t1]})
            results = [read_json_line(p, 60) for p in loadgens]
        finally:
            for p in loadgens:
                with contextlib.suppress(OSError):
                    p.stdin.close()  # type: ignore[union-attr]
                end(p)
            if profiler is not None:
                end(profiler, wait=30)
            target.stop()

        seconds = t1 - t0
        cpu = {k: procstat.cpu_percent(ticks1[k] - ticks0[k], seconds) for k in groups}
        busy = procstat.core_busy_percent(cores0, cores1)
        merged = _merge(results)
        lat = merged.pop("latencies_ms")
        refusals = merged.pop("refusal_latencies_ms")
        admitted = merged["streams_started"]
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
            # Per stream served: a refused session is no stream (its cost is in the total).
            "cpu_pct_per_stream": round(cpu["target"] / admitted, 4)
            if has_target and admitted
            else None,
            "rss_kb_idle": rss_idle if has_target else None,
            "rss_kb_load": rss_load if has_target else None,
            "rss_kb_per_session": round((rss_load - rss_idle) / n, 1) if has_target else None,
            "rss_kb_per_admitted_session": round((rss_load - rss_idle) / admitted, 1)
            if has_target and admitted
            else None,
            "p50_ms": _r(stats.percentile(lat, 50)),
            "p99_ms": _r(stats.percentile(lat, 99)),
            "max_ms": _r(max(lat, default=None)),
            "latency_samples": len(lat),
            "refusal_p50_ms": _r(stats.percentile(refusals, 50)),
            "refusal_p99_ms": _r(stats.percentile(refusals, 99)),
            "refusal_max_ms": _r(max(refusals, default=None)),
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

    def _start_profiler(
        self, name: str, target: targets.Target, n: int
    ) -> subprocess.Popen[bytes] | None:
        py_spy = VENV_BIN / "py-spy"
        if not py_spy.exists():
            print("bench: --profile needs py-spy in the venv (pip install py-spy)", file=sys.stderr)
            return None
        worker = _tree(target.gateways[0])[-1]
        out = RESULTS / f"profile-{name}-{n}.collapsed.txt"
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
        "streams_started": 0,
        "refused": 0,
        "finals_lost": None,
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
        "finals_lost": 0,
        "refused": 0,
        "errors": 0,
        "error_kinds": {},
        "latencies_ms": [],
        "refusal_latencies_ms": [],
    }
    counts = ("streams_started", "frames_in_window", "finals_received", "finals_expected")
    for r in results:
        for key in (*counts, "finals_lost", "refused", "errors"):
            merged[key] += r[key]
        merged["latencies_ms"].extend(r["latencies_ms"])
        merged["refusal_latencies_ms"].extend(r["refusal_latencies_ms"])
        for kind, count in r["error_kinds"].items():
            merged["error_kinds"][kind] = merged["error_kinds"].get(kind, 0) + count
    return merged


def _direct_ok(level: dict[str, Any]) -> bool:
    return stats.level_ok({**level, "cpu_pct": None})


def _r(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def progress(level: dict[str, Any], elapsed: float) -> None:
    """One line on stderr per level, as it ends."""
    cpu = level["cpu_pct"]
    print(
        f"[{elapsed:6.1f}s] {level['target']:>7} N={level['streams']:<4} "
        f"frame={level.get('frame_ms', 100)}ms "
        f"cpu={'-' if cpu is None else f'{cpu:.1f}%'} "
        f"p50={level['p50_ms']} p99={level['p99_ms']} errors={level['errors']} "
        f"refused={level.get('refused')} "
        f"finals={level['finals_received']}/{level['finals_expected']} "
        f"loadgen={level['loadgen_cpu_pct']:.1f}% cores={level['core_busy_pct']}",
        file=sys.stderr,
        flush=True,
    )
