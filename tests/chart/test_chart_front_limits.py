"""The chart's front limits are the renderer's: by default the protective PRODUCTION set
of deploy/local/front_limits.py, line for line; set through values, the same lines the
renderer writes for the same numbers (the trusted load balancers included), passing the
real `nginx -t`; the own-page origin default; the LoadBalancer keeping client addresses."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import helm_python as helm
import pytest

from deploy.local.front_limits import PRODUCTION, FrontLimits
from deploy.local.nginx_conf import nginx_argv, render_nginx_conf
from tests.chart.render import find, render, validate_values

LIMIT_WORDS = ("limit_", "_timeout ", "set_real_ip_from", "real_ip_header", "# No trusted")


def front_conf(values: dict[str, Any] | None = None) -> str:
    objects, _ = render(values)
    (config,) = find(objects, "ConfigMap", "-front")
    return str(config.obj["data"]["nginx.conf"])


def limit_lines(conf: str) -> list[str]:
    return [
        line.strip()
        for line in conf.splitlines()
        if any(word in line for word in LIMIT_WORDS)
        and not line.lstrip().startswith("# -")
        and "proxy_" not in line
    ]


def local_lines(limits: FrontLimits, tmp_path: Path) -> list[str]:
    return limit_lines(
        render_nginx_conf(18080, ["127.0.0.1:1"], tmp_path, limits=limits).read_text()
    )


def test_chart_defaults_are_the_production_limits(tmp_path: Path) -> None:
    chart = limit_lines(front_conf())
    assert "limit_conn per_address_connections 200;" in chart
    assert chart == local_lines(PRODUCTION, tmp_path)


def test_chart_values_set_the_same_lines_as_the_renderer(tmp_path: Path) -> None:
    values = {
        "front": {
            "gatewayHost": "127.0.0.1",
            "resolver": "127.0.0.1",
            "limits": {
                "requestsPerSecond": 5, "requestBurst": 40, "connectionsPerAddress": 30,
                "clientHeaderTimeoutSeconds": 4, "clientBodyTimeoutSeconds": 9,
                "sendTimeoutSeconds": 11, "keepaliveTimeoutSeconds": 0,
            },
            "realIp": {"from": ["10.0.0.0/8", "fd00::/8"], "header": "X-Real-IP"},
        }
    }  # fmt: skip
    conf = front_conf(values)
    limits = FrontLimits(
        requests_per_second=5, request_burst=40, connections_per_address=30,
        client_header_timeout_s=4, client_body_timeout_s=9, send_timeout_s=11,
        keepalive_timeout_s=0, real_ip_from=("10.0.0.0/8", "fd00::/8"),
        real_ip_header="X-Real-IP",
    )  # fmt: skip
    assert limit_lines(conf) == local_lines(limits, tmp_path / "local")
    # Debian's NGINX lacks `resolve` (tests/chart/test_chart_nginx.py): dropped for -t.
    path = tmp_path / "nginx.conf"
    path.write_text(conf.replace(" resolve ", " "))
    result = subprocess.run(
        [*nginx_argv(path, tmp_path), "-t"], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    ("front", "where"),
    [
        ({"limits": {"requestsPerSecond": 0}}, "/front/limits/requestsPerSecond"),
        ({"limits": {"connectionsPerAddress": 70000}}, "/front/limits/connectionsPerAddress"),
        ({"realIp": {"from": ["10.0.0.0/8; allow all"]}}, "/front/realIp/from/0"),
        ({"realIp": {"header": "X-Real-IP; deny all"}}, "/front/realIp/header"),
        ({"service": {"externalTrafficPolicy": "Nearest"}}, "/front/service/externalTrafficPolicy"),
    ],
)
def test_schema_refuses_limits_nginx_would_refuse_or_misread(
    front: dict[str, Any], where: str
) -> None:
    with pytest.raises(helm.HelmValuesError, match=re.escape(where)):
        validate_values({"front": front})


def test_origins_default_to_the_fleets_own_page() -> None:
    objects, _ = render()
    (config,) = find(objects, "ConfigMap", "-gateway")
    assert config.obj["data"]["SERVER__ALLOWED_ORIGINS"] == ""
    objects, _ = render({"gateway": {"config": {"allowedOrigins": ["https://speech.example"]}}})
    (config,) = find(objects, "ConfigMap", "-gateway")
    assert config.obj["data"]["SERVER__ALLOWED_ORIGINS"] == "https://speech.example"


def test_load_balancer_can_keep_client_addresses() -> None:
    service = {"type": "LoadBalancer", "externalTrafficPolicy": "Local"}
    objects, _ = render({"front": {"service": service}})
    (front,) = [s for s in find(objects, "Service") if s.name.endswith("-front")]
    assert front.obj["spec"]["externalTrafficPolicy"] == "Local"
    objects, _ = render()
    (front,) = [s for s in find(objects, "Service") if s.name.endswith("-front")]
    assert "externalTrafficPolicy" not in front.obj["spec"]
