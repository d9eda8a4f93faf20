"""Real gateway processes (gunicorn + uvicorn worker, as in production) on free ports."""

from __future__ import annotations

import contextlib
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest

from tests.support.processes import VENV_BIN, Proc, free_port, start

GatewayFactory = Callable[..., Proc]


def http_get(url: str, timeout: float = 2.0) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def start_gateway(
    log_dir: Path,
    *,
    redis_url: str,
    riva_targets: str,
    name: str = "gateway",
    env: dict[str, str] | None = None,
    port: int | None = None,
) -> Proc:
    port = port or free_port()
    argv = [
        str(VENV_BIN / "gunicorn"),
        "-c",
        "services/gateway/gunicorn.conf.py",
        "--bind",
        f"127.0.0.1:{port}",
        "gateway.main:create_app_from_env()",
    ]
    full_env = {
        "REDIS__URL": redis_url,
        "RIVA__TARGETS": riva_targets,
        "SERVER__POD_NAME": name,
        "WEB_CONCURRENCY": "1",
        "LIMITS__DRAIN_TIMEOUT_S": "5",
        # A test machine is small and shared (other tests' servers, helpers' jobs): its
        # event loop lags past the production bound without the gateway being saturated,
        # and a refused session fails a test that is about something else. The tests of
        # admission set their own bounds.
        "LIMITS__MAX_LOOP_LAG_S": "2",
        "LIMITS__MAX_LOOP_BUSY": "1",
        # Every test's sessions are the anonymous tenant's, in one Redis: quotas that no
        # test reaches (tests of the quotas set their own), still checked and counted.
        "QUOTAS__MAX_SESSIONS": "100000",
        "QUOTAS__STARTS_PER_S": "100000",
        "QUOTAS__START_BURST": "100000",
        "QUOTAS__AUDIO_HOURS_PER_DAY": "100000",
        **(env or {}),
    }
    url = f"http://127.0.0.1:{port}/api/v1/health/live"
    return start(
        name,
        argv,
        log_dir,
        port=port,
        env=full_env,
        ready=lambda: http_get(url, 0.5)[0] == 200,
    )


@pytest.fixture
def gateway_factory(log_dir: Path) -> Iterator[GatewayFactory]:
    """Start gateways with `gateway_factory(redis_url=..., riva_targets=..., env=...)`;
    all are stopped at the end of the test."""
    started: list[Proc] = []

    def factory(**kwargs: object) -> Proc:
        count = len(started) + 1
        kwargs.setdefault("name", f"gateway-{count}")
        proc = start_gateway(log_dir, **kwargs)  # type: ignore[arg-type]
        started.append(proc)
        return proc

    yield factory
    for proc in started:
        proc.stop()


@contextlib.contextmanager
def gateways_behind_nginx(
    log_dir: Path, *, redis_url: str, riva_targets: str, names: Sequence[str]
) -> Iterator[tuple[dict[str, Proc], Proc]]:
    """Gateways named `names` (their SERVER__POD_NAME) and one NGINX in front of them;
    all stopped on exit, whichever a test killed."""
    from tests.support.fixtures_fleet import start_nginx

    pods: dict[str, Proc] = {}
    nginx: Proc | None = None
    try:
        for name in names:
            pods[name] = start_gateway(
                log_dir, redis_url=redis_url, riva_targets=riva_targets, name=name
            )
        nginx = start_nginx([p.port for p in pods.values()], log_dir / f"nginx-{names[0]}", log_dir)
        yield pods, nginx
    finally:
        if nginx is not None:
            nginx.stop()
        for pod in pods.values():
            pod.stop()
