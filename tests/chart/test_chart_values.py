"""values.yaml and values.schema.json: every value is commented, the defaults fit the
schema, and each kind of mistake is refused by Helm's own schema check before anything
renders."""

from __future__ import annotations

import re
from typing import Any

import helm_python as helm
import pytest
import yaml

from tests.chart.render import CHART, SCENARIOS, scenario_values, validate_values


def test_every_value_has_a_comment() -> None:
    # A key needs a comment on the line above unless it is inside a commented value (the
    # keys of `resources:` are its data) or it is a section whose own keys are checked.
    lines = (CHART / "values.yaml").read_text().splitlines()
    stack: list[tuple[int, bool]] = []  # (indent, commented) of the enclosing keys
    missing = []
    for number, line in enumerate(lines):
        if not re.match(r"^\s*[A-Za-z][\w./-]*:", line):
            continue  # comments, blank lines, list items
        indent = len(line) - len(line.lstrip())
        while stack and stack[-1][0] >= indent:
            stack.pop()
        commented = number > 0 and lines[number - 1].strip().startswith("#")
        following = next((n for n in lines[number + 1 :] if n.strip()), "")
        is_section = line.rstrip().endswith(":") and (
            len(following) - len(following.lstrip()) > indent
        )
        inside_value = any(c for _, c in stack)
        if not (commented or inside_value or is_section):
            missing.append(f"{number + 1}: {line.strip()}")
        stack.append((indent, commented))
    assert missing == []


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda p: p.name)
def test_scenarios_fit_the_schema(scenario: Any) -> None:
    validate_values(scenario_values(scenario))


MISTAKES = {
    "wrong type": ({"gateway": {"replicas": "three"}}, "/gateway/replicas"),
    "out of range": ({"gateway": {"config": {"drainTimeoutSeconds": -1}}}, "drainTimeoutSeconds"),
    "misspelt key": ({"gateway": {"replica": 3}}, "replica"),
    "unknown section": ({"ingress": {"enabled": True}}, "ingress"),
    "not one of the choices": ({"riva": {"mode": "gpu"}}, "/riva/mode"),
    "malformed target": (
        {"riva": {"mode": "external", "external": {"targets": ["riva.example.com"]}}},
        "/riva/external/targets/0",
    ),
    "external riva without targets": ({"riva": {"mode": "external"}}, "targets"),
    "external redis without a URL": ({"redis": {"mode": "external"}}, "externalUrl"),
    "redis URL of another scheme": (
        {"redis": {"mode": "external", "externalUrl": "http://redis:6379"}},
        "/redis/externalUrl",
    ),
    "bad image digest": ({"gateway": {"image": {"digest": "latest"}}}, "/gateway/image/digest"),
    "scale-down beyond KEDA's limit": (
        {"autoscaling": {"mode": "keda", "scaleDownStabilizationSeconds": 7200}},
        "scaleDownStabilizationSeconds",
    ),
    "resources without a memory limit": (
        # null removes a default in Helm's merge.
        {"front": {"resources": {"limits": {"memory": None}}}},
        "memory",
    ),
    "HTTPRoute without a Gateway": ({"httpRoute": {"enabled": True}}, "parentRefs"),
    "no front and no route": ({"front": {"enabled": False}}, "/httpRoute"),
    "discovery of an external Riva without its Service": (
        {
            "riva": {
                "mode": "external",
                "external": {"targets": ["riva:50051"]},
                "discovery": {"enabled": True},
            }
        },
        "/riva/discovery/service",
    ),
    "privileged gateway port": ({"gateway": {"port": 80}}, "/gateway/port"),
    "environment name that is not one": (
        {"gateway": {"config": {"extraEnv": {"limits.idle": "3"}}}},
        "limits.idle",
    ),
}


@pytest.mark.parametrize("mistake", list(MISTAKES), ids=str)
def test_schema_refuses_each_kind_of_mistake(mistake: str) -> None:
    values, where = MISTAKES[mistake]
    with pytest.raises(helm.HelmValuesError, match=re.escape(where)):
        validate_values(values)


def _leaf_paths(node: Any, prefix: str = "") -> list[str]:
    if isinstance(node, dict) and node:
        return [p for k, v in node.items() for p in _leaf_paths(v, f"{prefix}{k}.")]
    return [prefix.rstrip(".")]


def test_readme_values_table_covers_every_value() -> None:
    defaults = yaml.safe_load((CHART / "values.yaml").read_text())
    readme = (CHART / "README.md").read_text()
    rows = re.findall(r"^\| `([\w./-]+)` \|", readme, re.M)
    assert rows
    leaves = _leaf_paths(defaults)
    for row in rows:
        assert any(leaf == row or leaf.startswith(row + ".") for leaf in leaves), row
    for leaf in leaves:
        assert any(leaf == row or leaf.startswith(row + ".") for row in rows), leaf
