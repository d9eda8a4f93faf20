"""Where credentials travel, the sub-protocol a socket accepts, the gateway's session
tokens, and how the authenticator tells the kinds apart and refuses to start unusable."""

from __future__ import annotations

import json
from pathlib import Path

import jwt
import pytest
from pydantic import SecretStr

from gateway.auth.authenticator import Authenticator
from gateway.auth.credentials import find_credential, selected_subprotocol
from gateway.auth.keys import hash_key, new_key
from gateway.auth.principal import ANONYMOUS, Principal
from gateway.auth.refusal import AuthConfigError, AuthRefused
from gateway.auth.session_tokens import SessionTokens
from gateway.config import AuthSettings

SECRET = "s" * 40


def test_the_header_then_the_sub_protocol_then_the_query() -> None:
    assert (
        find_credential({"authorization": "Bearer abc"}, {"access_token": "q"}, ["bearer.p"])
        == "abc"
    )
    assert find_credential({}, {"access_token": "q"}, ["speech.v1", "bearer.p"]) == "p"
    assert find_credential({}, {"access_token": "q"}) == "q"
    assert find_credential({}, {}, ["speech.v1"]) is None
    with pytest.raises(AuthRefused, match="Bearer"):
        find_credential({"authorization": "Basic dXNlcjpwYXNz"}, {})


def test_the_accepted_sub_protocol_never_leaves_a_browser_without_one() -> None:
    assert selected_subprotocol(["bearer.tok", "speech.v1"], "speech.v1") == "speech.v1"
    assert selected_subprotocol(["bearer.tok", "other"], "speech.v1") == "other"
    assert selected_subprotocol(["bearer.tok"], "speech.v1") == "bearer.tok"
    assert selected_subprotocol([], "speech.v1") is None


def test_a_session_token_carries_tenant_and_session_and_expires() -> None:
    clock = [1_000_000.0]
    tokens = SessionTokens(SECRET, 300, clock=lambda: clock[0])
    token, expires_at = tokens.issue(Principal("acme", "key:abc"), "session-0001")
    assert expires_at == 1_000_300
    claims = jwt.decode(
        token,
        SECRET,
        algorithms=["HS256"],
        audience="speech-gateway-session",
        options={"verify_exp": False},
    )
    assert (claims["tenant"], claims["sid"]) == ("acme", "session-0001")
    live = SessionTokens(SECRET, 300)
    with pytest.raises(AuthRefused, match="token expired"):
        live.verify(token)  # issued at a clock far in the past
    fresh, _ = live.issue(Principal("acme", "key:abc"), "session-0001")
    assert live.verify(fresh) == Principal("acme", "key:abc", "session-0001")
    with pytest.raises(AuthRefused, match="invalid token"):
        SessionTokens("t" * 40, 300).verify(fresh)  # another fleet's secret


def test_a_short_secret_refuses_to_start() -> None:
    with pytest.raises(AuthConfigError, match="AUTH__SESSION_TOKEN_SECRET"):
        SessionTokens("short", 300)


def keys_file(tmp_path: Path, tenant: str) -> tuple[Path, str]:
    key_id, key = new_key()
    path = tmp_path / "keys.json"
    entry = {"id": key_id, "tenant": tenant, "sha256": hash_key(key)}
    path.write_text(json.dumps({"version": 1, "keys": [entry]}))
    return path, key


async def test_the_authenticator_routes_each_kind_of_credential(tmp_path: Path) -> None:
    path, key = keys_file(tmp_path, "acme")
    auth = Authenticator.from_settings(
        AuthSettings(api_keys_file=str(path), session_token_secret=SecretStr(SECRET))
    )
    assert (await auth.authenticate(key)).tenant == "acme"
    assert auth.session_tokens is not None
    token, _ = auth.session_tokens.issue(Principal("acme"), "session-0001")
    assert (await auth.authorize_session(token, "session-0001")).session_id == "session-0001"
    refusals = {
        None: 401,
        "sgk_wrong": 401,
        "not-a-credential": 401,
        "a.b.c": 401,  # malformed JWT, and no identity provider configured
    }
    for credential, status in refusals.items():
        with pytest.raises(AuthRefused) as refused:
            await auth.authenticate(credential)
        assert refused.value.status == status, credential
        assert refused.value.body.startswith("unauthorized: ")
        assert key not in refused.value.body
    with pytest.raises(AuthRefused) as other:
        await auth.authorize_session(token, "session-0002")
    assert other.value.status == 403


async def test_with_authentication_off_every_caller_is_anonymous() -> None:
    auth = Authenticator.from_settings(AuthSettings(required=False))
    assert await auth.authenticate(None) is ANONYMOUS
    assert await auth.authenticate("sgk_anything") is ANONYMOUS


def test_required_without_a_credential_source_refuses_to_start_naming_the_settings() -> None:
    with pytest.raises(AuthConfigError) as refused:
        Authenticator.from_settings(AuthSettings())
    message = str(refused.value)
    for name in ("AUTH__API_KEYS_FILE", "AUTH__JWT__JWKS_URL", "AUTH__REQUIRED=false"):
        assert name in message


def test_an_unreadable_keys_file_refuses_to_start(tmp_path: Path) -> None:
    with pytest.raises(AuthConfigError, match="AUTH__API_KEYS_FILE"):
        Authenticator.from_settings(AuthSettings(api_keys_file=str(tmp_path / "missing.json")))


def test_auth_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from gateway.config import Settings

    monkeypatch.setenv("AUTH__REQUIRED", "false")
    monkeypatch.setenv("AUTH__JWT__ALGORITHMS", "ES256")
    monkeypatch.setenv("AUTH__SESSION_TOKEN_SECRET", SECRET)
    settings = Settings()
    assert settings.auth.required is False
    assert settings.auth.jwt.algorithms == ["ES256"]
    assert SECRET not in repr(settings)


def test_a_query_credential_never_reaches_a_log_line(caplog: pytest.LogCaptureFixture) -> None:
    import logging

    from gateway.observability.logs import RedactSecrets, redact_server_loggers

    redact_server_loggers()
    redact_server_loggers()  # idempotent
    logger = logging.getLogger("uvicorn.error")
    assert sum(isinstance(f, RedactSecrets) for f in logger.filters) == 1
    with caplog.at_level(logging.INFO, logger="uvicorn.error"):
        logger.info(
            '%s - "WebSocket %s" %d',
            "127.0.0.1:1",
            "/api/v1/transcribe/s-1?x=1&access_token=eyJ.a.b",
            401,
        )
    assert "eyJ" not in caplog.text
    assert "/api/v1/transcribe/s-1?x=1&access_token=[redacted]" in caplog.text
