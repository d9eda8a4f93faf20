"""A test-side protocol client on the real `websockets` library: raw enough to send
malformed input, small enough to read in one screen. Every event it receives is checked
against the published JSON Schema."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from tests.support.protocol_schema import checked_event


def session_url(base: str, session_id: str) -> str:
    return f"{base.rstrip('/')}/api/v1/transcribe/{session_id}"


async def open_ws(base: str, session_id: str, **kwargs: Any) -> ClientConnection:
    return await connect(
        session_url(base, session_id), compression=None, max_size=None, open_timeout=10, **kwargs
    )


async def next_event(ws: ClientConnection, wait_s: float = 30.0) -> dict[str, Any]:
    while True:
        message = await asyncio.wait_for(ws.recv(), wait_s)
        if isinstance(message, str):
            event: dict[str, Any] = checked_event(json.loads(message))
            return event


async def start(ws: ClientConnection, config: dict[str, Any] | None = None) -> dict[str, Any]:
    await ws.send(json.dumps({"type": "start_transcription", "config": config or {}}))
    return await next_event(ws)


def frames(audio: bytes, frame_bytes: int) -> list[bytes]:
    return [audio[i : i + frame_bytes] for i in range(0, len(audio), frame_bytes)]


@dataclass
class Run:
    events: list[dict[str, Any]] = field(default_factory=list)
    close_code: int | None = None

    @property
    def finals(self) -> list[dict[str, Any]]:
        return [e for e in self.events if e["event"] == "transcript" and e["is_final"]]

    @property
    def interims(self) -> list[dict[str, Any]]:
        return [e for e in self.events if e["event"] == "transcript" and not e["is_final"]]

    @property
    def final_texts(self) -> list[str]:
        return [f["alternatives"][0]["transcript"] for f in self.finals]

    def of(self, name: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e["event"] == name]


async def collect(ws: ClientConnection, wait_s: float = 120.0) -> Run:
    """Every event until the server closes the socket."""
    run = Run()
    try:
        async with asyncio.timeout(wait_s):
            async for message in ws:
                if isinstance(message, str):
                    run.events.append(checked_event(json.loads(message)))
    except ConnectionClosed:
        pass
    run.close_code = ws.close_code
    return run


async def stream_session(
    base: str,
    session_id: str,
    audio_frames: Sequence[bytes],
    config: dict[str, Any] | None = None,
    *,
    frame_interval_s: float = 0.0,
) -> Run:
    """Start, send every frame (paced if asked), stop, and collect until the close."""
    async with await open_ws(base, session_id) as ws:
        started = await start(ws, config)
        assert started["event"] == "transcription_started", started

        async def send() -> None:
            for frame in audio_frames:
                await ws.send(frame)
                if frame_interval_s:
                    await asyncio.sleep(frame_interval_s)
            await ws.send(json.dumps({"type": "stop_transcription"}))

        sender = asyncio.create_task(send())
        run = await collect(ws)
        await sender
        run.events.insert(0, started)
        return run
