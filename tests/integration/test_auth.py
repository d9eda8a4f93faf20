"""Authentication, through NGINX, on real gateways with AUTH__ on:
API keys from a file, an identity provider's JWTs (its JWKS served over HTTP on
127.0.0.1), the gateway's session tokens; every refusal happens before the upgrade."""

from __future__ import annotations

import io
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from gateway.auth.keys import main as keys_command
from speech_client.cli import parse_args, run_transcribe
from tests.support.audio import GOFORWARD as GOFORWARD_FILE
from tests.support.audio import goforward
from tests.support.auth_fleet import (
    GOFORWARD,
    Fleet,
    auth_fleet,
    bearer,
    http,
    new_id,
    refusal,
    session_token,
    transcribe,
)
from tests.support.processes import REPO, VENV_BIN, Proc, free_port, poll_until
from tests.support.ws import open_ws, start

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def fleet(
    log_dir: Path, redis_url: str, asr_server: Proc, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Fleet]:
    with auth_fleet(
        log_dir,
        redis_url=redis_url,
        riva_targets=f"127.0.0.1:{asr_server.port}",
        keys_dir=tmp_path_factory.mktemp("auth"),
        names=["gw-auth-1", "gw-auth-2"],
    ) as fleet:
        yield fleet


# ---- the matrix: every refusal before the upgrade ---------------------------------------------


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("no credentials", 401),
        ("bad key", 401),
        ("bad key in the query", 401),
        ("expired token", 401),
        ("wrong audience", 401),
        ("wrong issuer", 401),
        ("token without a tenant", 401),
        ("key of a revoked format", 401),
        ("session token for another session", 403),
    ],
)
async def test_the_auth_matrix_through_nginx(fleet: Fleet, case: str, expected: int) -> None:
    idp = fleet.idp
    session_id = new_id("matrix")
    kwargs: dict[str, Any] = {}
    if case == "bad key":
        kwargs = bearer("sgk_abcdefabcdef_" + "A" * 43)
    elif case == "bad key in the query":
        session_id += "?access_token=sgk_nope"
    elif case == "expired token":
        kwargs = bearer(idp.token(expires_in_s=-600))
    elif case == "wrong audience":
        kwargs = bearer(idp.token(audience="another-service"))
    elif case == "wrong issuer":
        kwargs = bearer(idp.token(issuer="https://elsewhere.test"))
    elif case == "token without a tenant":
        kwargs = bearer(idp.token(tenant=None))
    elif case == "key of a revoked format":
        kwargs = bearer("Zm9vYmFy")
    elif case == "session token for another session":
        kwargs = bearer(session_token(fleet, fleet.keys["acme"], new_id("other")))
    status, body, headers = await refusal(fleet.ws, session_id, **kwargs)
    assert status == expected, body
    assert body.startswith("unauthorized: "), body
    if expected == 401:
        assert headers.get("WWW-Authenticate", "").startswith("Bearer")


async def test_a_valid_key_opens_a_session(fleet: Fleet) -> None:
    async with await open_ws(fleet.ws, new_id("key"), **bearer(fleet.keys["acme"])) as ws:
        _, texts = await transcribe(ws, goforward())
    assert texts == GOFORWARD


async def test_a_valid_jwt_opens_a_session_from_the_query(fleet: Fleet) -> None:
    token = fleet.idp.token(tenant="acme")
    async with await open_ws(fleet.ws, f"{new_id('jwt')}?access_token={token}") as ws:
        _, texts = await transcribe(ws, goforward())
    assert texts == GOFORWARD


async def test_a_session_token_in_the_sub_protocol_as_a_browser_sends_it(fleet: Fleet) -> None:
    # The page's flow: its site's backend exchanged the key for a token for one session.
    session_id = new_id("page")
    # Minted by one pod, accepted by whichever NGINX picks: the secret is the fleet's.
    pod_base = f"http://127.0.0.1:{fleet.pods[0].port}"
    token = session_token(fleet, fleet.keys["acme"], session_id, base=pod_base)
    offered = [f"bearer.{token}", "speech.v1"]
    async with await open_ws(fleet.ws, session_id, subprotocols=offered) as ws:
        assert ws.subprotocol == "speech.v1"  # never the token echoed when avoidable
        _, texts = await transcribe(ws, goforward())
    assert texts == GOFORWARD
    # Only a bearer one offered: it is echoed (a browser fails the handshake otherwise).
    again = session_token(fleet, fleet.keys["acme"], session_id)
    async with await open_ws(fleet.ws, session_id, subprotocols=[f"bearer.{again}"]) as ws:
        assert ws.subprotocol == f"bearer.{again}"


async def test_the_token_endpoint_wants_a_key_or_jwt_in_the_header(fleet: Fleet) -> None:
    url = f"{fleet.http}/api/v1/tokens"
    body = {"session_id": new_id("tok")}
    status, _, headers = http("POST", url, body=body)
    assert status == 401
    assert headers["WWW-Authenticate"].startswith("Bearer")
    # A key in the query string is not taken here (it would end up in logs).
    status, _, _ = http("POST", f"{url}?access_token={fleet.keys['acme']}", body=body)
    assert status == 401
    token = session_token(fleet, fleet.keys["acme"], body["session_id"])
    status, _, _ = http("POST", url, token=token, body=body)
    assert status == 403  # a session token cannot mint more
    assert session_token(fleet, fleet.idp.token(tenant="acme"), body["session_id"])
    status, _, _ = http("POST", url, token=fleet.keys["acme"], body={"session_id": "bad id!"})
    assert status == 422


async def test_the_cli_sends_its_token_and_says_why_it_was_refused(
    fleet: Fleet, monkeypatch: pytest.MonkeyPatch
) -> None:
    out, err = io.StringIO(), io.StringIO()
    args = parse_args(["transcribe", str(GOFORWARD_FILE), "--url", fleet.ws, "--speed", "0"])
    assert await run_transcribe(args, out, err) != 0
    assert "HTTP 401" in err.getvalue()
    assert "unauthorized: credentials required" in err.getvalue()
    # SPEECH_TOKEN, as --token's default, goes out as Authorization: Bearer.
    monkeypatch.setenv("SPEECH_TOKEN", fleet.keys["globex"])
    out, err = io.StringIO(), io.StringIO()
    args = parse_args(["transcribe", str(GOFORWARD_FILE), "--url", fleet.ws, "--speed", "0"])
    assert await run_transcribe(args, out, err) == 0, err.getvalue()
    assert out.getvalue().strip() == GOFORWARD[0]


# ---- keys without a restart; the other routes -------------------------------------------------


async def test_a_key_added_or_revoked_in_the_file_counts_without_a_restart(fleet: Fleet) -> None:
    key = fleet.add_key("initech")
    url = f"{fleet.http}/api/v1/tokens"
    body = {"session_id": new_id("reload")}
    # Every pod re-reads the file within about a second of its change.
    for pod in fleet.pods:
        pod_url = f"http://127.0.0.1:{pod.port}/api/v1/tokens"
        poll_until(
            lambda u=pod_url: http("POST", u, token=key, body=body)[0] == 200, 10.0, "the new key"
        )
    async with await open_ws(fleet.ws, new_id("reload"), **bearer(key)) as ws:
        assert (await start(ws))["event"] == "transcription_started"
    key_id = key.split("_")[1]
    assert keys_command(["--file", str(fleet.keys_file), "revoke", "--id", key_id]) == 0
    for pod in fleet.pods:
        pod_url = f"http://127.0.0.1:{pod.port}/api/v1/tokens"
        poll_until(
            lambda u=pod_url: http("POST", u, token=key, body=body)[0] == 401,
            10.0,
            "the revocation",
        )
    status, _, _ = await refusal(fleet.ws, new_id("revoked"), **bearer(key))
    assert status == 401
    assert http("POST", url, token=fleet.keys["acme"], body=body)[0] == 200


async def test_the_openai_routes_need_a_credential_too(fleet: Fleet) -> None:
    status, _, headers = http("POST", f"{fleet.http}/v1/audio/transcriptions")
    assert status == 401
    assert headers["WWW-Authenticate"].startswith("Bearer")
    with pytest.raises(InvalidStatus) as realtime:
        async with connect(f"{fleet.ws}/v1/realtime?intent=transcription", open_timeout=10):
            pass
    assert realtime.value.response.status_code == 401
    async with connect(
        f"{fleet.ws}/v1/realtime?intent=transcription",
        additional_headers={"Authorization": f"Bearer {fleet.keys['acme']}"},
        subprotocols=["realtime"],  # type: ignore[list-item]
        open_timeout=10,
    ) as ws:
        assert ws.subprotocol == "realtime"
    # Riva's client: the client_secret of transcription_sessions is a session token.
    status, session, _ = http(
        "POST",
        f"{fleet.http}/v1/realtime/transcription_sessions",
        token=fleet.keys["acme"],
        body={},
    )
    assert status == 200
    secret = session["client_secret"]["value"]
    async with connect(
        f"{fleet.ws}/v1/realtime?intent=transcription",
        subprotocols=["realtime", f"realtime-token.{secret}"],  # type: ignore[list-item]
        open_timeout=10,
    ) as ws:
        assert ws.subprotocol == "realtime"
    # OpenAI's browser SDK puts its credential in a sub-protocol of its own.
    async with connect(
        f"{fleet.ws}/v1/realtime?intent=transcription",
        subprotocols=["realtime", f"openai-insecure-api-key.{secret}"],  # type: ignore[list-item]
        open_timeout=10,
    ) as ws:
        assert ws.subprotocol == "realtime"
    with pytest.raises(InvalidStatus) as forged:
        await connect(
            f"{fleet.ws}/v1/realtime?intent=transcription",
            subprotocols=["realtime", "realtime-token.a.b.c"],  # type: ignore[list-item]
            open_timeout=10,
        )
    assert forged.value.response.status_code == 401


def test_a_gateway_without_a_credential_source_refuses_to_start(log_dir: Path) -> None:
    port = free_port()
    argv = [
        str(VENV_BIN / "gunicorn"),
        "-c",
        "services/gateway/gunicorn.conf.py",
        "--bind",
        f"127.0.0.1:{port}",
        "gateway.main:create_app_from_env()",
    ]
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("AUTH__")}
    env.update(WEB_CONCURRENCY="1", SERVER__POD_NAME="gw-no-auth-source")
    done = subprocess.run(
        argv, env=env, cwd=REPO, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode != 0
    for name in ("AUTH__API_KEYS_FILE", "AUTH__JWT__JWKS_URL", "AUTH__REQUIRED=false"):
        assert name in done.stderr


def test_no_credential_reaches_the_gateway_logs(fleet: Fleet) -> None:
    # Last in the module: every test above sent keys and tokens, some in the query.
    text = "".join(pod.log.read_text() for pod in fleet.pods)
    assert "access_token=[redacted]" in text  # the lines are there, the values not
    assert "eyJ" not in text
    assert "sgk_" not in text
