"""A real Prometheus (Debian's package) on a free port, scraping what a test started,
with the fleet's alert rules loaded; and its HTTP query API."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from deploy.local.prometheus_conf import prometheus_argv, render_prometheus_conf
from tests.support.processes import Proc, free_port, start


def start_prometheus(
    run_dir: Path,
    log_dir: Path,
    *,
    gateways: Sequence[tuple[str, str]],
    speech_servers: Sequence[tuple[str, str]],
    scrape_interval_s: float = 1.0,
) -> Proc:
    """Prometheus scraping `(pod, "host:port")` targets; ready once /-/ready answers 200.
    The caller stops it."""
    port = free_port()
    conf = render_prometheus_conf(
        run_dir,
        gateways=gateways,
        speech_servers=speech_servers,
        scrape_interval_s=scrape_interval_s,
    )
    return start(
        f"prometheus-{port}",
        prometheus_argv(conf, run_dir / "data", f"127.0.0.1:{port}"),
        log_dir,
        port=port,
        ready=lambda: api_get(port, "/-/ready")[0] == 200,
        ready_timeout=30.0,
    )


def api_get(port: int, path: str, **params: str) -> tuple[int, Any]:
    url = f"http://127.0.0.1:{port}{path}"
    if params:
        url += "?" + urllib.parse.urlencode(params)
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            body = response.read()
            status = response.status
    except urllib.error.HTTPError as err:
        body, status = err.read(), err.code
    try:
        return status, json.loads(body)
    except ValueError:
        return status, body.decode(errors="replace")


def query(port: int, expr: str) -> list[dict[str, Any]]:
    """An instant query's result; raises with Prometheus's error if it does not parse."""
    status, body = api_get(port, "/api/v1/query", query=expr)
    if status != 200 or body.get("status") != "success":
        raise ValueError(f"{expr!r}: {body}")
    result: list[dict[str, Any]] = body["data"]["result"]
    return result
