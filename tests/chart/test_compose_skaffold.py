"""docker-compose.yml against the Compose Specification's JSON schema, every file it mounts
present, the same dashboards, rules and NGINX configuration as the chart; skaffold.yaml
against Skaffold's v4 schema, building both images and deploying the chart with values
the chart has. Both schemas are vendored (tests/chart/schemas/SOURCES.md)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from deploy.local.nginx_conf import COMPOSE_CONF, compose_nginx_conf
from tests.chart.render import CHART, REPO, render

SCHEMAS = Path(__file__).parent / "schemas"


def load_schema(name: str) -> jsonschema.Draft7Validator:
    # Both declare draft-07 (the Compose one spells its URI without the trailing "#").
    return jsonschema.Draft7Validator(json.loads((SCHEMAS / name).read_text()))


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    return loaded


@pytest.fixture(scope="module")
def skaffold() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((REPO / "skaffold.yaml").read_text())
    return loaded


def test_compose_file_fits_the_compose_specification(compose: dict[str, Any]) -> None:
    errors = [e.message for e in load_schema("compose-spec.json").iter_errors(compose)]
    assert errors == []


def test_compose_schema_catches_a_mistake(compose: dict[str, Any]) -> None:
    bad = json.loads(json.dumps(compose))
    bad["services"]["redis"]["restart_policy"] = "always"
    assert list(load_schema("compose-spec.json").iter_errors(bad))


def _bind_sources(compose: dict[str, Any]) -> list[str]:
    sources = []
    for service in compose["services"].values():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0] if isinstance(volume, str) else volume.get("source")
            if source and source.startswith("."):
                sources.append(source)
        build = service.get("build")
        if build:
            sources.append(str(Path(build["context"]) / build["dockerfile"]))
    return sources


def test_every_file_compose_mounts_or_builds_exists(compose: dict[str, Any]) -> None:
    sources = _bind_sources(compose)
    assert len(sources) >= 6
    for source in sources:
        assert (REPO / source).exists(), source


def test_compose_has_the_fleet_and_a_gpu_profile(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert {"redis", "asr-cpu", "gateway-1", "gateway-2", "nginx", "prometheus", "grafana"} <= set(
        services
    )
    assert services["riva-nim"]["profiles"] == ["gpu"]
    devices = services["riva-nim"]["deploy"]["resources"]["reservations"]["devices"]
    assert devices[0]["capabilities"] == ["gpu"]
    assert services["riva-nim"]["environment"]["NGC_API_KEY"] == "${NGC_API_KEY:-}"
    assert any("nim-cache:" in v for v in services["riva-nim"]["volumes"])
    redis = services["redis"]["command"]
    assert redis[redis.index("--appendonly") + 1] == "yes"
    assert redis[redis.index("--appendfsync") + 1] == "everysec"
    for name in ("gateway-1", "gateway-2"):
        gateway = services[name]
        assert gateway["read_only"] is True
        grace = int(gateway["stop_grace_period"].rstrip("s"))
        assert grace > float(gateway["environment"]["LIMITS__DRAIN_TIMEOUT_S"])
        assert "ports" not in gateway, "only NGINX is published"


def test_compose_prometheus_scrapes_each_gateways_admin_port(compose: dict[str, Any]) -> None:
    prometheus = yaml.safe_load((REPO / "deploy/compose/prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in prometheus["scrape_configs"]}
    targets = jobs["gateway"]["static_configs"][0]["targets"]
    expected = []
    for name in ("gateway-1", "gateway-2"):
        env = compose["services"][name]["environment"]
        assert env["ADMIN__PORT"] != "8000", "the admin listener has its own port"
        expected.append(f"{name}:{env['ADMIN__PORT']}")
    assert targets == expected


def test_compose_uses_the_charts_dashboards_rules_and_nginx(compose: dict[str, Any]) -> None:
    files = "./helm/speech-fleet/files:/etc/speech-fleet/files:ro"
    assert files in compose["services"]["prometheus"]["volumes"]
    assert files in compose["services"]["grafana"]["volumes"]
    prometheus = yaml.safe_load((REPO / "deploy/compose/prometheus.yml").read_text())
    assert prometheus["rule_files"] == ["/etc/speech-fleet/files/rules/*.yaml"]
    provider = yaml.safe_load(
        (REPO / "deploy/compose/grafana/provisioning/dashboards/speech-fleet.yaml").read_text()
    )
    assert provider["providers"][0]["options"]["path"] == "/etc/speech-fleet/files/dashboards"
    # The NGINX file is the template filled in, and up to date with it.
    assert COMPOSE_CONF.read_text() == compose_nginx_conf()


def test_skaffold_fits_the_v4_schema(skaffold: dict[str, Any]) -> None:
    assert skaffold["apiVersion"].startswith("skaffold/v4")
    errors = [e.message for e in load_schema("skaffold-v4beta13.json").iter_errors(skaffold)]
    assert errors == []


def test_skaffold_schema_catches_a_mistake(skaffold: dict[str, Any]) -> None:
    bad = json.loads(json.dumps(skaffold))
    bad["deploy"]["helm"]["releases"][0]["chart_path"] = "helm/speech-fleet"
    assert list(load_schema("skaffold-v4beta13.json").iter_errors(bad))


def _releases(skaffold: dict[str, Any]) -> list[dict[str, Any]]:
    releases = list(skaffold["deploy"]["helm"]["releases"])
    for profile in skaffold["profiles"]:
        releases += profile.get("deploy", {}).get("helm", {}).get("releases", [])
    return releases


def test_skaffold_builds_both_images_and_deploys_the_chart(skaffold: dict[str, Any]) -> None:
    artifacts = skaffold["build"]["artifacts"]
    dockerfiles = sorted(a["docker"]["dockerfile"] for a in artifacts)
    assert dockerfiles == ["deploy/docker/asr-cpu.Dockerfile", "deploy/docker/gateway.Dockerfile"]
    assert {p["name"] for p in skaffold["profiles"]} == {"cpu", "gpu"}
    images = {a["image"] for a in artifacts}
    for release in _releases(skaffold):
        assert (REPO / release["chartPath"]) == CHART
        for template in release.get("setValueTemplates", {}).values():
            image = re.search(r"IMAGE_(?:REPO|TAG)_(\w+)\}", template)
            assert image is not None
            assert image.group(1) in {re.sub(r"\W", "_", i) for i in images}


@pytest.mark.parametrize("profile", ["default", "cpu", "gpu"])
def test_skaffold_values_render_with_the_chart(skaffold: dict[str, Any], profile: str) -> None:
    # Every value Skaffold sets exists in the chart (the schema refuses unknown keys) and
    # the chart renders with them.
    if profile == "default":
        release = skaffold["deploy"]["helm"]["releases"][0]
    else:
        spec = next(p for p in skaffold["profiles"] if p["name"] == profile)
        release = spec["deploy"]["helm"]["releases"][0]
    values: dict[str, Any] = {}
    settings = {**release.get("setValues", {}), **release.get("setValueTemplates", {})}
    for dotted, value in settings.items():
        node = values
        *parents, leaf = dotted.split(".")
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = "example" if "{{" in str(value) else value
    objects, _ = render(values, release=release["name"])
    services = {o.name for o in objects if o.kind == "Service"}
    # `skaffold dev` forwards the front's Service: it must be the one the chart names.
    for forward in skaffold["portForward"]:
        assert forward["resourceName"] in services
