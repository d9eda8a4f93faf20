"""The Grafana dashboards: written by scripts/build_dashboards.py, in the structure
Grafana's dashboard schema requires, with queries Prometheus parses over metrics the
code exports. (No Grafana server runs here: these are structure checks; the queries run
against a real Prometheus in tests/integration/test_observability_prometheus.py.)"""

from __future__ import annotations

import importlib.util
import itertools
import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.dashboard import Dashboard
from prometheus_client import REGISTRY

import asr_cpu.metrics  # noqa: F401  (registers the speech server's metrics)
import gateway.observability.metrics  # noqa: F401
from tests.unit.observability.dashboards import (
    BUILTINS,
    DASHBOARDS,
    REPO,
    concrete,
    load,
    metric_names,
    queries,
)

PANEL_TYPES = {"row", "timeseries", "stat"}


def lost_or_changed(original: Any, decoded: Any, path: str = "") -> list[str]:
    """Where `decoded` lacks or alters something of `original`."""
    if isinstance(original, dict):
        if not isinstance(decoded, dict):
            return [path]
        return [
            problem
            for key, value in original.items()
            for problem in (
                lost_or_changed(value, decoded[key], f"{path}/{key}")
                if key in decoded
                else [f"{path}/{key} (not in Grafana's schema)"]
            )
        ]
    if isinstance(original, list):
        if not isinstance(decoded, list) or len(decoded) != len(original):
            return [path]
        return [
            problem
            for i, (a, b) in enumerate(zip(original, decoded, strict=True))
            for problem in lost_or_changed(a, b, f"{path}[{i}]")
        ]
    return [] if original == decoded else [f"{path}: {original!r} became {decoded!r}"]


def builder() -> Any:
    spec = importlib.util.spec_from_file_location(
        "build_dashboards", REPO / "scripts/build_dashboards.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_files_are_what_the_script_writes() -> None:
    rendered = builder().render()
    assert sorted(rendered) == [p.name for p in DASHBOARDS]
    for path in DASHBOARDS:
        assert path.read_text() == rendered[path.name], (
            f"run scripts/build_dashboards.py ({path.name})"
        )


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_grafanas_own_dashboard_model_reads_every_field(path: Path) -> None:
    # Grafana Labs' grafana-foundation-sdk: types generated from Grafana's (11.6) schema.
    data = load(path)
    decoded = json.loads(json.dumps(Dashboard.from_json(data), cls=JSONEncoder))
    assert lost_or_changed(data, decoded) == []


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_dashboard_has_the_fields_grafana_requires(path: Path) -> None:
    board = load(path)
    assert isinstance(board["uid"], str)
    assert 0 < len(board["uid"]) <= 40
    assert re.fullmatch(r"[A-Za-z0-9_-]+", board["uid"])
    assert isinstance(board["title"], str)
    assert board["title"]
    assert isinstance(board["schemaVersion"], int)
    assert board["schemaVersion"] >= 36
    assert set(board["time"]) == {"from", "to"}
    assert isinstance(board["panels"], list)
    assert board["panels"]
    assert isinstance(board["templating"]["list"], list)
    assert isinstance(board["annotations"]["list"], list)


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_panels_are_laid_out_on_the_24_column_grid_without_overlap(path: Path) -> None:
    panels = load(path)["panels"]
    ids = [p["id"] for p in panels]
    assert len(set(ids)) == len(ids)
    assert all(isinstance(i, int) for i in ids)
    cells: set[tuple[int, int]] = set()
    for panel in panels:
        assert panel["type"] in PANEL_TYPES, panel["title"]
        grid = panel["gridPos"]
        assert all(isinstance(grid[k], int) for k in ("h", "w", "x", "y"))
        assert grid["w"] > 0
        assert grid["h"] > 0
        assert grid["x"] >= 0
        assert grid["x"] + grid["w"] <= 24
        mine = set(
            itertools.product(
                range(grid["x"], grid["x"] + grid["w"]), range(grid["y"], grid["y"] + grid["h"])
            )
        )
        assert not cells & mine, f"{panel['title']} overlaps another panel"
        cells |= mine


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_queries_use_the_datasource_and_only_defined_variables(path: Path) -> None:
    board = load(path)
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    assert {"namespace", "pod"} <= set(variables)
    for panel in board["panels"]:
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        refs = [t["refId"] for t in panel["targets"]]
        assert refs
        assert len(set(refs)) == len(refs)
        for target in panel["targets"]:
            used = set(re.findall(r"\$[A-Za-z_]+", target["expr"]))
            assert used <= {f"${n}" for n in variables} | set(BUILTINS), target["expr"]
    namespaced = [e for _, e in queries(board) if 'namespace=~"$namespace"' in e]
    assert len(namespaced) == len(list(queries(board))), "every query filters by namespace"


def test_every_query_parses_as_promql(tmp_path: Path) -> None:
    # promtool parses each query as a recording rule: the same parser as Prometheus.
    rules = [
        {"record": f"dashboard:query_{i}", "expr": concrete(expr)}
        for i, (_, expr) in enumerate(expr for path in DASHBOARDS for expr in queries(load(path)))
    ]
    path = tmp_path / "queries.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}))
    result = subprocess.run(
        ["promtool", "check", "rules", str(path)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_queries_use_only_metrics_the_code_exports() -> None:
    suffixes = {"counter": ["_total"], "histogram": ["_bucket", "_count", "_sum"]}
    exported = {
        family.name + s for family in REGISTRY.collect() for s in suffixes.get(family.type, [""])
    }
    used = set().union(
        *(metric_names(expr) for path in DASHBOARDS for _, expr in queries(load(path)))
    )
    assert {"gateway_final_latency_seconds_bucket", "asr_streams_active"} <= used
    assert used <= exported, f"not exported: {used - exported}"
