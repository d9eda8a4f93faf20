"""A stand-in test peer, NOT the gateway: just enough of PROTOCOL.md to drive the client.

It makes one final per 100 ms of 16 kHz pcm16 audio, whose text names the segment's first
sample, so a resume that re-sent audio from the wrong offset would change the transcript.
It can drop the connection, send an `error`, or ask the client to `reconnect`.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from websockets.asyncio.server import ServerConnection, serve

BYTES_PER_FINAL = 3200  # 100 ms of 16 kHz 16-bit mono
BYTES_PER_MS = 32


def counting_audio(ms: int) -> bytes:
    """pcm16 whose sample i has the value i (mod 2**16): every offset is recognisable."""
    return b"".join((i % 65536).to_bytes(2, "little") for i in range(ms * 16))


@dataclass
class StandInPeer:
    drop_at_bytes: int | None = None  # abort the first connection once it holds this much
    reconnect_at_bytes: int | None = None  # send `reconnect` once, at this much audio
    error_at_bytes: int | None = None  # send `error` and close, at this much audio
    error: dict[str, Any] = field(default_factory=dict)
    error_close_code: int = 1008
    replay_all_finals: bool = False  # a sloppy resume: replays finals the client has
    url: str = ""
    audio: bytearray = field(default_factory=bytearray)
    committed: int = 0
    finals: list[dict[str, Any]] = field(default_factory=list)
    hellos: list[dict[str, Any]] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)

    async def handler(self, ws: ServerConnection) -> None:
        assert ws.request is not None
        self.paths.append(ws.request.path)
        hello = json.loads(await ws.recv())
        self.hellos.append(hello)
        if hello["type"] == "start_transcription":
            await self._send(
                ws,
                event="transcription_started",
                session_id="s" * 8,
                resume_token="token-1",
                config=hello["config"],
            )
        else:
            del self.audio[self.committed :]  # only persisted audio survives a disconnect
            first = 0 if self.replay_all_finals else hello["last_seq"]
            for final in self.finals[first:]:
                await ws.send(json.dumps(final))
            await self._send(
                ws,
                event="transcription_resumed",
                session_id="s" * 8,
                resume_from_ms=self.committed // BYTES_PER_MS,
                replayed_finals=len(self.finals) - first,
            )
        async for message in ws:
            if isinstance(message, str):
                assert json.loads(message) == {"type": "stop_transcription"}
                if len(self.audio) > self.committed:
                    await self._final(ws, len(self.audio))
                await self._send(
                    ws,
                    event="transcription_stopped",
                    session_id="s" * 8,
                    audio_ms=len(self.audio) // BYTES_PER_MS,
                    finals=len(self.finals),
                )
                return  # closes with 1000
            self.audio += message
            if self._crossed("drop_at_bytes"):
                ws.transport.abort()  # as if the pod died: the client sees 1006
                return
            if self._crossed("error_at_bytes"):
                await self._send(ws, event="error", **self.error)
                await ws.close(self.error_close_code)
                return
            if self._crossed("reconnect_at_bytes"):
                await self._send(ws, event="reconnect", reason="draining", resume_token="token-2")
            while len(self.audio) - self.committed >= BYTES_PER_FINAL:
                await self._final(ws, self.committed + BYTES_PER_FINAL)

    def _crossed(self, name: str) -> bool:
        at = getattr(self, name)
        if at is None or len(self.audio) < at:
            return False
        setattr(self, name, None)  # once
        return True

    async def _final(self, ws: ServerConnection, end: int) -> None:
        segment = self.audio[self.committed : end]
        text = f"w{int.from_bytes(segment[:2], 'little')}"
        common = {
            "event": "transcript",
            "seq": len(self.finals) + 1,
            "channel": 0,
            "start_ms": self.committed // BYTES_PER_MS,
            "end_ms": end // BYTES_PER_MS,
        }
        alternatives = [{"transcript": text, "confidence": 0.9}]
        await ws.send(
            json.dumps(
                {
                    **common,
                    "is_final": False,
                    "stability": 0.5,
                    "alternatives": [{"transcript": text[:2], "confidence": 0}],
                }
            )
        )
        final = {**common, "is_final": True, "stability": 1.0, "alternatives": alternatives}
        self.finals.append(final)
        self.committed = end
        await ws.send(json.dumps(final))
        await self._send(ws, event="audio_committed", committed_ms=end // BYTES_PER_MS)

    @staticmethod
    async def _send(ws: ServerConnection, **event: Any) -> None:
        await ws.send(json.dumps(event))


@contextlib.asynccontextmanager
async def running(peer: StandInPeer) -> AsyncIterator[StandInPeer]:
    """`peer` listening on 127.0.0.1 on a free port, its base URL in `peer.url`."""
    async with serve(peer.handler, "127.0.0.1", 0, compression=None) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        peer.url = f"ws://127.0.0.1:{port}"
        yield peer
