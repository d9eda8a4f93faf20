"""The JSON Schema the gateway publishes validates every message that real sessions send
and receive: a session with word times, a resume, errors and a drain."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from gateway.published.asyncapi import asyncapi_document
from gateway.published.schema import protocol_schema
from tests.support.audio import goforward
from tests.support.fixtures_gateway import admin_port_of, http_get, start_gateway
from tests.support.processes import Proc
from tests.support.protocol_schema import SchemaCheck
from tests.support.ws import frames, open_ws

pytestmark = pytest.mark.integration

FRAME_100MS = 3200


@pytest.fixture(scope="module")
def gateway(log_dir: Path, redis_url: str, asr_server: Proc) -> Iterator[Proc]:
    proc = start_gateway(
        log_dir,
        redis_url=redis_url,
        riva_targets=f"127.0.0.1:{asr_server.port}",
        name="gw-schema",
        # Off by default in production; the schema route is what this test reads.
        env={"SERVER__DOCS_ENABLED": "true"},
    )
    try:
        yield proc
    finally:
        proc.stop()


def _get_json(port: int, path: str) -> Any:
    status, body = http_get(f"http://127.0.0.1:{port}{path}")
    assert status == 200, (path, status, body[:200])
    return json.loads(body)


class Checked:
    """A socket whose every text message, both ways, is validated against the schema."""

    def __init__(self, ws: ClientConnection, check: SchemaCheck) -> None:
        self.ws, self.check = ws, check

    async def send(self, message: dict[str, Any]) -> None:
        self.check.sent(message)
        await self.ws.send(json.dumps(message))

    async def event(self, wait_s: float = 30.0) -> dict[str, Any]:
        while True:
            message = await asyncio.wait_for(self.ws.recv(), wait_s)
            if isinstance(message, str):
                event: dict[str, Any] = json.loads(message)
                self.check.received(event)
                return event

    async def until(self, name: str, wait_s: float = 60.0) -> list[dict[str, Any]]:
        events = []
        while not events or events[-1]["event"] != name:
            events.append(await self.event(wait_s))
        return events

    async def rest(self) -> list[dict[str, Any]]:
        events = []
        try:
            while True:
                events.append(await self.event())
        except ConnectionClosed:
            return events


def test_the_gateway_serves_the_generated_documents(gateway: Proc) -> None:
    assert _get_json(gateway.port, "/api/v1/protocol/schema.json") == protocol_schema()
    assert _get_json(gateway.port, "/asyncapi.json") == asyncapi_document()
    assert _get_json(gateway.port, "/api/v1/protocol/asyncapi.json") == asyncapi_document()
    openapi = _get_json(gateway.port, "/openapi.json")
    assert "/api/v1/protocol/schema.json" in openapi["paths"]


async def test_every_message_of_real_sessions_matches_the_schema(gateway: Proc) -> None:
    check = SchemaCheck(_get_json(gateway.port, "/api/v1/protocol/schema.json"))
    base = f"ws://127.0.0.1:{gateway.port}"
    audio = frames(goforward(), FRAME_100MS)
    stamp = time.time_ns()

    # A whole session with word times, keepalive and finalize.
    async with await open_ws(base, f"schema-a-{stamp}") as ws:
        client = Checked(ws, check)
        config = {"enable_word_time_offsets": True, "language": "en-US"}
        await client.send({"type": "start_transcription", "config": config})
        assert (await client.event())["event"] == "transcription_started"
        await client.send({"type": "keepalive"})
        for frame in audio:
            await ws.send(frame)
        await client.send({"type": "finalize"})
        await client.send({"type": "stop_transcription"})
        events = await client.rest()
    finals = [e for e in events if e["event"] == "transcript" and e["is_final"]]
    assert [f["alternatives"][0]["transcript"] for f in finals] == ["go forward ten meters"]
    assert finals[0]["alternatives"][0]["words"], "word times were asked for"

    # Lose the socket after the first final, then resume and stop.
    session_id = f"schema-b-{stamp}"
    async with await open_ws(base, session_id) as ws:
        client = Checked(ws, check)
        await client.send({"type": "start_transcription", "config": {}})
        token = (await client.event())["resume_token"]
        for frame in audio:
            await ws.send(frame)
        await client.send({"type": "finalize"})
        await client.until("audio_committed")
    async with await open_ws(base, session_id) as ws:
        client = Checked(ws, check)
        await client.send({"type": "resume_transcription", "resume_token": token, "last_seq": 0})
        replayed = await client.until("transcription_resumed")
        assert replayed[-1]["replayed_finals"] == 1
        await client.send({"type": "stop_transcription"})
        assert (await client.until("transcription_stopped"))[-1]["finals"] == 1

    # Errors: a misspelt option, an unknown session.
    async with await open_ws(base, f"schema-c-{stamp}") as ws:
        await ws.send(json.dumps({"type": "start_transcription", "config": {"rate": 1}}))
        assert (await Checked(ws, check).event())["code"] == "invalid_config"
        client = Checked(ws, check)
        await client.send({"type": "resume_transcription", "resume_token": "nope"})
        assert (await client.event())["code"] == "session_not_found"

    # A drain asks the live session to reconnect.
    async with await open_ws(base, f"schema-d-{stamp}") as ws:
        client = Checked(ws, check)
        await client.send({"type": "start_transcription"})
        await client.event()
        drain = urllib.request.Request(
            f"http://127.0.0.1:{admin_port_of(gateway)}/admin/drain?timeout_s=2", method="POST"
        )
        drained = asyncio.to_thread(urllib.request.urlopen, drain, timeout=10)
        reconnect, _ = await asyncio.gather(client.until("reconnect"), drained)
        assert reconnect[-1]["resume_token"]

    assert check.sent_types == {
        "start_transcription",
        "resume_transcription",
        "finalize",
        "keepalive",
        "stop_transcription",
    }
    assert check.received_events == {
        "transcription_started",
        "transcription_resumed",
        "transcript",
        "audio_committed",
        "reconnect",
        "error",
        "transcription_stopped",
    }
