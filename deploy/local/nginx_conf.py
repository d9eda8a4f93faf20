"""Renders the fleet's NGINX template into a run dir, and the command line that runs it.

Used by the local fleet (deploy.local.fleet) and by the tests' NGINX fixture, so both run
the one NGINX configuration of the repository.
"""

from __future__ import annotations

import grp
import os
import pwd
import re
import shutil
import string
from collections.abc import Sequence
from pathlib import Path

from deploy.local.front_limits import PRODUCTION, FrontLimits

REPO = Path(__file__).resolve().parents[2]
# The one copy, inside the Helm chart (Helm reads only files in the chart's folder); the
# chart renders the same file for its NGINX front.
TEMPLATE = REPO / "helm" / "speech-fleet" / "files" / "nginx" / "nginx.conf.template"

# Options of every upstream server: after one failed attempt (refused, timed out, or a 503
# from a draining gateway) a gateway is skipped for 2 s, then tried again.
SERVER_OPTIONS = "max_fails=1 fail_timeout=2s"

_UPSTREAM = re.compile(r"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):[0-9]{1,5}")
# Characters that would need quoting in an NGINX configuration file.
_UNSAFE_PATH = re.compile(r"[\s;{}'\"$#\\]")


class _NginxTemplate(string.Template):
    # NGINX variables are written with "$", so placeholders use "@".
    delimiter = "@"


def render_nginx_conf(
    listen_port: int,
    upstreams: Sequence[str],
    run_dir: Path,
    *,
    listen_host: str = "127.0.0.1",
    error_log: str = "stderr",
    limits: FrontLimits = PRODUCTION,
) -> Path:
    """Write `run_dir/nginx.conf` for NGINX on `listen_host:listen_port` in front of
    `upstreams` ("host:port" each), with its pid, temp files and logs under `run_dir`.
    `limits`: the per-address limits (the local fleet, tests and benchmarks pass
    `front_limits.LOOPBACK`: all their clients are 127.0.0.1).

    Returns the path of the written file.
    """
    if not upstreams:
        raise ValueError("at least one upstream is needed")
    for upstream in upstreams:
        if not _UPSTREAM.fullmatch(upstream):
            raise ValueError(f"upstream {upstream!r} is not host:port")
    if not 0 < listen_port < 65536:
        raise ValueError(f"listen port {listen_port} is out of range")
    run_dir = run_dir.resolve()
    if _UNSAFE_PATH.search(str(run_dir)):
        raise ValueError(f"run dir {run_dir} has characters NGINX would need quoted")

    temp_dir = run_dir / "temp"
    log_dir = run_dir / "logs"
    for path in (temp_dir, log_dir):
        path.mkdir(parents=True, exist_ok=True)

    servers = "\n".join(f"        server {upstream} {SERVER_OPTIONS};" for upstream in upstreams)
    text = _NginxTemplate(TEMPLATE.read_text()).substitute(
        user_directive=_user_directive(),
        resolver_directive="# No resolver: the upstreams are addresses.",
        pid_path=run_dir / "nginx.pid",
        error_log=error_log,
        temp_dir=temp_dir,
        access_log=log_dir / "nginx-access.log",
        upstream_servers=servers,
        listen=f"{listen_host}:{listen_port}",
        **limits.placeholders(),
    )
    conf = run_dir / "nginx.conf"
    conf.write_text(text)
    return conf


# Docker Compose runs NGINX from this file, generated from the template by
# `python -m deploy.local.nginx_conf` (a test checks that it is up to date).
COMPOSE_CONF = REPO / "deploy" / "compose" / "nginx.conf"
COMPOSE_UPSTREAMS = ("gateway-1:8000", "gateway-2:8000")
# Docker's embedded DNS server, on every user-defined network.
COMPOSE_RESOLVER = "127.0.0.11"


def container_nginx_conf(
    upstreams: Sequence[str],
    listen_port: int,
    resolver: str,
    limits: FrontLimits = PRODUCTION,
) -> str:
    """The template filled for NGINX in a container, as the Helm chart fills it: each
    upstream a name with `resolve` (NGINX 1.27.3 or later) looked up at `resolver`, paths
    relative to NGINX's prefix (`nginx -p DIR`), logs to the container's output, the
    chart's default (protective) limits."""
    for upstream in upstreams:
        if not _UPSTREAM.fullmatch(upstream):
            raise ValueError(f"upstream {upstream!r} is not host:port")
    servers = "\n".join(
        f"        server {upstream} resolve {SERVER_OPTIONS};" for upstream in upstreams
    )
    return _NginxTemplate(TEMPLATE.read_text()).substitute(
        user_directive="# Runs as the container's non-root user: no user directive.",
        resolver_directive=f"resolver {resolver} valid=5s ipv6=off;",
        pid_path="nginx.pid",
        error_log="stderr",
        temp_dir=".",
        access_log="/dev/stdout",
        upstream_servers=servers,
        listen=str(listen_port),
        **limits.placeholders(),
    )


def compose_nginx_conf() -> str:
    """The text of deploy/compose/nginx.conf."""
    header = (
        "# GENERATED from helm/speech-fleet/files/nginx/nginx.conf.template by\n"
        "# `python -m deploy.local.nginx_conf`: edit the template, then run that.\n"
    )
    return header + container_nginx_conf(COMPOSE_UPSTREAMS, 8080, COMPOSE_RESOLVER)


def nginx_argv(conf: Path, run_dir: Path) -> list[str]:
    """The command that runs NGINX in the foreground on `conf`, entirely inside `run_dir`.

    `-e stderr` covers the messages written before the configuration is read.
    """
    return [
        nginx_binary(),
        "-p",
        f"{run_dir.resolve()}/",
        "-c",
        str(conf.resolve()),
        "-e",
        "stderr",
    ]


def nginx_binary() -> str:
    # Debian installs it in /usr/sbin, which is not on every user's PATH.
    found = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin")
    if found is None:
        raise FileNotFoundError("nginx not found: install Debian's nginx-light (make install)")
    return found


def _user_directive() -> str:
    if os.geteuid() != 0:
        return "# Not started as root: the workers run as the current user."
    user = pwd.getpwuid(os.geteuid()).pw_name
    group = grp.getgrgid(os.getegid()).gr_name
    return f"user {user} {group};"


if __name__ == "__main__":
    COMPOSE_CONF.parent.mkdir(parents=True, exist_ok=True)
    COMPOSE_CONF.write_text(compose_nginx_conf())
    print(f"wrote {COMPOSE_CONF.relative_to(REPO)}")
