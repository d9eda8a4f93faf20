"""Dashboards and alert rules: the chart renders whatever files/dashboards/*.json and
files/rules/*.yaml hold (another part of the project writes them; one copy for the chart,
Compose and the local fleet), and nothing when they are empty. Checked on a private copy of
the chart with small fixtures, so the result does not depend on which files exist yet."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import jsonschema
import pytest
import yaml

from tests.chart.render import Rendered, copy_chart, find, render

ON = {
    "metrics": {
        "prometheusRule": {"enabled": True, "labels": {"release": "prom"}},
        "dashboards": {"enabled": True},
    }
}
DASHBOARD = {"title": "Fixture fleet", "uid": "fixture-fleet", "panels": []}
RULES_A = {"groups": [{"name": "fixture-a", "rules": [{"alert": "A", "expr": "up == 0"}]}]}
RULES_B = {
    "groups": [
        {"name": "fixture-b", "rules": [{"record": "x:y", "expr": "sum(up)"}]},
        {"name": "fixture-c", "rules": [{"alert": "C", "expr": "vector(1)", "for": "5m"}]},
    ]
}


def _chart_with(tmp_path: Path, dashboards: dict[str, object], rules: dict[str, object]) -> Path:
    chart = copy_chart(tmp_path)
    for folder in ("dashboards", "rules"):
        shutil.rmtree(chart / "files" / folder, ignore_errors=True)
        (chart / "files" / folder).mkdir(parents=True)
    for name, body in dashboards.items():
        (chart / "files" / "dashboards" / name).write_text(json.dumps(body))
    for name, body in rules.items():
        (chart / "files" / "rules" / name).write_text(yaml.safe_dump(body))
    return chart


@pytest.fixture(scope="module")
def with_files(tmp_path_factory: pytest.TempPathFactory) -> list[Rendered]:
    chart = _chart_with(
        tmp_path_factory.mktemp("chart"),
        {"fleet_overview.json": DASHBOARD, "redis.json": {"title": "R", "panels": []}},
        {"a.yaml": RULES_A, "b.yaml": RULES_B},
    )
    return render(ON, chart)[0]


def test_one_configmap_per_dashboard_labelled_for_the_sidecar(with_files: list[Rendered]) -> None:
    maps = find(with_files, "ConfigMap")
    dashboards = [m for m in maps if m.obj["metadata"]["labels"].get("grafana_dashboard") == "1"]
    assert sorted(m.name for m in dashboards) == [
        "rel-speech-fleet-dashboard-fleet-overview",
        "rel-speech-fleet-dashboard-redis",
    ]
    overview = next(m for m in dashboards if m.name.endswith("overview"))
    assert json.loads(overview.obj["data"]["fleet_overview.json"]) == DASHBOARD
    assert overview.obj["metadata"]["annotations"]["grafana_folder"] == "Speech"


def test_one_prometheus_rule_with_every_group_of_every_file(with_files: list[Rendered]) -> None:
    (rule,) = find(with_files, "PrometheusRule")
    assert rule.obj["spec"]["groups"] == RULES_A["groups"] + RULES_B["groups"]
    assert rule.obj["metadata"]["labels"]["release"] == "prom"
    schema_path = Path(__file__).parent / "schemas" / "monitoring.coreos.com_prometheusrule_v1.json"
    schema = json.loads(schema_path.read_text())
    jsonschema.validators.validator_for(schema)(schema).validate(rule.obj)


def test_nothing_rendered_when_the_folders_are_empty(tmp_path: Path) -> None:
    objects, _ = render(ON, _chart_with(tmp_path, {}, {}))
    assert find(objects, "PrometheusRule") == []
    labels = [m.obj["metadata"]["labels"] for m in find(objects, "ConfigMap")]
    assert all("grafana_dashboard" not in label for label in labels)


def test_nothing_rendered_when_switched_off(tmp_path: Path) -> None:
    chart = _chart_with(tmp_path, {"d.json": DASHBOARD}, {"a.yaml": RULES_A})
    objects, _ = render({}, chart)
    assert find(objects, "PrometheusRule") == []
    assert find(objects, "ConfigMap", "-dashboard-d") == []
