"""The processes of a run, each pinned with `taskset`: Redis and the speech server (for
the whole run), and per level the target under test (a gateway, the relay, or NGINX in
front of two gateways), started afresh so that its idle memory is measured clean.
"""

from __future__ import annotations

import contextlib
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import orjson
from websockets.sync.client import connect

from bench.frames import FRAME_BYTES, noise_frames
from deploy.local import nginx_conf
from tests.support.processes import REPO, VENV_BIN, Proc, free_port, redis_argv, start

PYTHON = sys.executable


def pinned(cores: str, argv: Sequence[str]) -> list[str]:
    """`argv` run on `cores` only ("0", "1", "0,1"); taskset execs it, so the pid is the
    program's own."""
    return ["taskset", "-c", cores, *argv]


def _http_status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=0.5) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as err:
        return err.code


def start_redis(log_dir: Path, cores: str) -> Proc:
    port = free_port()
    return start("redis", pinned(cores, redis_argv(port, log_dir / "redis")), log_dir, port=port)


def start_speech_server(log_dir: Path, cores: str, max_streams: int) -> Proc:
    port = free_port()
    argv = [PYTHON, "-m", "asr_cpu", "--engine", "synthetic", "--host", "127.0.0.1"]
    argv += ["--port", str(port), "--max-streams", str(max_streams), "--log-level", "WARNING"]
    argv += ["--interim-every", "0.2", "--final-every", "2.0"]
    return start("asr-synthetic", pinned(cores, argv), log_dir, port=port)


def start_gateway(
    log_dir: Path, name: str, cores: str, *, redis_port: int, asr_port: int, max_sessions: int
) -> Proc:
    port = free_port()
    argv = [str(VENV_BIN / "gunicorn"), "-c", "services/gateway/gunicorn.conf.py"]
    argv += ["--bind", f"127.0.0.1:{port}", "gateway.main:create_app_from_env()"]
    env = {
        "WEB_CONCURRENCY": "1",
        "REDIS__URL": f"redis://127.0.0.1:{redis_port}/0",
        "RIVA__TARGETS": f"127.0.0.1:{asr_port}",
        "LIMITS__MAX_CONCURRENT_SESSIONS": str(max_sessions),
        "SERVER__POD_NAME": name,
        "LIMITS__DRAIN_TIMEOUT_S": "2",
        "GATEWAY_GRACEFUL_TIMEOUT_S": "5",
        # Quotas checked and counted (their Redis work is part of the figures), never hit.
        "QUOTAS__MAX_SESSIONS": "1000000",
        "QUOTAS__STARTS_PER_S": "1000000",
        "QUOTAS__START_BURST": "1000000",
        "QUOTAS__AUDIO_HOURS_PER_DAY": "1000000",
    }
    url = f"http://127.0.0.1:{port}/api/v1/health/live"
    return start(
        name,
        pinned(cores, argv),
        log_dir,
        port=port,
        env=env,
        ready=lambda: _http_status(url) == 200,
    )


def start_relay(log_dir: Path, cores: str, *, asr_port: int) -> Proc:
    port = free_port()
    argv = [PYTHON, "-m", "bench.relay", "--port", str(port)]
    argv += ["--target", f"127.0.0.1:{asr_port}"]
    return start("relay", pinned(cores, argv), log_dir, port=port)


def start_nginx(log_dir: Path, cores: str, upstream_ports: Sequence[int]) -> Proc:
    port = free_port()
    run_dir = log_dir / "nginx"
    upstreams = [f"127.0.0.1:{p}" for p in upstream_ports]
    conf = nginx_conf.render_nginx_conf(port, upstreams, run_dir)
    argv = pinned(cores, nginx_conf.nginx_argv(conf, run_dir))
    return start("nginx", argv, log_dir, port=port)


@dataclass
class Target:
    """What a level runs against: the processes started for it and the port the load
    generator connects to (0 for the speech server's own, in `direct`)."""

    name: str
    port: int
    mode: str  # the load generator's: "ws" or "grpc"
    procs: list[Proc] = field(default_factory=list)
    gateways: list[Proc] = field(default_factory=list)
    nginx: Proc | None = None

    def stop(self) -> None:
        # The front first, so no new connection reaches a gateway that is stopping.
        for proc in reversed(self.procs):
            with contextlib.suppress(Exception):
                proc.stop()


def warm_up(port: int, sessions: int = 4) -> None:
    """A few short sessions before the idle memory is read: the first connection opens
    the gRPC channel and the Redis pool and imports what the socket path needs."""
    frame = noise_frames(1, seed=99)[0]
    assert len(frame) == FRAME_BYTES
    for i in range(sessions):
        url = f"ws://127.0.0.1:{port}/api/v1/transcribe/warmup-{time.time_ns()}-{i}"
        with connect(url, compression=None, open_timeout=10, close_timeout=5) as ws:
            ws.send(orjson.dumps({"type": "start_transcription"}).decode())
            ws.recv(timeout=10)
            for _ in range(25):
                ws.send(frame)
            ws.send(orjson.dumps({"type": "stop_transcription"}).decode())
            while True:
                event = orjson.loads(ws.recv(timeout=10))
                if event.get("event") in ("transcription_stopped", "error"):
                    break


def repo_dir() -> Path:
    return REPO
