"""The local fleet's programs, and the supervisord configuration that runs them."""

from __future__ import annotations

import os
import pwd
import secrets
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from deploy.local.settings import HOST, FleetSettings

# sun_path of a unix socket holds 108 bytes, the final NUL included.
_MAX_SOCKET_PATH = 107


@dataclass(frozen=True)
class Program:
    name: str
    argv: list[str]
    # Started in ascending, stopped in descending order.
    priority: int
    env: dict[str, str] = field(default_factory=dict)
    # Seconds a program must stay up to count as started.
    startsecs: int = 2
    # Seconds between the stop signal and SIGKILL to the program's whole process group.
    stopwaitsecs: int = 10
    stopsignal: str = "TERM"
    # False for a one-shot program (it runs once and exits with success).
    autorestart: bool = True


def fleet_programs(
    settings: FleetSettings, nginx_argv: list[str], prometheus_argv: list[str] | None = None
) -> list[Program]:
    """Redis, the CPU speech server, the gateways, Prometheus and NGINX, in start order."""
    # Here, not at the top: redis_programs builds on this module's Program.
    from deploy.local.redis_programs import gateway_redis_env, redis_programs

    python = str(settings.bin_dir / "python")
    unbuffered = {"PYTHONUNBUFFERED": "1"}
    programs = [
        *redis_programs(settings),
        Program(
            name="asr-cpu",
            argv=[
                python,
                "-m",
                "asr_cpu",
                "--host",
                HOST,
                "--port",
                str(settings.asr_port),
                "--engine",
                settings.asr_engine,
                "--metrics-port",
                str(settings.asr_metrics_port),
            ],
            priority=20,
            env=unbuffered,
        ),
    ]
    for name, port in zip(settings.gateway_names, settings.gateway_ports, strict=True):
        programs.append(
            Program(
                name=name,
                argv=[
                    str(settings.bin_dir / "gunicorn"),
                    "-c",
                    "services/gateway/gunicorn.conf.py",
                    "--bind",
                    f"{HOST}:{port}",
                    "gateway.main:create_app_from_env()",
                ],
                priority=30,
                env={
                    **unbuffered,
                    **gateway_redis_env(settings),
                    "RIVA__TARGETS": f"{HOST}:{settings.asr_port}",
                    "SERVER__POD_NAME": name,
                    **local_quotas(os.environ),
                    # gunicorn puts its control socket (gunicornc) in $XDG_RUNTIME_DIR, else
                    # in ~/.gunicorn: one path for every gunicorn of the user. One each.
                    "XDG_RUNTIME_DIR": str(settings.run_dir / name),
                },
                # On TERM a gateway drains: it tells its clients to reconnect elsewhere and
                # waits for them (gunicorn's graceful timeout) before it exits.
                stopwaitsecs=40,
            )
        )
    if prometheus_argv is not None:
        programs.append(Program(name="prometheus", argv=prometheus_argv, priority=35))
    programs.append(
        Program(
            name="nginx",
            argv=nginx_argv,
            priority=40,
            startsecs=1,
            # Graceful: in-flight requests finish, sockets get worker_shutdown_timeout (5 s).
            stopsignal="QUIT",
            stopwaitsecs=10,
        )
    )
    return programs


def socket_path(settings: FleetSettings) -> Path:
    return settings.run_dir / "supervisor.sock"


def conf_path(settings: FleetSettings) -> Path:
    return settings.run_dir / "supervisord.conf"


def render_supervisor_conf(settings: FleetSettings, programs: list[Program]) -> Path:
    """Write `run_dir/supervisord.conf` (mode 0600: it holds the control socket's password)."""
    sock = socket_path(settings)
    if len(str(sock)) > _MAX_SOCKET_PATH:
        raise ValueError(f"run dir path too long for a unix socket: {sock}")
    log_dir = settings.run_dir / "logs"
    for path in (
        log_dir,
        settings.run_dir / "redis",
        *map(settings.run_dir.joinpath, settings.gateway_names),
    ):
        path.mkdir(parents=True, exist_ok=True)
    # Without credentials supervisord logs a CRIT line on every start; the socket is also
    # mode 0700, so only this user reaches it.
    password = secrets.token_hex(16)
    sections = [
        _section(
            "unix_http_server",
            file=sock,
            chmod="0700",
            username="fleet",
            password=password,
        ),
        _section(
            "supervisord",
            nodaemon="true",
            # With nodaemon, supervisord's own log goes to the terminal too.
            logfile=log_dir / "supervisord.log",
            logfile_maxbytes="10MB",
            logfile_backups=1,
            pidfile=settings.run_dir / "supervisord.pid",
            childlogdir=log_dir,
            directory=settings.repo,
            identifier="speech-fleet",
            # Started as root, supervisord would warn that it kept root's privileges.
            **({"user": pwd.getpwuid(0).pw_name} if os.geteuid() == 0 else {}),
        ),
        _section(
            "rpcinterface:supervisor",
            **{"supervisor.rpcinterface_factory": "supervisor.rpcinterface:make_main_rpcinterface"},
        ),
        _section(
            "supervisorctl",
            serverurl=f"unix://{sock}",
            username="fleet",
            password=password,
        ),
        _reaper_section(settings),
        *(_program_section(settings, program) for program in programs),
    ]
    conf = conf_path(settings)
    fd = os.open(conf, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(
            "; Rendered by deploy/local/fleet.py on every start; edit that, not this file.\n\n"
            + "\n".join(sections)
        )
    return conf


def _program_section(settings: FleetSettings, program: Program) -> str:
    return _section(
        f"program:{program.name}",
        command=_command(program.argv),
        directory=settings.repo,
        priority=program.priority,
        autostart="true",
        autorestart="true" if program.autorestart else "false",
        startsecs=program.startsecs,
        startretries=10,
        stopsignal=program.stopsignal,
        stopwaitsecs=program.stopwaitsecs,
        stopasgroup="true",
        killasgroup="true",
        redirect_stderr="true",
        **_output(settings, program.name, "stdout"),
        **({"environment": _environment(program.env)} if program.env else {}),
    )


def _reaper_section(settings: FleetSettings) -> str:
    # Lowest priority: started first, stopped last, so it sees every other program exit.
    return _section(
        "eventlistener:reaper",
        command=_command([str(settings.bin_dir / "python"), "-m", "deploy.local.reaper"]),
        directory=settings.repo,
        events="PROCESS_STATE_EXITED",
        priority=1,
        autorestart="true",
        startsecs=1,
        stopasgroup="true",
        killasgroup="true",
        stdout_logfile="NONE",
        **_output(settings, "reaper", "stderr"),
    )


def _output(settings: FleetSettings, name: str, stream: str) -> dict[str, object]:
    if settings.logs == "terminal":
        return {f"{stream}_logfile": "/dev/stdout", f"{stream}_logfile_maxbytes": 0}
    return {
        f"{stream}_logfile": settings.run_dir / "logs" / f"{name}.log",
        f"{stream}_logfile_maxbytes": "10MB",
        f"{stream}_logfile_backups": 1,
    }


def _section(name: str, **options: object) -> str:
    lines = [f"[{name}]"]
    lines += [f"{key}={_escape(str(value))}" for key, value in options.items()]
    return "\n".join(lines) + "\n"


def _command(argv: list[str]) -> str:
    # supervisord splits `command` with shlex, as shlex.join quotes it.
    return shlex.join(argv)


def _environment(env: dict[str, str]) -> str:
    for key, value in env.items():
        if '"' in value or "\n" in value:
            raise ValueError(f"environment value of {key} cannot hold quotes or newlines")
    return ",".join(f'{key}="{value}"' for key, value in env.items())


def _escape(value: str) -> str:
    # supervisord expands %(name)s in every value; a literal % is written %%.
    return value.replace("%", "%%")


def supervisorctl_argv(settings: FleetSettings, *args: str) -> list[str]:
    """`supervisorctl` on this fleet's control socket, e.g. ("pid", "gateway-1")."""
    return [str(settings.bin_dir / "supervisorctl"), "-c", str(conf_path(settings)), *args]


# The local fleet runs without authentication: every session is the anonymous tenant's,
# so the fleet-wide quotas (docs/quotas.md) bound all of its traffic together. Generous
# here (load tests), unless set in the environment (`QUOTAS__MAX_SESSIONS=2 make up`).
LOCAL_QUOTAS = {
    "QUOTAS__MAX_SESSIONS": "10000",
    "QUOTAS__STARTS_PER_S": "1000",
    "QUOTAS__START_BURST": "1000",
    "QUOTAS__AUDIO_HOURS_PER_DAY": "100000",
}


def local_quotas(environ: Mapping[str, str]) -> dict[str, str]:
    """The quota settings of the local fleet's gateways: the environment's, else generous."""
    return {name: environ.get(name, default) for name, default in LOCAL_QUOTAS.items()}
