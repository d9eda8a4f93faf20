"""With authentication off (the local fleet), a session's REST record is its own: the
resume token in `X-Resume-Token` is the proof of ownership, for reads and deletion."""

from __future__ import annotations

import json
import urllib.request
import uuid

import pytest

from tests.support.audio import goforward
from tests.support.fixtures_gateway import GatewayFactory
from tests.support.processes import Proc
from tests.support.ws import frames, stream_session

pytestmark = pytest.mark.integration


def call(method: str, url: str, resume_token: str | None = None) -> int:
    return call_json(method, url, resume_token)[0]


def call_json(
    method: str, url: str, resume_token: str | None = None, **extra: str
) -> tuple[int, object]:
    headers = {} if resume_token is None else {"X-Resume-Token": resume_token}
    headers.update(extra)
    request = urllib.request.Request(url, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            raw = response.read()
            return int(response.status), json.loads(raw) if raw else None
    except urllib.error.HTTPError as err:
        return err.code, None


async def test_the_resume_token_reads_and_deletes_a_session_without_auth(
    gateway_factory: GatewayFactory, redis_url: str, asr_server: Proc
) -> None:
    gateway = gateway_factory(redis_url=redis_url, riva_targets=f"127.0.0.1:{asr_server.port}")
    session_id = f"anon-{uuid.uuid4().hex[:12]}"
    run = await stream_session(
        f"ws://127.0.0.1:{gateway.port}", session_id, frames(goforward(), 3200)
    )
    token = run.events[0]["resume_token"]
    url = f"http://127.0.0.1:{gateway.port}/api/v1/sessions/{session_id}"
    assert call("GET", url) == 404  # the id alone reveals nothing
    assert call("GET", url, "not-the-token") == 404
    assert call("DELETE", url) == 404
    assert call("DELETE", url, "not-the-token") == 404
    # Credentials are not looked at with authentication off, even malformed ones.
    status, record = call_json("GET", url, token, Authorization="Basic dXNlcjpwYXNz")
    assert status == 200
    assert isinstance(record, dict)
    assert (record["session_id"], record["state"], record["finals"]) == (session_id, "stopped", 1)
    assert call("DELETE", url, token) == 204
    assert call("GET", url, token) == 404
    assert call("DELETE", url, token) == 404
