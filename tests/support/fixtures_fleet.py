"""A real NGINX, rendered from the one NGINX template (helm/speech-fleet/files/nginx), in front of
upstreams that a test started (gateways, or stand-ins), on a free port.

    def test_something(nginx_factory):
        nginx = nginx_factory([gateway_1.port, gateway_2.port])
        url = f"ws://127.0.0.1:{nginx.port}/api/v1/transcribe/{session_id}"

`start_nginx` does the same for fixtures of a wider scope; the caller then stops it.
"""

from __future__ import annotations

import urllib.request
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest

from deploy.local.front_limits import LOOPBACK, FrontLimits
from deploy.local.nginx_conf import nginx_argv, render_nginx_conf
from tests.support.processes import Proc, free_port, start

# Upstreams given as a port (on 127.0.0.1) or as "host:port".
Upstream = int | str
NginxFactory = Callable[[Sequence[Upstream]], Proc]


def start_nginx(
    upstreams: Sequence[Upstream],
    run_dir: Path,
    log_dir: Path,
    limits: FrontLimits = LOOPBACK,
) -> Proc:
    """Start NGINX on a free port of 127.0.0.1 in front of `upstreams`; ready once it
    answers its own /nginx/health. Its configuration, pid and access log are in `run_dir`
    (also in `proc.extra["conf"]` and `proc.extra["run_dir"]`); its error log is the log.
    `limits`: the front's per-address limits, high by default since every test client is
    127.0.0.1 (tests/integration/test_front_flood.py passes the production ones)."""
    port = free_port()
    targets = [f"127.0.0.1:{u}" if isinstance(u, int) else u for u in upstreams]
    conf = render_nginx_conf(port, targets, run_dir, limits=limits)
    proc = start(
        f"nginx-{port}",
        nginx_argv(conf, run_dir),
        log_dir,
        port=port,
        ready=lambda: nginx_health(port),
        ready_timeout=10.0,
    )
    proc.extra.update(conf=conf, run_dir=run_dir)
    return proc


def nginx_health(port: int) -> bool:
    """NGINX's own liveness (no gateway involved)."""
    url = f"http://127.0.0.1:{port}/nginx/health"
    with urllib.request.urlopen(url, timeout=1.0) as response:
        return bool(response.status == 200)


@pytest.fixture
def nginx_factory(tmp_path: Path, log_dir: Path) -> Iterator[NginxFactory]:
    """Starts NGINX in front of the given upstreams; stops each one at the end of the test."""
    started: list[Proc] = []

    def factory(upstreams: Sequence[Upstream]) -> Proc:
        proc = start_nginx(upstreams, tmp_path / f"nginx-{len(started)}", log_dir)
        started.append(proc)
        return proc

    yield factory
    for proc in reversed(started):
        proc.stop()
