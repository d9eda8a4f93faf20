"""The chart's NGINX front runs the same configuration as the local fleet: the chart fills
the one template (helm/speech-fleet/files/nginx/nginx.conf.template) that
deploy/local/nginx_conf.py renders, and the result passes the real `nginx -t`.

Debian 12's NGINX is 1.22, which lacks `server ... resolve` (open-source NGINX has it from
1.27.3, the version the chart's image runs). So the config test drops that one token from
the chart's rendered upstream line, and nothing else. 1.22 also resolves host names when it
loads the configuration, and there is no cluster DNS here: the render for that test sets
the two in-cluster names (the gateways' headless Service and the DNS server) to 127.0.0.1
through their values (`front.gatewayHost`, `front.resolver`), the way a user would."""

from __future__ import annotations

import difflib
import re
import subprocess
from pathlib import Path

import pytest

from deploy.local.nginx_conf import SERVER_OPTIONS, TEMPLATE, nginx_argv, render_nginx_conf
from tests.chart.render import CHART, NAMESPACE, find, render


def chart_conf(values: dict[str, object] | None = None) -> str:
    objects, _ = render(values)
    (config,) = find(objects, "ConfigMap", "-front")
    return str(config.obj["data"]["nginx.conf"])


@pytest.fixture(scope="module")
def default_conf() -> str:
    return chart_conf()


@pytest.fixture(scope="module")
def loopback_conf() -> str:
    return chart_conf({"front": {"gatewayHost": "127.0.0.1", "resolver": "127.0.0.1"}})


def test_there_is_one_template_and_it_is_inside_the_chart() -> None:
    assert TEMPLATE == CHART / "files" / "nginx" / "nginx.conf.template"
    assert not (CHART.parents[1] / "nginx").exists()


def _template_regex() -> re.Pattern[str]:
    # The template with each placeholder as a wildcard: a conf matches when it is the
    # template with its placeholders filled and nothing else changed.
    # Every placeholder fills part of one line, but the upstream servers (whole lines).
    text = TEMPLATE.read_text()
    names = re.findall(r"@\{(\w+)\}", text)
    parts = re.split(r"@\{\w+\}", text)
    pattern = re.escape(parts[0])
    for name, part in zip(names, parts[1:], strict=True):
        wildcard = (
            r"((?:        server [^\n]+\n?)+?)" if name == "upstream_servers" else r"([^\n]*)"
        )
        pattern += wildcard + re.escape(part)
    return re.compile(pattern)


def test_chart_conf_is_the_template_filled_in(default_conf: str, tmp_path: Path) -> None:
    regex = _template_regex()
    assert regex.fullmatch(default_conf)
    # ...as is the local fleet's: one source for both.
    local = render_nginx_conf(18080, ["127.0.0.1:8001"], tmp_path).read_text()
    assert regex.fullmatch(local)


def test_chart_upstream_resolves_the_headless_gateway_service(default_conf: str) -> None:
    host = f"rel-speech-fleet-gateway-headless.{NAMESPACE}.svc.cluster.local"
    upstream = re.search(r"upstream gateways \{(.*?)\n    \}", default_conf, re.S)
    assert upstream is not None
    lines = [line.strip() for line in upstream.group(1).splitlines()]
    servers = [line for line in lines if line.startswith("server ")]
    assert servers == [f"server {host}:8000 resolve {SERVER_OPTIONS};"]
    assert "hash $session_key consistent;" in upstream.group(1)
    assert "zone gateways" in upstream.group(1)
    resolver = r"^\s*resolver kube-dns\.kube-system\.svc\.cluster\.local valid=5s"
    assert re.search(resolver, default_conf, re.M)
    assert "listen 8080;" in default_conf


def test_chart_conf_passes_nginx_t_with_only_resolve_removed(
    loopback_conf: str, tmp_path: Path
) -> None:
    assert loopback_conf.count(" resolve ") == 1
    tested = loopback_conf.replace(" resolve ", " ")
    changed = [
        line
        for line in difflib.unified_diff(loopback_conf.splitlines(), tested.splitlines(), n=0)
        if line.startswith(("+", "-")) and not line.startswith(("+++", "---"))
    ]
    assert changed == [
        f"-        server 127.0.0.1:8000 resolve {SERVER_OPTIONS};",
        f"+        server 127.0.0.1:8000 {SERVER_OPTIONS};",
    ]
    conf = tmp_path / "nginx.conf"
    conf.write_text(tested)
    # Relative paths (pid, temp) land in the prefix, as in the pod's emptyDir.
    result = subprocess.run(
        [*nginx_argv(conf, tmp_path), "-t"], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stderr
    assert "test is successful" in result.stderr


def test_nginx_t_fails_on_a_broken_conf(loopback_conf: str, tmp_path: Path) -> None:
    # The same check catches a real mistake, so its pass above means something.
    conf = tmp_path / "nginx.conf"
    conf.write_text(loopback_conf.replace(" resolve ", " ").replace("hash $session_key", "hsh $x"))
    result = subprocess.run(
        [*nginx_argv(conf, tmp_path), "-t"], capture_output=True, text=True, timeout=30
    )
    assert result.returncode != 0
