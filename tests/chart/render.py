"""Renders the chart with a real Helm engine: Helm 4's Go SDK, shipped as a shared library
in the pinned helm-python-sdk wheel (no cluster is contacted; `lookup` returns nothing)."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import helm_python as helm
import yaml

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "helm" / "speech-fleet"
SCENARIOS = sorted(CHART.glob("ci/*-values.yaml"))
RELEASE = "rel"
NAMESPACE = "speech"


@dataclass(frozen=True)
class Rendered:
    """One rendered object and the template it came from."""

    template: str
    obj: dict[str, Any]

    @property
    def kind(self) -> str:
        return str(self.obj["kind"])

    @property
    def name(self) -> str:
        return str(self.obj["metadata"]["name"])


def scenario_values(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text()) or {}


def render(
    values: dict[str, Any] | None = None, chart: Path = CHART, release: str = RELEASE
) -> tuple[list[Rendered], dict[str, str]]:
    """Every object the chart renders with `values`, and the raw text per template (for
    NOTES.txt and the test hook)."""
    with helm.Chart.load(str(chart)) as loaded:
        manifests = loaded.render(values or {}, name=release, namespace=NAMESPACE)
    objects = []
    for template, text in sorted(manifests.items()):
        if template.endswith("NOTES.txt"):
            continue
        for doc in yaml.safe_load_all(text):
            if doc:
                objects.append(Rendered(template, doc))
    return objects, manifests


def validate_values(values: dict[str, Any], chart: Path = CHART) -> None:
    """Helm's own check of `values` (which it merges with the defaults, as an install does)
    against values.schema.json; raises helm_python's HelmValuesError when they do not fit."""
    with helm.Chart.load(str(chart)) as loaded:
        loaded.validate_schema(values)


def copy_chart(destination: Path) -> Path:
    """A private copy of the chart, for tests that add files to it."""
    target = destination / "speech-fleet"
    shutil.copytree(CHART, target)
    return target


def find(objects: list[Rendered], kind: str, name_suffix: str = "") -> list[Rendered]:
    return [o for o in objects if o.kind == kind and o.name.endswith(name_suffix)]
