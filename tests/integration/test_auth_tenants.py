"""Tenant isolation through NGINX, on real gateways with authentication on: two tenants
on one session id, and one tenant unable to resume, read or delete another's session even
knowing its id and resume token; deleting a live session stops its driver for good."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.support.audio import goforward
from tests.support.auth_fleet import (
    GOFORWARD,
    Fleet,
    auth_fleet,
    bearer,
    http,
    new_id,
    session_token,
    transcribe,
)
from tests.support.processes import Proc
from tests.support.ws import collect, frames, next_event, open_ws, start

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def fleet(
    log_dir: Path, redis_url: str, asr_server: Proc, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Fleet]:
    with auth_fleet(
        log_dir,
        redis_url=redis_url,
        riva_targets=f"127.0.0.1:{asr_server.port}",
        keys_dir=tmp_path_factory.mktemp("tenants"),
        names=["gw-tenant-1", "gw-tenant-2"],
    ) as fleet:
        yield fleet


# ----------------------------------------------------------------------------------


async def test_two_tenants_use_the_same_session_id_at_once(fleet: Fleet) -> None:
    session_id = new_id("shared")

    async def run(credential: str) -> tuple[dict[str, Any], list[str]]:
        async with await open_ws(fleet.ws, session_id, **bearer(credential)) as ws:
            return await transcribe(ws, goforward())

    (a_started, a_texts), (b_started, b_texts) = await asyncio.gather(
        run(fleet.keys["acme"]), run(fleet.idp.token(tenant="globex"))
    )
    assert a_texts == b_texts == GOFORWARD
    assert a_started["session_id"] == b_started["session_id"] == session_id
    assert a_started["resume_token"] != b_started["resume_token"]


async def test_a_tenant_cannot_resume_read_or_delete_another_tenants_session(
    fleet: Fleet, redis_url: str
) -> None:
    acme, globex = fleet.keys["acme"], fleet.keys["globex"]
    session_id = new_id("isolated")
    async with await open_ws(fleet.ws, session_id, **bearer(globex)) as ws:
        started, texts = await transcribe(ws, goforward())
    assert texts == GOFORWARD
    # Resume with globex's own resume token, but acme's key: not acme's session.
    async with await open_ws(fleet.ws, session_id, **bearer(acme)) as ws:
        resume = {
            "type": "resume_transcription",
            "resume_token": started["resume_token"],
            "last_seq": 0,
        }
        await ws.send(json.dumps(resume))
        error = await next_event(ws)
    assert (error["event"], error["code"]) == ("error", "session_not_found")
    record_url = f"{fleet.http}/api/v1/sessions/{session_id}"
    assert http("GET", record_url, token=acme)[0] == 404
    assert http("DELETE", record_url, token=acme)[0] == 404
    assert http("GET", record_url)[0] == 401
    status, record, _ = http("GET", record_url, token=globex)
    assert status == 200
    assert (record["session_id"], record["state"], record["finals"]) == (session_id, "stopped", 1)
    assert "owner" not in record  # pod names stay inside
    # A session token reads its own session only.
    own = session_token(fleet, globex, session_id)
    assert http("GET", record_url, token=own)[0] == 200
    other = session_token(fleet, globex, new_id("else"))
    assert http("GET", record_url, token=other)[0] == 403
    # Its owner deletes it: record and finals gone.
    assert http("DELETE", record_url, token=globex)[0] == 204
    assert http("GET", record_url, token=globex)[0] == 404
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    assert not client.exists(f"speech:{{globex/{session_id}}}:finals")


async def test_deleting_a_live_session_stops_its_driver_and_it_stays_deleted(
    fleet: Fleet, redis_url: str
) -> None:
    key = fleet.keys["acme"]
    session_id = new_id("live-del")
    async with await open_ws(fleet.ws, session_id, **bearer(key)) as ws:
        started = await start(ws)
        assert started["event"] == "transcription_started"
        audio = goforward()
        for frame in frames(audio, 3200):
            await ws.send(frame)
        record_url = f"{fleet.http}/api/v1/sessions/{session_id}"
        # The final is persisted before it is sent: wait for it, then delete.
        while (await next_event(ws)).get("is_final") is not True:
            pass
        assert http("DELETE", record_url, token=key)[0] == 204
        run = await collect(ws, wait_s=15)
    assert [(e["event"], e.get("code")) for e in run.of("error")] == [
        ("error", "session_taken_over")
    ]
    assert run.close_code == 1008
    meta = f"speech:{{acme/{session_id}}}:meta"
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    # The driver's last writes (it detached) were fenced: nothing was rebuilt.
    assert client.hget(meta, "state") == "deleted"
    assert client.hget(meta, "token_hash") is None
    assert not client.exists(f"speech:{{acme/{session_id}}}:finals")
    assert http("GET", record_url, token=key)[0] == 404
    # Its resume token no longer opens anything.
    async with await open_ws(fleet.ws, session_id, **bearer(key)) as ws:
        resume = {
            "type": "resume_transcription",
            "resume_token": started["resume_token"],
            "last_seq": 0,
        }
        await ws.send(json.dumps(resume))
        assert (await next_event(ws))["code"] == "session_not_found"
