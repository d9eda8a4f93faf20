"""A test fleet with authentication on, and the client side of it: the AUTH__ settings,
API keys made through the gateway's own command, the identity provider's JWTs, and small
HTTP and WebSocket helpers that show every refusal (tests/integration/test_auth*)."""

from __future__ import annotations

import contextlib
import io
import json
import urllib.request
import uuid
from collections.abc import Iterator
from email.message import Message
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection
from websockets.datastructures import Headers
from websockets.exceptions import InvalidStatus

from gateway.auth.keys import main as keys_command
from tests.support.fixtures_gateway import gateways_behind_nginx
from tests.support.identity_provider import AUDIENCE, ISSUER, SigningKey, serve_jwks
from tests.support.processes import Proc
from tests.support.ws import collect, frames, open_ws, start

GOFORWARD = ["go forward ten meters"]
SESSION_TOKEN_SECRET = "fleet-wide-session-token-secret-0123456789"


def add_key(path: Path, tenant: str) -> str:
    """A new key for `tenant` in the keys file at `path`; the key, as printed once."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        assert keys_command(["--file", str(path), "add", "--tenant", tenant]) == 0
    return out.getvalue().strip()


def auth_env(keys_file: Path, jwks_url: str | None = None) -> dict[str, str]:
    """Gateway environment: API keys from `keys_file`, JWTs of the test identity provider
    when its `jwks_url` is given, session tokens on."""
    env = {
        "AUTH__REQUIRED": "true",
        "AUTH__API_KEYS_FILE": str(keys_file),
        "AUTH__SESSION_TOKEN_SECRET": SESSION_TOKEN_SECRET,
    }
    if jwks_url:
        env.update(
            AUTH__JWT__JWKS_URL=jwks_url, AUTH__JWT__ISSUER=ISSUER, AUTH__JWT__AUDIENCE=AUDIENCE
        )
    return env


class Fleet:
    def __init__(self, nginx: Proc, pods: list[Proc], keys_file: Path, idp: SigningKey) -> None:
        self.nginx = nginx
        self.pods = pods
        self.keys_file = keys_file
        self.idp = idp
        self.keys: dict[str, str] = {}  # tenant -> API key

    @property
    def ws(self) -> str:
        return f"ws://127.0.0.1:{self.nginx.port}"

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.nginx.port}"

    def add_key(self, tenant: str) -> str:
        return add_key(self.keys_file, tenant)


@contextlib.contextmanager
def auth_fleet(
    log_dir: Path, *, redis_url: str, riva_targets: str, keys_dir: Path, names: list[str]
) -> Iterator[Fleet]:
    """Gateways `names` with authentication on behind NGINX: API keys for tenants acme and
    globex, JWTs of a test identity provider (its JWKS served on 127.0.0.1), session
    tokens; all stopped on exit."""
    keys_file = keys_dir / "api-keys.json"
    acme_key, globex_key = add_key(keys_file, "acme"), add_key(keys_file, "globex")
    idp = SigningKey.rsa()
    with (
        serve_jwks([idp, SigningKey.ec()]) as jwks,
        gateways_behind_nginx(
            log_dir,
            redis_url=redis_url,
            riva_targets=riva_targets,
            names=names,
            env=auth_env(keys_file, jwks.url),
        ) as (pods, nginx),
    ):
        fleet = Fleet(nginx, list(pods.values()), keys_file, idp)
        fleet.keys = {"acme": acme_key, "globex": globex_key}
        yield fleet


def new_id(label: str) -> str:
    return f"{label}-{uuid.uuid4().hex[:12]}"


def bearer(token: str) -> dict[str, Any]:
    return {"additional_headers": {"Authorization": f"Bearer {token}"}}


async def refusal(base: str, session_id: str, **kwargs: Any) -> tuple[int, str, Headers]:
    """The status, body and headers of an upgrade that must be refused."""
    with pytest.raises(InvalidStatus) as refused:
        await open_ws(base, session_id, **kwargs)  # a socket would fail the test anyway
    response = refused.value.response
    return response.status_code, response.body.decode(), response.headers


async def transcribe(ws: ClientConnection, audio: bytes) -> tuple[dict[str, Any], list[str]]:
    """Start, stream, stop: (transcription_started, final texts)."""
    started = await start(ws)
    assert started["event"] == "transcription_started", started
    for frame in frames(audio, 3200):
        await ws.send(frame)
    await ws.send(json.dumps({"type": "stop_transcription"}))
    run = await collect(ws)
    assert run.of("transcription_stopped"), run.events
    return started, run.final_texts


def http(
    method: str,
    url: str,
    *,
    token: str | None = None,
    body: object = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, Any, Message]:
    data = None if body is None else json.dumps(body).encode()
    all_headers = {"Content-Type": "application/json", **(headers or {})}
    if token is not None:
        all_headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, data=data, method=method, headers=all_headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            raw = response.read()
            return response.status, json.loads(raw) if raw else None, response.headers
    except urllib.error.HTTPError as err:
        raw = err.read()
        return err.code, json.loads(raw) if raw else None, err.headers


def session_token(fleet: Fleet, credential: str, session_id: str, base: str | None = None) -> str:
    status, body, headers = http(
        "POST",
        f"{base or fleet.http}/api/v1/tokens",
        token=credential,
        body={"session_id": session_id},
    )
    assert status == 200, body
    assert headers.get("Cache-Control") == "no-store"
    assert body["session_id"] == session_id
    return str(body["access_token"])
