"""The front's per-address limits as the renderer writes them: the protective defaults,
the loopback set of the local fleet and the tests, the trusted load balancer, and the
values NGINX would refuse, refused before NGINX sees them."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from deploy.local.front_limits import LOOPBACK, PRODUCTION, FrontLimits, real_ip_directives
from deploy.local.nginx_conf import compose_nginx_conf, nginx_argv, render_nginx_conf
from deploy.local.settings import FleetSettings
from deploy.local.supervisor_conf import fleet_programs


def nginx_t(conf: Path, run_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*nginx_argv(conf, run_dir), "-t"], capture_output=True, text=True, timeout=30
    )


def test_production_limits_are_written_and_answer_429(tmp_path: Path) -> None:
    text = render_nginx_conf(18080, ["127.0.0.1:8001"], tmp_path).read_text()
    for directive in (
        "limit_req_zone $limit_key zone=per_address_requests:10m rate=20r/s;",
        "limit_conn_zone $limit_key zone=per_address_connections:10m;",
        "limit_req zone=per_address_requests burst=200 nodelay;",
        "limit_conn per_address_connections 200;",
        "limit_req_status 429;",
        "limit_conn_status 429;",
        "error_page 429 /.rate_limited;",
        "client_header_timeout 10s;",
        "client_body_timeout 30s;",
        "send_timeout 30s;",
        "keepalive_timeout 30s;",
        "reset_timedout_connection on;",
    ):
        assert directive in text, directive
    directives = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    assert not [line for line in directives if "set_real_ip_from" in line]
    # The 429's body names the PROTOCOL.md code.
    assert re.search(r'return 429 "rate_limited: ', text)
    # The key of the limits is the client's address, but for NGINX's own health.
    assert re.search(
        r'map \$uri \$limit_key \{\s*/nginx/health "";\s*default\s+\$binary_remote_addr;', text
    )
    result = nginx_t(tmp_path / "nginx.conf", tmp_path)
    assert result.returncode == 0, result.stderr


def test_compose_runs_the_production_limits() -> None:
    text = compose_nginx_conf()
    assert "rate=20r/s;" in text
    assert "limit_conn per_address_connections 200;" in text


def test_loopback_limits_are_far_above_production_with_the_same_timeouts() -> None:
    assert LOOPBACK.requests_per_second >= 1000 * PRODUCTION.requests_per_second
    assert LOOPBACK.request_burst >= 10_000
    assert LOOPBACK.connections_per_address == 65535
    assert LOOPBACK.client_header_timeout_s == PRODUCTION.client_header_timeout_s
    assert LOOPBACK.real_ip_from == ()


def test_trusted_load_balancers_name_the_client(tmp_path: Path) -> None:
    limits = FrontLimits(real_ip_from=("10.0.0.0/8", "192.168.1.7", "2001:db8::/32"))
    text = render_nginx_conf(18080, ["127.0.0.1:8001"], tmp_path, limits=limits).read_text()
    assert (
        "set_real_ip_from 10.0.0.0/8; set_real_ip_from 192.168.1.7; "
        "set_real_ip_from 2001:db8::/32; real_ip_header X-Forwarded-For; real_ip_recursive on;"
    ) in text
    result = nginx_t(tmp_path / "nginx.conf", tmp_path)
    assert result.returncode == 0, result.stderr
    assert real_ip_directives((), "X-Forwarded-For").startswith("#")


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"requests_per_second": 0}, "requests_per_second"),
        ({"request_burst": 0}, "request_burst"),
        ({"connections_per_address": 65536}, "at most 65535"),
        ({"client_header_timeout_s": 0}, "client_header_timeout_s"),
        ({"send_timeout_s": 7200}, "send_timeout_s"),
        ({"keepalive_timeout_s": -1}, "keepalive_timeout_s"),
        ({"real_ip_from": ("10.0.0.0/8; deny all",)}, "does not appear to be"),
        ({"real_ip_header": "X-Real-IP; allow all"}, "not a header name"),
    ],
)
def test_values_nginx_would_refuse_or_misread_are_refused(
    changes: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        FrontLimits(**changes)  # type: ignore[arg-type]


def test_local_fleet_allows_its_own_page_unless_told_otherwise(tmp_path: Path) -> None:
    settings = FleetSettings.from_env({"FLEET_NGINX_PORT": "18080"})
    assert settings.front_limits == "loopback"
    gateways = [p for p in fleet_programs(settings, ["nginx"]) if p.name.startswith("gateway-")]
    assert gateways
    for program in gateways:
        assert program.env["SERVER__ALLOWED_ORIGINS"] == (
            "http://127.0.0.1:18080,http://localhost:18080"
        )
    mine = FleetSettings.from_env({"SERVER__ALLOWED_ORIGINS": "https://app.example"})
    assert mine.gateway_allowed_origins == "https://app.example"


def test_local_fleet_front_limits_are_chosen_by_name() -> None:
    assert FleetSettings.from_env({"FLEET_FRONT_LIMITS": "production"}).front_limits == (
        "production"
    )
    with pytest.raises(ValueError, match="FLEET_FRONT_LIMITS"):
        FleetSettings.from_env({"FLEET_FRONT_LIMITS": "none"})
