"""The alert rules: valid for Prometheus (promtool), each unit-tested firing and quiet,
each with its `for`, severity, summary and a runbook section that exists, and using only
metrics the code exports."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import REGISTRY

import asr_cpu.metrics
import gateway.observability.metrics  # noqa: F401  (registers the gateway's metrics)

REPO = Path(__file__).resolve().parents[3]
RULES = sorted((REPO / "helm/speech-fleet/files/rules").glob("*.yaml"))
TESTS = Path(__file__).with_name("alerts_test.yaml")
RUNBOOK = REPO / "docs/runbook.md"

# Debian's prometheus package (scripts/bootstrap.sh) brings promtool.
promtool = shutil.which("promtool") or "promtool"


def alert_rules() -> list[dict[str, Any]]:
    rules = []
    for path in RULES:
        for group in yaml.safe_load(path.read_text())["groups"]:
            rules.extend(r for r in group["rules"] if "alert" in r)
    return rules


def all_exprs() -> list[str]:
    return [
        rule["expr"]
        for path in RULES
        for group in yaml.safe_load(path.read_text())["groups"]
        for rule in group["rules"]
    ]


def anchors(markdown: str) -> set[str]:
    """GitHub's heading anchors."""
    found = set()
    for line in markdown.splitlines():
        if line.startswith("#"):
            title = line.lstrip("#").strip().lower()
            found.add(re.sub(r"[^a-z0-9 _-]", "", title).replace(" ", "-"))
    return found


def exported_metric_names() -> set[str]:
    suffixes = {"counter": ["_total"], "histogram": ["_bucket", "_count", "_sum"]}
    names = set()
    for family in REGISTRY.collect():
        # Labelled metrics with no series yet have no samples: name them by type.
        names.update(family.name + s for s in suffixes.get(family.type, [""]))
    return names


def test_there_are_rules() -> None:
    assert RULES
    names = {r["alert"] for r in alert_rules()}
    assert {
        "SpeechBackendUnavailable",
        "SessionErrorBudgetBurnFast",
        "FinalLatencySLOBreach",
        "GatewayNearCapacity",
        "RedisErrors",
        "GatewayRestarted",
        "GatewayStuckDraining",
    } <= names


def test_promtool_accepts_the_rule_files() -> None:
    result = subprocess.run(
        [str(promtool), "check", "rules", *map(str, RULES)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_unit_tests_pass() -> None:
    result = subprocess.run(
        [str(promtool), "test", "rules", TESTS.name],
        capture_output=True,
        text=True,
        cwd=TESTS.parent,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("rule", alert_rules(), ids=lambda r: r["alert"])
def test_every_alert_has_for_severity_summary_and_a_runbook_section(rule: dict[str, Any]) -> None:
    assert rule.get("for"), "every alert waits before firing"
    assert rule["labels"]["severity"] in {"critical", "warning"}
    assert rule["annotations"]["summary"]
    url = rule["annotations"]["runbook_url"]
    page, _, anchor = url.partition("#")
    assert page == "docs/runbook.md"
    assert anchor in anchors(RUNBOOK.read_text()), f"{url}: no such section"


def test_every_alert_is_unit_tested_firing_and_quiet() -> None:
    tests = yaml.safe_load(TESTS.read_text())["tests"]
    firing, quiet = set(), set()
    for test in tests:
        for case in test.get("alert_rule_test", []):
            (firing if case["exp_alerts"] else quiet).add(case["alertname"])
    names = {r["alert"] for r in alert_rules()}
    assert names <= firing, f"never shown firing: {names - firing}"
    assert names <= quiet, f"never shown quiet: {names - quiet}"


def test_rules_use_only_metrics_the_code_exports() -> None:
    exported = exported_metric_names()
    assert "asr_streams_active" in exported  # the speech server's are registered too
    used = {
        name for expr in all_exprs() for name in re.findall(r"\b((?:gateway|asr)_[a-z0-9_]+)", expr)
    }
    assert used
    assert used <= exported, f"not exported: {used - exported}"
    assert asr_cpu.metrics.STREAMS_ACTIVE is not None
