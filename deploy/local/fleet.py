"""The whole fleet on this machine, in the foreground: `python -m deploy.local.fleet`.

Renders the NGINX and supervisord configurations into the run dir (.run/fleet), checks
that every port is free and every program is installed, prints what runs where, then
becomes supervisord (exec), so Ctrl-C or SIGINT/SIGTERM to this process stops them all.
"""

from __future__ import annotations

import contextlib
import errno
import importlib.util
import os
import resource
import shutil
import socket
import sys
from pathlib import Path

from deploy.local import nginx_conf, prometheus_conf
from deploy.local.front_limits import LOOPBACK, PRODUCTION
from deploy.local.settings import HOST, FleetSettings
from deploy.local.supervisor_conf import (
    fleet_programs,
    render_supervisor_conf,
    socket_path,
    supervisorctl_argv,
)


class FleetError(Exception):
    """A reason the fleet cannot start, worded for the person who ran it."""


def preflight(settings: FleetSettings) -> None:
    """Fail before starting anything: a port taken, a fleet already running, a program
    or module missing."""
    problems: list[str] = []
    if _socket_answers(socket_path(settings)):
        problems.append(
            f"a fleet already runs from {settings.run_dir}: "
            f"stop it with `{' '.join(supervisorctl_argv(settings, 'shutdown'))}`"
        )
    names = [
        "NGINX", *settings.gateway_names, "speech server", "Redis", "speech server metrics",
        "Prometheus",
    ]  # fmt: skip
    names += [name for name, _ in settings.redis_ports_named()[1:]]
    for name, port in zip(names, settings.all_ports(), strict=True):
        if port_taken(port):
            problems.append(f"port {port} ({name}) is already in use on {HOST}")
    redis_programs = ("redis-server", "redis-sentinel", "redis-cli")
    executables = redis_programs if settings.redis_mode != "single" else ("redis-server",)
    for executable in (*executables, "prometheus"):
        if shutil.which(executable) is None:
            problems.append(f"{executable} not found: run `make install`")
    for executable in ("supervisord", "supervisorctl", "gunicorn"):
        if not (settings.bin_dir / executable).exists():
            problems.append(f"{settings.bin_dir / executable} not found: run `make install`")
    try:
        nginx_conf.nginx_binary()
    except FileNotFoundError as exc:
        problems.append(str(exc))
    for module in ("gateway.main", "asr_cpu.__main__"):
        if not _importable(module):
            problems.append(f"Python module {module} not found: run `make install`")
    if not (settings.repo / "services/gateway/gunicorn.conf.py").exists():
        problems.append("services/gateway/gunicorn.conf.py not found")
    if problems:
        raise FleetError("cannot start the fleet:\n" + "\n".join(f"  - {p}" for p in problems))


def port_taken(port: int) -> bool:
    """True when something listens on (or holds) HOST:port, as a server's bind would see."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        # Like the servers themselves, so connections in TIME_WAIT do not count.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((HOST, port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                return True
            raise
    return False


def banner(settings: FleetSettings) -> str:
    run_dir = _shown(settings.run_dir)
    gateways = "\n".join(
        f"  {name:<14} http://{HOST}:{port}  (gunicorn, SERVER__POD_NAME={name})"
        for name, port in zip(settings.gateway_names, settings.gateway_ports, strict=True)
    )
    if settings.logs == "terminal":
        logs = f"every program's output below; supervisord's own also in {run_dir}/logs/"
    else:
        logs = f"{run_dir}/logs/<program>.log  (tail -F {run_dir}/logs/*.log)"
    ctl = " ".join(_shown(Path(a)) if "/" in a else a for a in supervisorctl_argv(settings))
    return (
        "speech fleet\n"
        f"  {'NGINX':<14} ws://{HOST}:{settings.nginx_port}/api/v1/transcribe/{{session_id}}"
        "  (hash on session id across the gateways)\n"
        f"{gateways}\n"
        f"  {'speech server':<14} {HOST}:{settings.asr_port}  "
        f"(gRPC, Riva ASR API, engine {settings.asr_engine})\n"
        f"  {'Redis':<14} {_redis_shown(settings)}\n"
        f"  {'Prometheus':<14} http://{HOST}:{settings.prometheus_port}  (scrapes the gateways "
        f"and the speech server, :{settings.asr_metrics_port}; alert rules from "
        "helm/speech-fleet/files/rules)\n"
        f"status: {ctl} status\n"
        f"logs:   {logs}\n"
        "stop:   Ctrl-C (stops every program)\n"
    )


def _redis_shown(settings: FleetSettings) -> str:
    ports = ",".join(str(p) for p in settings.redis_ports)
    if settings.redis_mode == "sentinel":
        sentinels = ",".join(str(p) for p in settings.sentinel_ports)
        return f"{HOST}:{ports} (primary, replica), sentinels {sentinels} (REDIS_MODE=sentinel)"
    if settings.redis_mode == "cluster":
        return f"{HOST}:{ports} (cluster: 3 primaries, 3 replicas; REDIS_MODE=cluster)"
    return f"{settings.redis_url}  (AOF once a second)"


def prepare(settings: FleetSettings) -> Path:
    """Check, render both configurations, and return supervisord.conf's path."""
    preflight(settings)
    settings.run_dir.mkdir(parents=True, exist_ok=True)
    nginx_dir = settings.run_dir / "nginx"
    upstreams = [f"{HOST}:{port}" for port in settings.gateway_ports]
    limits = LOOPBACK if settings.front_limits == "loopback" else PRODUCTION
    conf = nginx_conf.render_nginx_conf(settings.nginx_port, upstreams, nginx_dir, limits=limits)
    prometheus_dir = settings.run_dir / "prometheus"
    prometheus = prometheus_conf.render_prometheus_conf(
        prometheus_dir,
        gateways=[
            (name, f"{HOST}:{port}")
            for name, port in zip(settings.gateway_names, settings.gateway_ports, strict=True)
        ],
        speech_servers=[("asr-cpu", f"{HOST}:{settings.asr_metrics_port}")],
    )
    prometheus_argv = prometheus_conf.prometheus_argv(
        prometheus, prometheus_dir / "data", f"{HOST}:{settings.prometheus_port}"
    )
    programs = fleet_programs(settings, nginx_conf.nginx_argv(conf, nginx_dir), prometheus_argv)
    return render_supervisor_conf(settings, programs)


def main() -> int:
    try:
        settings = FleetSettings.from_env()
        conf = prepare(settings)
    except (FleetError, ValueError) as exc:
        print(f"fleet: {exc}", file=sys.stderr)
        return 1
    print(banner(settings), flush=True)
    _raise_open_files_limit()
    supervisord = str(settings.bin_dir / "supervisord")
    os.execv(supervisord, [supervisord, "-c", str(conf)])


def _raise_open_files_limit() -> None:
    # Every WebSocket holds two descriptors in NGINX and one in a gateway.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 65536 if hard == resource.RLIM_INFINITY else min(hard, 65536)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


def _socket_answers(path: Path) -> bool:
    if not path.exists():
        return False
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe, contextlib.suppress(OSError):
        probe.connect(str(path))
        return True
    return False


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ImportError:
        return False


def _shown(path: Path) -> str:
    """`path` relative to the current directory when it is inside it."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


if __name__ == "__main__":
    sys.exit(main())
