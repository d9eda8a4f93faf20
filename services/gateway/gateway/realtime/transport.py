"""A `Transport` that speaks OpenAI's realtime transcription events on the socket and the
gateway's protocol to the session service: the service runs the session exactly as for
its own clients (state in Redis, backend failover), this class only translates.

Client events in (`receive`): `session.update` / `transcription_session.update` become
`start_transcription`, `input_audio_buffer.append` becomes a binary audio frame,
`input_audio_buffer.commit` becomes `finalize`. Protocol events out (`send_text`): each
final `transcript` becomes `input_audio_buffer.committed` (unless the client committed
it already), one `...input_audio_transcription.delta` and `...completed`; `error`
becomes OpenAI's `error`.
"""

from __future__ import annotations

import base64
import binascii
from collections import deque
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import orjson
from starlette.websockets import WebSocket

from gateway.protocol import TranscriptionConfig
from gateway.realtime.openai_events import (
    EventIds,
    UnsupportedSession,
    config_from_session,
    error_event,
    session_object,
)
from gateway.sessions.transport import ClientGone

Message = MutableMapping[str, Any]
_FINALIZE: Message = {"type": "websocket.receive", "text": '{"type":"finalize"}'}


class OpenAIRealtimeTransport:
    def __init__(self, websocket: WebSocket, session_id: str) -> None:
        # The accepted socket's ASGI callables, as `AsgiTransport` does.
        self._receive = websocket._receive
        self._send = websocket._send
        self.session_id = session_id
        self._ids = EventIds(session_id)
        self._config = TranscriptionConfig(sample_rate_hz=24000)
        self._to_service: deque[Message] = deque()
        self._started = False
        self._next_seq = 1  # the seq, and so the item, of the next final
        self._committed_items: set[int] = set()
        # The session service calls `receive` (an attribute, as in `Transport`).
        self.receive: Callable[[], Awaitable[Message]] = self._next_message

    def _item_id(self, seq: int) -> str:
        return f"item_{self.session_id}_{seq}"

    async def open(self) -> None:
        """Greet the client with `session.created`, as OpenAI's server does."""
        session = session_object(self.session_id, self._config)
        await self._emit({"type": "session.created", "event_id": self._ids.next(),
                          "session": session})  # fmt: skip

    # ---- client -> service ---------------------------------------------------------

    async def _next_message(self) -> Message:
        """The next message for the session service, in the gateway's protocol."""
        while not self._to_service:
            message = await self._receive()
            if message["type"] == "websocket.disconnect":
                return message
            if message["type"] == "websocket.receive":
                await self._on_client_event(message.get("text") or message.get("bytes") or b"")
        return self._to_service.popleft()

    async def _on_client_event(self, raw: str | bytes) -> None:
        try:
            event = orjson.loads(raw)
            kind = event["type"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            await self._error("invalid_event", "events are JSON objects with a type")
            return
        if kind == "input_audio_buffer.append":
            await self._append(event)
        elif kind in ("session.update", "transcription_session.update"):
            await self._configure(event.get("session") or {})
        elif kind == "input_audio_buffer.commit":
            await self._commit()
        elif kind == "input_audio_buffer.clear":
            # Audio is streamed to the recogniser as it comes: what was sent is heard.
            await self._emit({"type": "input_audio_buffer.cleared", "event_id": self._ids.next()})
        else:
            await self._error("unsupported_event", f"{kind} is not supported here")

    async def _append(self, event: dict[str, Any]) -> None:
        try:
            audio = base64.b64decode(event.get("audio") or "", validate=True)
        except (binascii.Error, ValueError):
            await self._error("invalid_audio", "audio must be base64")
            return
        if not audio:
            return
        self._start_if_needed()
        self._to_service.append({"type": "websocket.receive", "bytes": audio})

    async def _configure(self, session: dict[str, Any]) -> None:
        try:
            config = config_from_session(session)
        except (UnsupportedSession, ValueError) as exc:
            await self._error("invalid_session", str(exc))
            return
        if self._started:
            if config != self._config:
                await self._error(
                    "session_already_started",
                    "the audio format, language and model are fixed once audio has started",
                )
            else:
                await self._session_updated()
            return
        self._config = config
        self._start_if_needed()

    def _start_if_needed(self) -> None:
        if self._started:
            return
        self._started = True
        start = {"type": "start_transcription", "config": self._config.model_dump()}
        self._to_service.append({"type": "websocket.receive", "text": orjson.dumps(start).decode()})

    async def _commit(self) -> None:
        if not self._started:
            await self._error("input_audio_buffer_commit_empty", "no audio to commit")
            return
        seq = self._next_seq
        if seq not in self._committed_items:
            self._committed_items.add(seq)
            await self._committed(seq)
        self._to_service.append(_FINALIZE)

    # ---- service -> client ---------------------------------------------------------

    async def send_text(self, data: str) -> None:
        event = orjson.loads(data)
        kind = event.get("event")
        if kind == "transcript":
            await self._on_transcript(event)
        elif kind == "transcription_started":
            await self._session_updated()
        elif kind == "error":
            await self._emit(
                error_event(
                    self._ids.next(),
                    event["code"],
                    event["message"],
                    server=event["code"] in ("internal_error", "backend_error"),
                )
            )
        elif kind == "reconnect":
            await self._error("server_restarting", "the server is restarting: connect again")
        # audio_committed, transcription_stopped: nothing in OpenAI's events.

    async def _on_transcript(self, event: dict[str, Any]) -> None:
        # OpenAI's deltas only append, and together they make the completed transcript,
        # while an interim hypothesis may be revised by the next: the text goes out as
        # one delta when it is final.
        if not event["is_final"]:
            return
        alternatives = event["alternatives"]
        text = alternatives[0]["transcript"] if alternatives else ""
        seq = event["seq"]
        if seq not in self._committed_items:
            await self._committed(seq)
        self._committed_items.discard(seq)
        self._next_seq = seq + 1
        if text:
            await self._delta(seq, text)
        seconds = max(0, event["end_ms"] - event["start_ms"]) / 1000
        await self._emit(
            {
                "type": "conversation.item.input_audio_transcription.completed",
                "event_id": self._ids.next(),
                "item_id": self._item_id(seq),
                "content_index": 0,
                "transcript": text,
                "usage": {"type": "duration", "seconds": seconds},
            }
        )

    async def _committed(self, seq: int) -> None:
        await self._emit(
            {
                "type": "input_audio_buffer.committed",
                "event_id": self._ids.next(),
                "previous_item_id": self._item_id(seq - 1) if seq > 1 else None,
                "item_id": self._item_id(seq),
            }
        )

    async def _delta(self, seq: int, delta: str) -> None:
        await self._emit(
            {
                "type": "conversation.item.input_audio_transcription.delta",
                "event_id": self._ids.next(),
                "item_id": self._item_id(seq),
                "content_index": 0,
                "delta": delta,
            }
        )

    async def _session_updated(self) -> None:
        await self._emit({"type": "session.updated", "event_id": self._ids.next(),
                          "session": session_object(self.session_id, self._config)})  # fmt: skip

    async def _error(self, code: str, message: str) -> None:
        await self._emit(error_event(self._ids.next(), code, message))

    async def _emit(self, event: dict[str, Any]) -> None:
        try:
            await self._send({"type": "websocket.send", "text": orjson.dumps(event).decode()})
        except OSError as exc:  # the server's ClientDisconnected
            raise ClientGone() from exc

    async def close(self, code: int = 1000, reason: str | None = None) -> None:
        try:
            await self._send({"type": "websocket.close", "code": code, "reason": reason or ""})
        except OSError as exc:
            raise ClientGone() from exc
