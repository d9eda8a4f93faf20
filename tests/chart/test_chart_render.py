"""Every `ci/*-values.yaml` scenario, rendered once by a real Helm engine: helm lint is
clean, every object validates against the Kubernetes 1.32 schemas (strict: unknown fields
are errors) or, for CRD kinds, against the CRD's published schema, and the policies the
fleet relies on hold (resources, probes, restricted security contexts, stable selectors, a
grace period longer than the drain, nothing exposed but the front)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import helm_python as helm
import jsonschema
import kubernetes_validate
import pytest

from tests.chart.render import CHART, SCENARIOS, Rendered, find, render, scenario_values

SCHEMAS = Path(__file__).parent / "schemas"
CRD_SCHEMAS = {
    ("monitoring.coreos.com/v1", "ServiceMonitor"): "monitoring.coreos.com_servicemonitor_v1",
    ("monitoring.coreos.com/v1", "PodMonitor"): "monitoring.coreos.com_podmonitor_v1",
    ("monitoring.coreos.com/v1", "PrometheusRule"): "monitoring.coreos.com_prometheusrule_v1",
    ("keda.sh/v1alpha1", "ScaledObject"): "keda.sh_scaledobject_v1alpha1",
    ("gateway.networking.k8s.io/v1", "HTTPRoute"): "gateway.networking.k8s.io_httproute_v1",
}
WORKLOADS = {"Deployment", "StatefulSet"}
STABLE_SELECTOR_KEYS = {
    "app.kubernetes.io/name",
    "app.kubernetes.io/instance",
    "app.kubernetes.io/component",
}


@pytest.fixture(scope="module")
def renders() -> dict[str, list[Rendered]]:
    # One Helm render per scenario, shared by every test of this module.
    return {path.name: render(scenario_values(path))[0] for path in SCENARIOS}


def scenario_ids() -> list[str]:
    return [path.name for path in SCENARIOS]


def test_the_issues_scenarios_are_all_there() -> None:
    assert set(scenario_ids()) == {
        "default-values.yaml",
        "gpu-nim-values.yaml",
        "external-riva-tls-values.yaml",
        "keda-values.yaml",
        "gateway-api-values.yaml",
        "everything-values.yaml",
    }


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda p: p.name)
def test_helm_lint_is_clean(scenario: Path) -> None:
    report = helm.lint(
        str(CHART), scenario_values(scenario), strict=True, namespace="speech",
        kube_version="v1.32.0",
    )  # fmt: skip
    assert report["errors"] == []
    # Severity 2 is a warning, 3 an error; 1 (info: "icon is recommended") is allowed.
    assert [m for m in report["messages"] if m["severity"] >= 2] == []


def test_helm_lint_reports_a_broken_chart(tmp_path: Path) -> None:
    # The same call finds real problems: a template that does not parse.
    broken = tmp_path / "speech-fleet"
    (broken / "templates").mkdir(parents=True)
    (broken / "Chart.yaml").write_text((CHART / "Chart.yaml").read_text())
    (broken / "templates" / "bad.yaml").write_text("{{ if }}\n")
    report = helm.lint(str(broken), {}, strict=True)
    assert any(m["severity"] == 3 for m in report["messages"]) or report["errors"]


@pytest.mark.parametrize("scenario", scenario_ids())
def test_every_object_validates_against_its_schema(
    renders: dict[str, list[Rendered]], scenario: str
) -> None:
    objects = renders[scenario]
    assert objects
    for rendered in objects:
        obj = rendered.obj
        crd = CRD_SCHEMAS.get((obj["apiVersion"], obj["kind"]))
        if crd is not None:
            schema = json.loads((SCHEMAS / f"{crd}.json").read_text())
            validator = jsonschema.validators.validator_for(schema)(schema)
            errors = [e.message for e in validator.iter_errors(obj)]
            assert errors == [], f"{rendered.template}: {errors}"
        else:
            kubernetes_validate.validate(obj, "1.32.0", strict=True)


def test_strict_validation_rejects_an_unknown_field(renders: dict[str, list[Rendered]]) -> None:
    deployment = find(renders["default-values.yaml"], "Deployment", "-gateway")[0].obj
    bad = json.loads(json.dumps(deployment))
    bad["spec"]["template"]["spec"]["containers"][0]["livenesProbe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad, "1.32.0", strict=True)


@pytest.mark.parametrize("scenario", scenario_ids())
def test_every_crd_kind_the_scenario_asks_for_is_rendered(
    renders: dict[str, list[Rendered]], scenario: str
) -> None:
    values = scenario_values(CHART / "ci" / scenario)
    kinds = {o.kind for o in renders[scenario]}
    metrics = values.get("metrics", {})
    expected = {
        "ScaledObject": values.get("autoscaling", {}).get("mode") == "keda",
        "HorizontalPodAutoscaler": values.get("autoscaling", {}).get("mode") == "hpa",
        "HTTPRoute": values.get("httpRoute", {}).get("enabled", False),
        "ServiceMonitor": metrics.get("serviceMonitor", {}).get("enabled", False),
        "PodMonitor": metrics.get("podMonitor", {}).get("enabled", False),
        # The bundled Redis, the NIM or the CPU speech server.
        "StatefulSet": values.get("redis", {}).get("mode", "bundled") == "bundled"
        or values.get("riva", {}).get("mode") != "external",
        "Role": values.get("riva", {}).get("discovery", {}).get("enabled", False),
    }
    for kind, wanted in expected.items():
        assert (kind in kinds) == wanted, kind


def _pod_specs(objects: list[Rendered]) -> list[tuple[str, dict[str, Any]]]:
    specs = [(o.name, o.obj["spec"]["template"]["spec"]) for o in objects if o.kind in WORKLOADS]
    specs += [(o.name, o.obj["spec"]) for o in objects if o.kind == "Pod"]
    return specs


@pytest.mark.parametrize("scenario", scenario_ids())
def test_every_container_has_resources_probes_and_a_restricted_context(
    renders: dict[str, list[Rendered]], scenario: str
) -> None:
    for name, spec in _pod_specs(renders[scenario]):
        pod_context = spec["securityContext"]
        assert pod_context["runAsNonRoot"] is True, name
        assert pod_context["seccompProfile"] == {"type": "RuntimeDefault"}, name
        assert spec["automountServiceAccountToken"] in (True, False), name
        assert spec["enableServiceLinks"] is False, name
        for container in spec["containers"]:
            where = f"{name}/{container['name']}"
            resources = container["resources"]
            assert resources["requests"]["cpu"], where
            assert resources["requests"]["memory"], where
            assert resources["limits"]["memory"], where
            context = container["securityContext"]
            assert context["allowPrivilegeEscalation"] is False, where
            assert context["runAsNonRoot"] is True, where
            assert context["capabilities"] == {"drop": ["ALL"]}, where
            assert context["seccompProfile"] == {"type": "RuntimeDefault"}, where
            assert "privileged" not in context, where
            if "riva-nim" not in name:
                # Only the NIM (Triton writes outside its cache) keeps a writable root.
                assert context["readOnlyRootFilesystem"] is True, where
            if spec.get("restartPolicy") != "Never":  # the test hook runs once
                assert "livenessProbe" in container, where
                assert "readinessProbe" in container, where


@pytest.mark.parametrize("scenario", scenario_ids())
def test_selectors_use_only_stable_labels(
    renders: dict[str, list[Rendered]], scenario: str
) -> None:
    for rendered in renders[scenario]:
        spec = rendered.obj.get("spec", {})
        selectors = []
        if rendered.kind in WORKLOADS | {"PodDisruptionBudget"}:
            selectors.append(spec["selector"]["matchLabels"])
        if rendered.kind == "Service":
            selectors.append(spec["selector"])
        if rendered.kind == "NetworkPolicy":
            selectors.append(spec["podSelector"]["matchLabels"])
        for selector in selectors:
            assert set(selector) == STABLE_SELECTOR_KEYS, rendered.template
            assert selector["app.kubernetes.io/instance"] == "rel"
        if rendered.kind in WORKLOADS:
            labels = spec["template"]["metadata"]["labels"]
            assert set(spec["selector"]["matchLabels"].items()) <= set(labels.items())


@pytest.mark.parametrize("scenario", scenario_ids())
def test_gateway_drain_fits_in_the_grace_period(
    renders: dict[str, list[Rendered]], scenario: str
) -> None:
    objects = renders[scenario]
    (deployment,) = find(objects, "Deployment", "-gateway")
    (config,) = find(objects, "ConfigMap", "-gateway")
    spec = deployment.obj["spec"]["template"]["spec"]
    (container,) = spec["containers"]
    drain = float(config.obj["data"]["LIMITS__DRAIN_TIMEOUT_S"])
    gunicorn_grace = int(config.obj["data"]["GATEWAY_GRACEFUL_TIMEOUT_S"])
    pre_stop = container["lifecycle"]["preStop"]["sleep"]["seconds"]
    # gunicorn must not kill a draining worker, and the kubelet must not kill gunicorn.
    assert gunicorn_grace > drain
    assert spec["terminationGracePeriodSeconds"] > pre_stop + gunicorn_grace
    # The preStop wait outlasts NGINX's DNS cache of the headless Service.
    front = find(objects, "ConfigMap", "-front")
    if front:
        valid = re.search(r"resolver \S+ valid=(\d+)s", front[0].obj["data"]["nginx.conf"])
        assert valid is not None
        assert pre_stop > int(valid.group(1))
    # The drain is the workers' own SIGTERM handling: no HTTP hook that reaches one worker.
    assert "httpGet" not in container["lifecycle"]["preStop"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/api/v1/health/live"
    assert container["readinessProbe"]["httpGet"]["path"] == "/api/v1/health/ready"
    assert config.obj["data"]["PROMETHEUS_MULTIPROC_DIR"] == "/tmp/prometheus-multiproc"
    mounts = {m["mountPath"] for m in container["volumeMounts"]}
    assert {"/tmp", "/tmp/prometheus-multiproc"} <= mounts
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert "emptyDir" in volumes["prometheus-multiproc"]


@pytest.mark.parametrize("scenario", scenario_ids())
def test_nothing_but_the_front_is_exposed(
    renders: dict[str, list[Rendered]], scenario: str
) -> None:
    objects = renders[scenario]
    values = scenario_values(CHART / "ci" / scenario)
    for service in find(objects, "Service"):
        if not service.name.endswith("-front"):
            assert service.obj["spec"].get("type", "ClusterIP") == "ClusterIP", service.name
    assert find(objects, "Ingress") == []
    for route in find(objects, "HTTPRoute"):
        for rule in route.obj["spec"]["rules"]:
            for match in rule["matches"]:
                assert not match["path"]["value"].startswith("/admin")
            for ref in rule["backendRefs"]:
                allowed = "-front" if values["httpRoute"]["backend"] == "front" else "-gateway"
                assert ref["name"].endswith(allowed)
    # Only the front's pods (and peers the values list) reach the gateway port.
    (policy,) = find(objects, "NetworkPolicy", "-gateway")
    peers = policy.obj["spec"]["ingress"][0]["from"]
    assert peers[0]["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "front"
    extra = values.get("networkPolicy", {}).get("gatewayExtraFrom", [])
    assert peers[1:] == extra
    # NGINX answers /admin itself (404): the drain endpoint is never proxied.
    for config in find(objects, "ConfigMap", "-front"):
        assert re.search(r"location /admin/ \{\s*return 404;", config.obj["data"]["nginx.conf"])


@pytest.mark.parametrize("scenario", scenario_ids())
def test_settings_change_rolls_the_gateways(
    renders: dict[str, list[Rendered]], scenario: str
) -> None:
    (deployment,) = find(renders[scenario], "Deployment", "-gateway")
    annotations = deployment.obj["spec"]["template"]["metadata"]["annotations"]
    assert re.fullmatch(r"[0-9a-f]{64}", annotations["checksum/config"])
    changed, _ = render(
        {
            **scenario_values(CHART / "ci" / scenario),
            "gateway": {"config": {"drainTimeoutSeconds": 7}},
        }
    )
    (again,) = find(changed, "Deployment", "-gateway")
    other = again.obj["spec"]["template"]["metadata"]["annotations"]["checksum/config"]
    assert other != annotations["checksum/config"]


def test_crd_schemas_reject_a_misspelt_field(renders: dict[str, list[Rendered]]) -> None:
    (scaled,) = find(renders["keda-values.yaml"], "ScaledObject")
    bad = json.loads(json.dumps(scaled.obj))
    bad["spec"]["minReplicas"] = bad["spec"].pop("minReplicaCount")
    schema = json.loads((SCHEMAS / "keda.sh_scaledobject_v1alpha1.json").read_text())
    errors = list(jsonschema.validators.validator_for(schema)(schema).iter_errors(bad))
    assert any("minReplicas" in e.message for e in errors)


def test_helm_test_hook_streams_the_image_clip_through_the_front(
    renders: dict[str, list[Rendered]],
) -> None:
    objects = renders["default-values.yaml"]
    (pod,) = find(objects, "Pod")
    assert pod.obj["metadata"]["annotations"]["helm.sh/hook"] == "test"
    (container,) = pod.obj["spec"]["containers"]
    (gateway,) = find(objects, "Deployment", "-gateway")
    assert container["image"] == gateway.obj["spec"]["template"]["spec"]["containers"][0]["image"]
    script = " ".join(container["args"])
    clip = "/opt/speech-fleet/clips/goforward.raw"
    assert f"speech-client transcribe {clip} --json" in script
    (front,) = find(objects, "Service", "-front")
    assert f'--url "ws://{front.name}:80"' in script
    assert "grep -q '\"is_final\": true'" in script
    dockerfile = (CHART.parents[1] / "deploy" / "docker" / "gateway.Dockerfile").read_text()
    assert f"goforward.raw {clip}" in dockerfile


def test_notes_name_the_url_and_the_test() -> None:
    _, manifests = render({})
    notes = manifests["speech-fleet/templates/NOTES.txt"]
    assert "ws://rel-speech-fleet-front.speech.svc:80/api/v1/transcribe/<session_id>" in notes
    assert "helm test rel -n speech" in notes


@pytest.mark.parametrize(("scenario", "component"), [
    ("default-values.yaml", "asr-cpu"), ("gpu-nim-values.yaml", "riva-nim"),
])  # fmt: skip
def test_gateways_get_one_riva_target_per_pod(
    renders: dict[str, list[Rendered]], scenario: str, component: str
) -> None:
    # One gRPC channel per target: each pod must be its own target for per-pod balancing.
    objects = renders[scenario]
    (statefulset,) = find(objects, "StatefulSet", f"-{component}")
    (service,) = find(objects, "Service", f"-{component}")
    assert service.obj["spec"]["clusterIP"] == "None"
    assert statefulset.obj["spec"]["serviceName"] == service.name
    (config,) = find(objects, "ConfigMap", "-gateway")
    replicas = statefulset.obj["spec"]["replicas"]
    assert config.obj["data"]["RIVA__TARGETS"].split(",") == [
        f"{statefulset.name}-{i}.{service.name}.speech.svc.cluster.local:50051"
        for i in range(replicas)
    ]


def test_riva_nim_runs_on_gpu_nodes_with_a_long_first_start(
    renders: dict[str, list[Rendered]],
) -> None:
    (nim,) = find(renders["gpu-nim-values.yaml"], "StatefulSet", "-riva-nim")
    spec = nim.obj["spec"]["template"]["spec"]
    (container,) = spec["containers"]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert spec["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in spec[
        "tolerations"
    ]
    assert spec["imagePullSecrets"] == [{"name": "ngc-pull"}]
    key = next(e for e in container["env"] if e["name"] == "NGC_API_KEY")
    assert key["valueFrom"]["secretKeyRef"]["name"] == "ngc-api-key"
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"grpc": 50051, "http": 9000}
    startup = container["startupProbe"]
    assert startup["httpGet"]["path"] == "/v1/health/ready"
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 45 * 60
    claims = nim.obj["spec"]["volumeClaimTemplates"]
    assert claims[0]["metadata"]["name"] == "cache"
    assert {"name": "cache", "mountPath": "/opt/nim/.cache"} in container["volumeMounts"]


def test_external_riva_gets_tls_a_ca_and_the_api_key_from_the_secret(
    renders: dict[str, list[Rendered]],
) -> None:
    objects = renders["external-riva-tls-values.yaml"]
    (config,) = find(objects, "ConfigMap", "-gateway")
    data = config.obj["data"]
    assert data["RIVA__TARGETS"] == "grpc.nvcf.nvidia.com:443"
    assert data["RIVA__USE_TLS"] == "true"
    assert data["RIVA__SSL_ROOT_CERT"] == "/etc/speech-fleet/riva-ca/ca.crt"
    assert data["RIVA__FUNCTION_ID"] == "1598d209-5e27-4d3c-8079-4751568b1081"
    assert "RIVA__API_KEY" not in data, "the key is a secret, not configuration"
    (secret,) = find(objects, "Secret", "-gateway")
    assert secret.obj["stringData"]["riva-api-key"].startswith("nvapi-")
    (gateway,) = find(objects, "Deployment", "-gateway")
    spec = gateway.obj["spec"]["template"]["spec"]
    env = {e["name"]: e for e in spec["containers"][0]["env"]}
    assert env["RIVA__API_KEY"]["valueFrom"]["secretKeyRef"]["key"] == "riva-api-key"
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert volumes["riva-ca"]["secret"]["secretName"] == "riva-ca"
    assert find(objects, "StatefulSet", "-riva-nim") == []
    assert find(objects, "StatefulSet", "-asr-cpu") == []


def test_external_redis_modes_reach_the_gateways(renders: dict[str, list[Rendered]]) -> None:
    """The client modes of issue 16 as the gateway reads them (config.py RedisSettings)."""
    (sentinel,) = find(renders["external-riva-tls-values.yaml"], "ConfigMap", "-gateway")
    data = sentinel.obj["data"]
    assert data["REDIS__MODE"] == "sentinel"
    assert data["REDIS__SENTINELS"].split(",") == [
        "sentinel-0.data:26379", "sentinel-1.data:26379", "sentinel-2.data:26379"
    ]  # fmt: skip
    assert data["REDIS__SENTINEL_SERVICE"] == "speech"
    assert data["REDIS__TLS"] == "true"
    assert "REDIS__WAIT_REPLICAS" not in data, "the mode's default: WAIT for one replica"
    objects = renders["everything-values.yaml"]
    (cluster,) = find(objects, "ConfigMap", "-gateway")
    assert cluster.obj["data"]["REDIS__MODE"] == "cluster"
    assert len(cluster.obj["data"]["REDIS__CLUSTER_NODES"].split(",")) == 3
    (gateway,) = find(objects, "Deployment", "-gateway")
    env = {e["name"]: e for e in gateway.obj["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["REDIS__PASSWORD"]["valueFrom"]["secretKeyRef"] == {
        "name": "speech-fleet-secrets", "key": "redis-password"
    }  # fmt: skip
    (default,) = find(renders["default-values.yaml"], "ConfigMap", "-gateway")
    assert "REDIS__MODE" not in default.obj["data"], "the bundled Redis is one server"


def test_bundled_redis_keeps_an_append_only_file_on_a_volume(
    renders: dict[str, list[Rendered]],
) -> None:
    objects = renders["default-values.yaml"]
    (config,) = find(objects, "ConfigMap", "-redis")
    conf = config.obj["data"]["redis.conf"].splitlines()
    for line in (
        "appendonly yes",
        "appendfsync everysec",
        "dir /data",
        "maxmemory-policy noeviction",
    ):
        assert line in conf
    (redis,) = find(objects, "StatefulSet", "-redis")
    assert redis.obj["spec"]["volumeClaimTemplates"][0]["metadata"]["name"] == "data"
    assert find(renders["gpu-nim-values.yaml"], "StatefulSet", "-redis") == []


def test_keda_scales_on_the_sessions_metric_named_in_values(
    renders: dict[str, list[Rendered]],
) -> None:
    (scaled,) = find(renders["keda-values.yaml"], "ScaledObject")
    spec = scaled.obj["spec"]
    (trigger,) = spec["triggers"]
    assert trigger["type"] == "prometheus"
    assert trigger["metricType"] == "AverageValue"
    assert trigger["metadata"]["threshold"] == "600"
    assert trigger["metadata"]["query"].startswith("sum(gateway_sessions_active{")
    window = spec["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]["scaleDown"]
    assert 0 < window["stabilizationWindowSeconds"] < 3600
    # The observability work may rename the metric: a value, not a constant.
    renamed, _ = render({"autoscaling": {"mode": "keda", "keda": {"sessionsMetric": "x_active"}}})
    (scaled,) = find(renamed, "ScaledObject")
    assert scaled.obj["spec"]["triggers"][0]["metadata"]["query"].startswith("sum(x_active{")
    custom, _ = render({"autoscaling": {"mode": "keda", "keda": {"query": "sum(y)"}}})
    (scaled,) = find(custom, "ScaledObject")
    assert scaled.obj["spec"]["triggers"][0]["metadata"]["query"] == "sum(y)"
    # With an autoscaler, the Deployment leaves the replica count to it.
    (gateway,) = find(renders["keda-values.yaml"], "Deployment", "-gateway")
    assert "replicas" not in gateway.obj["spec"]
