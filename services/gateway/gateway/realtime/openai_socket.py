"""A `ClientSocket` that speaks OpenAI's realtime transcription events on the socket and the
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
from starlette.types import Receive, Send

from gateway.protocol import TranscriptionConfig
from gateway.realtime.openai_events import (
    EventIds,
    UnsupportedSession,
    beta_session_object,
    config_from_session,
    error_event,
    session_object,
)
from gateway.sessions.client_socket import ClientGone

Message = MutableMapping[str, Any]
_FINALIZE: Message = {"type": "websocket.receive", "text": '{"type":"finalize"}'}


_STOP: Message = {"type": "websocket.receive", "text": '{"type":"stop_transcription"}'}


def strip_wav_header(audio: bytes) -> bytes:
    """The samples of a WAV file's first bytes (Riva NIM's clients may send the file)."""
    at = audio.find(b"data", 12)
    return audio[at + 8 :] if audio.startswith(b"RIFF") and at >= 0 else audio


class OpenAIRealtimeSocket:
    """`riva`: the client is NVIDIA's `riva.client.realtime` (it offered the token
    sub-protocol of `POST /v1/realtime/transcription_sessions`), whose events mean a
    little else: `commit` after every append (no end of utterance), `runtime_config`
    `force_eou` on an append for that, `input_audio_buffer.done` at the end, and a last
    `completed` with `is_last_result`."""

    def __init__(
        self, receive: Receive, send: Send, session_id: str, *, riva: bool = False
    ) -> None:
        # The accepted socket's ASGI callables, as `AsgiSocket` takes them.
        self._receive = receive
        self._send = send
        self.session_id = session_id
        self._ids = EventIds(session_id)
        self._config = TranscriptionConfig(sample_rate_hz=24000)
        self._to_service: deque[Message] = deque()
        self._started = False
        self._next_seq = 1  # the seq, and so the item, of the next final
        self._committed_items: set[int] = set()
        self._riva = riva
        self._beta = False  # configured by `transcription_session.update`
        self._audio_seen = False
        self._finals: list[str] = []
        # The session service calls `receive` (an attribute, as in `ClientSocket`).
        self.receive: Callable[[], Awaitable[Message]] = self._next_message

    def _item_id(self, seq: int) -> str:
        return f"item_{self.session_id}_{seq}"

    async def open(self) -> None:
        """Greet the client as its server would: `session.created` (OpenAI) or
        `conversation.created` (Riva NIM)."""
        if self._riva:
            conversation = {"id": self.session_id, "object": "realtime.conversation"}
            await self._emit({"type": "conversation.created", "event_id": self._ids.next(),
                              "conversation": conversation})  # fmt: skip
            return
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
            if kind == "input_audio_buffer.append":
                await self._append(event)
            elif kind in ("session.update", "transcription_session.update"):
                self._beta = kind == "transcription_session.update"
                await self._configure(event.get("session") or {})
            elif kind == "input_audio_buffer.commit":
                if not self._riva:  # Riva's clients commit every chunk: nothing to do
                    await self._commit()
            elif kind == "input_audio_buffer.done":
                self._start_if_needed()
                self._to_service.append(_STOP)
            elif kind == "input_audio_buffer.clear":
                # Audio is streamed to the recogniser as it comes: what was sent is heard.
                await self._emit(
                    {"type": "input_audio_buffer.cleared", "event_id": self._ids.next()}
                )
            else:
                await self._error("unsupported_event", f"{str(kind)[:64]} is not supported here")
        except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError):
            # Not an object, or a field of the wrong shape (`"session": []`): the client's
            # mistake, not an internal error of the gateway.
            await self._error("invalid_event", "events are JSON objects with a type")

    async def _append(self, event: dict[str, Any]) -> None:
        try:
            audio = base64.b64decode(event.get("audio") or "", validate=True)
        except (binascii.Error, ValueError):
            await self._error("invalid_audio", "audio must be base64")
            return
        if not self._audio_seen:
            self._audio_seen = True
            audio = strip_wav_header(audio)
        self._start_if_needed()
        if audio:
            self._to_service.append({"type": "websocket.receive", "bytes": audio})
        if str((event.get("runtime_config") or {}).get("force_eou", "")).lower() == "true":
            self._to_service.append(_FINALIZE)

    async def _configure(self, session: dict[str, Any]) -> None:
        try:
            config = config_from_session(session)
        except UnsupportedSession as exc:
            await self._error("invalid_session", str(exc))
            return
        except ValueError:  # pydantic's text echoes the input and links its docs
            await self._error("invalid_session", "a session field has a wrong type or value")
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
        elif kind == "transcription_stopped" and self._riva:
            await self._completed(
                f"item_{self.session_id}_last", " ".join(self._finals), 0.0, [], last=True
            )
        elif kind == "reconnect":
            await self._error("server_restarting", "the server is restarting: connect again")
        # audio_committed: nothing in OpenAI's events.

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
        words = (alternatives[0].get("words") or []) if alternatives else []
        if text:
            self._finals.append(text)
        await self._completed(self._item_id(seq), text, seconds, words, last=False)

    async def _completed(
        self, item_id: str, text: str, seconds: float, words: list[dict[str, Any]], *, last: bool
    ) -> None:
        completed: dict[str, Any] = {
            "type": "conversation.item.input_audio_transcription.completed",
            "event_id": self._ids.next(),
            "item_id": item_id,
            "content_index": 0,
            "transcript": text,
            "usage": {"type": "duration", "seconds": seconds},
        }
        if self._riva:
            completed["is_last_result"] = last
            completed["words_info"] = {
                "words": [
                    {"word": w["word"], "start_time": w["start_ms"], "end_time": w["end_ms"],
                     "confidence": w["confidence"], "speaker_tag": w.get("speaker") or 0}
                    for w in words
                ]
            }  # fmt: skip
        await self._emit(completed)

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
        if self._beta:
            session = beta_session_object(self.session_id, self._config)
            kind = "transcription_session.updated"
        else:
            session, kind = session_object(self.session_id, self._config), "session.updated"
        await self._emit({"type": kind, "event_id": self._ids.next(), "session": session})

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
