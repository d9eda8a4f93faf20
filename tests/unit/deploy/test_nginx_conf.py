"""The rendered NGINX configuration: valid for the real nginx binary, hashing on exactly
PROTOCOL.md's session ids."""

from __future__ import annotations

import functools
import re
import string
import subprocess
import tempfile
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from deploy.local.front_limits import PRODUCTION
from deploy.local.nginx_conf import TEMPLATE, container_nginx_conf, nginx_argv, render_nginx_conf

ID_ALPHABET = string.ascii_letters + string.digits + "_-"


@pytest.fixture
def conf(tmp_path: Path) -> Path:
    return render_nginx_conf(18080, ["127.0.0.1:8001", "127.0.0.1:8002"], tmp_path)


def session_regex(conf_text: str) -> re.Pattern[str]:
    """The regex of the `map $uri $session_key` entry, as NGINX reads it (PCRE; this one
    uses nothing Python's re reads differently)."""
    block = re.search(r"map \$uri \$session_key \{(.*?)\}\n", conf_text, re.S)
    assert block is not None
    entry = re.search(r'"~(.+)"\s+\$1;', block.group(1))
    assert entry is not None
    return re.compile(entry.group(1))


def test_rendered_conf_passes_nginx_config_test(conf: Path, tmp_path: Path) -> None:
    result = subprocess.run(
        [*nginx_argv(conf, tmp_path), "-t"], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stderr
    assert "test is successful" in result.stderr


def test_upstream_hashes_on_session_key_across_every_gateway(conf: Path) -> None:
    text = conf.read_text()
    upstream = re.search(r"upstream gateways \{(.*?)\}", text, re.S)
    assert upstream is not None
    lines = [line.strip() for line in upstream.group(1).splitlines() if line.strip()]
    assert "hash $session_key consistent;" in lines
    servers = [line for line in lines if line.startswith("server ")]
    assert servers == [
        "server 127.0.0.1:8001 max_fails=1 fail_timeout=2s;",
        "server 127.0.0.1:8002 max_fails=1 fail_timeout=2s;",
    ]
    assert "proxy_pass http://gateways;" in text


def test_conf_keeps_sockets_open_for_an_hour_and_unbuffered(conf: Path) -> None:
    text = conf.read_text()
    for directive in (
        "proxy_read_timeout 3600s;",
        "proxy_send_timeout 3600s;",
        "proxy_buffering off;",
        "proxy_http_version 1.1;",
        "proxy_set_header Upgrade $http_upgrade;",
        "proxy_set_header Connection $connection_upgrade;",
        "proxy_next_upstream error timeout http_503;",
        "daemon off;",
        "listen 127.0.0.1:18080;",
    ):
        assert directive in text


def test_every_path_is_inside_the_run_dir(conf: Path, tmp_path: Path) -> None:
    text = conf.read_text()
    for directive in ("pid", "client_body_temp_path", "proxy_temp_path", "access_log"):
        match = re.search(rf"^\s*{directive} (\S+)", text, re.M)
        assert match is not None, directive
        assert match.group(1).startswith(str(tmp_path.resolve())), directive
    directives = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
    assert "/var/" not in directives
    assert "/run/" not in directives
    assert "@{" not in text


def test_template_placeholders_are_all_filled() -> None:
    placeholders = set(re.findall(r"@\{(\w+)\}", TEMPLATE.read_text()))
    assert placeholders == {
        "user_directive", "pid_path", "error_log", "temp_dir",
        "access_log", "upstream_servers", "listen", "resolver_directive",
        *PRODUCTION.placeholders(),
    }  # fmt: skip


@pytest.mark.parametrize("bad", ["", "127.0.0.1", "host:port", "a b:80", "127.0.0.1:80;"])
def test_malformed_upstreams_are_refused(tmp_path: Path, bad: str) -> None:
    with pytest.raises(ValueError, match="host:port"):
        render_nginx_conf(18080, [bad], tmp_path)


@given(st.text(alphabet=ID_ALPHABET, min_size=8, max_size=64))
def test_session_regex_matches_every_protocol_id(session_id: str) -> None:
    regex = session_regex(_rendered_text())
    match = regex.fullmatch(f"/api/v1/transcribe/{session_id}")
    assert match is not None
    assert match.group(1) == session_id


@given(
    st.one_of(
        st.text(alphabet=ID_ALPHABET, max_size=7),
        st.text(alphabet=ID_ALPHABET, min_size=65, max_size=100),
        st.text(min_size=8, max_size=64).filter(lambda s: any(c not in ID_ALPHABET for c in s)),
    )
)
def test_session_regex_rejects_everything_else(candidate: str) -> None:
    regex = session_regex(_rendered_text())
    assert regex.fullmatch(f"/api/v1/transcribe/{candidate}") is None
    # The regex is anchored: no id inside a longer path counts either.
    assert regex.fullmatch(f"/api/v1/transcribe/{'a' * 8}/{candidate}") is None


def test_session_regex_is_anchored_at_both_ends() -> None:
    regex = session_regex(_rendered_text())
    assert regex.pattern.startswith("^")
    assert regex.pattern.endswith("$")
    assert regex.search("/x/api/v1/transcribe/abcdefgh") is None
    assert regex.search("/api/v1/transcribe/abcdefgh/more") is None
    assert regex.search("/api/v1/transcribe/abcdefgh") is not None


@functools.cache
def _rendered_text() -> str:
    # Rendered once for the property tests (hypothesis runs each body many times).
    with tempfile.TemporaryDirectory() as run_dir:
        return render_nginx_conf(18080, ["127.0.0.1:1"], Path(run_dir)).read_text()


def test_container_conf_resolves_names_with_relative_paths() -> None:
    text = container_nginx_conf(["gateway-1:8000"], 8080, "127.0.0.11")
    assert "server gateway-1:8000 resolve max_fails=1 fail_timeout=2s;" in text
    assert "resolver 127.0.0.11 valid=5s ipv6=off;" in text
    assert "pid nginx.pid;" in text
    assert "listen 8080;" in text
    with pytest.raises(ValueError, match="host:port"):
        container_nginx_conf(["gateway-1"], 8080, "127.0.0.11")
