"""The dashboards and alert rules against a real Prometheus: gateways, the CPU speech
server, Redis and NGINX, real speech streamed through NGINX; then every panel query and
every rule is evaluated by Prometheus's HTTP API."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.audio import goforward
from tests.support.fixtures_asr import asr_argv, asr_health_serving
from tests.support.fixtures_gateway import admin_port_of, gateways_behind_nginx
from tests.support.fixtures_prometheus import api_get, query, start_prometheus
from tests.support.metrics import samples, scrape
from tests.support.processes import free_port, poll_until, running
from tests.support.ws import frames, open_ws, start, stream_session
from tests.unit.observability.dashboards import DASHBOARDS, concrete, load, metric_names, queries

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
RULES = sorted((REPO / "helm/speech-fleet/files/rules").glob("*.yaml"))
PODS = ["gw-obs-1", "gw-obs-2"]


@pytest.fixture(scope="module")
def fleet(
    log_dir: Path, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Any]]:
    asr_port, asr_metrics = free_port(), free_port()
    with (
        running(
            "asr-obs",
            asr_argv(asr_port, "pocketsphinx", "--metrics-port", str(asr_metrics)),
            log_dir,
            port=asr_port,
            ready=lambda: asr_health_serving(asr_port),
            ready_timeout=60,
        ),
        gateways_behind_nginx(
            log_dir, redis_url=redis_url, riva_targets=f"127.0.0.1:{asr_port}", names=PODS
        ) as (pods, nginx),
    ):
        prometheus = start_prometheus(
            tmp_path_factory.mktemp("prometheus"),
            log_dir,
            # Metrics are on each pod's admin port (the gunicorn master's listener).
            gateways=[(name, f"127.0.0.1:{admin_port_of(pods[name])}") for name in PODS],
            speech_servers=[("asr-cpu", f"127.0.0.1:{asr_metrics}")],
        )
        try:
            yield {
                "pods": pods,
                "nginx": nginx,
                "prometheus": prometheus,
                "asr_metrics": asr_metrics,
            }
        finally:
            prometheus.stop()


@pytest.fixture(scope="module")
def traffic(fleet: dict[str, Any]) -> int:
    """Real speech through NGINX (and one client mistake); returns Prometheus's port once
    it has scraped the finals."""
    import asyncio

    base = f"ws://127.0.0.1:{fleet['nginx'].port}"
    port: int = fleet["prometheus"].port
    # Prometheus scrapes its first round a few seconds after it starts: the traffic must
    # come after it, for rates to see the counters grow.
    poll_until(lambda: len(query(port, "up == 1")) == 3, 30, "a first scrape of every target")

    async def run() -> None:
        audio = frames(goforward(), 3200)
        runs = await asyncio.gather(
            *(stream_session(base, f"obs-prom-{i:04d}", audio) for i in range(3))
        )
        assert all(r.final_texts == ["go forward ten meters"] for r in runs)
        async with await open_ws(base, "obs-prom-bad-0001") as ws:
            await start(ws)
            await ws.send(json.dumps({"type": "no_such_message"}))
            reply = json.loads(await ws.recv())
            assert reply["code"] == "invalid_message"

    asyncio.run(run())
    poll_until(
        lambda: float(query(port, "sum(gateway_finals_total)")[0]["value"][1]) >= 3,
        30,
        "Prometheus to scrape the finals",
    )
    poll_until(
        lambda: bool(query(port, 'asr_streams_total{outcome="ok"} > 0')),
        30,
        "Prometheus to scrape the speech server's streams",
    )
    # rate() over a panel's window needs two scrapes of each series after the traffic.
    poll_until(
        lambda: (
            bool(query(port, "rate(gateway_finals_total[1m]) > 0"))
            and bool(query(port, "rate(asr_streams_total[1m]) > 0"))
        ),
        30,
        "two scrapes after the traffic",
    )
    return port


def rule_exprs() -> list[tuple[str, str]]:
    found = []
    for path in RULES:
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                found.append((rule.get("alert") or rule["record"], rule["expr"]))
    return found


def test_prometheus_scrapes_every_target(traffic: int) -> None:
    up = {r["metric"]["pod"]: r["value"][1] for r in query(traffic, "up")}
    assert up == {"gw-obs-1": "1", "gw-obs-2": "1", "asr-cpu": "1"}


def test_every_dashboard_query_parses_and_has_data(traffic: int) -> None:
    empty = []
    count = 0
    for path in DASHBOARDS:
        for title, expr in queries(load(path)):
            count += 1
            if not query(traffic, concrete(expr)):
                empty.append(f"{path.name}: {title}: {expr}")
    assert count > 30
    assert empty == [], "queries without data after real traffic:\n" + "\n".join(empty)


def test_the_pod_variable_selects_one_pod(traffic: int) -> None:
    expr = next(e for _, e in queries(load(DASHBOARDS[0])) if "gateway_sessions_capacity" in e)
    result = query(traffic, concrete(expr, {"$pod": "gw-obs-1"}))
    assert [r["metric"]["pod"] for r in result] == ["gw-obs-1"]


def test_every_rule_parses_and_recording_rules_have_data(traffic: int) -> None:
    empty = []
    for name, expr in rule_exprs():
        result = query(traffic, expr)  # raises if Prometheus cannot parse it
        if ":" in name and not result:
            empty.append(name)
    assert empty == []


def test_prometheus_evaluates_the_loaded_rules_without_error(traffic: int) -> None:
    def evaluated() -> list[dict[str, Any]]:
        status, body = api_get(traffic, "/api/v1/rules")
        assert status == 200
        return [r for g in body["data"]["groups"] for r in g["rules"]]

    poll_until(
        lambda: all(r.get("lastEvaluation", "").startswith("20") for r in evaluated()),
        20,
        "rules evaluated",
    )
    rules = evaluated()
    assert {r["name"] for r in rules} == {name for name, _ in rule_exprs()}
    assert [r["name"] for r in rules if r["health"] != "ok"] == []
    # A healthy fleet: nothing fires.
    assert [r["name"] for r in rules if r.get("state") == "firing"] == []


def test_every_metric_used_is_in_the_scraped_metrics(fleet: dict[str, Any], traffic: int) -> None:
    scraped: set[str] = set()
    for port in [admin_port_of(p) for p in fleet["pods"].values()] + [fleet["asr_metrics"]]:
        status, text = scrape(port)
        assert status == 200
        scraped |= {name.split("{", 1)[0] for name in samples(text)}
    used = set().union(*(metric_names(e) for path in DASHBOARDS for _, e in queries(load(path))))
    used |= set().union(*(metric_names(e) for _, e in rule_exprs()))
    assert used <= scraped, f"not in /metrics: {sorted(used - scraped)}"
