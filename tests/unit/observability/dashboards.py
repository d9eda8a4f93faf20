"""Reading the Grafana dashboards' queries, for the tests that check them."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[3]
DASHBOARDS = sorted((REPO / "helm/speech-fleet/files/dashboards").glob("*.json"))

# Grafana's own variables, and what they stand for when a query runs outside Grafana.
BUILTINS = {"$__rate_interval": "1m", "$__interval": "15s", "$__range": "1h"}


def load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def queries(dashboard: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(panel title, expr) of every query of every panel."""
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            yield panel["title"], target["expr"]


def concrete(expr: str, values: dict[str, str] | None = None) -> str:
    """The query as Grafana would send it: template variables replaced."""
    chosen = {"$namespace": ".*", "$pod": ".*", **BUILTINS, **(values or {})}
    for name in sorted(chosen, key=len, reverse=True):
        expr = expr.replace(name, chosen[name])
    return expr


def metric_names(expr: str) -> set[str]:
    return set(re.findall(r"\b((?:gateway|asr)_[a-z0-9_]+)", expr))
