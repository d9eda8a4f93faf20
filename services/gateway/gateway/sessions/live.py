"""One streaming session on this pod: the hot path from socket to Riva and back.

Per audio frame the gateway does the two unavoidable hops (socket read, gRPC write) and a
few integer operations: no Redis call, no log line, no metric update, no timer. Rate and
idle limits are enforced from the pod's housekeeping tick (`SessionRegistry`), which
moves each session's byte allowance and idle deadline once a second.

Offsets: the session's audio is counted in bytes from its start (across resumes). Each
backend stream starts at some offset (`_base_byte`): the session start, a `finalize`, or,
after a backend failure, the end of the last final, from where the gateway's replay
buffer re-sends the audio to a new stream on another endpoint.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from typing import Any, Final, Protocol

import grpc
import orjson
from pydantic import ValidationError
from riva.client.proto import riva_asr_pb2 as asr

from gateway.backends.balancer import Endpoint
from gateway.backends.riva import RivaBackend, RivaClient, StreamCall
from gateway.backends.riva_config import streaming_config
from gateway.config import LimitSettings
from gateway.errors import Fenced, RecordLost, SessionError, StoreUnavailable
from gateway.observability import metrics
from gateway.protocol import (
    CloseCode,
    ErrorCode,
    Finalize,
    Keepalive,
    StopTranscription,
    TranscriptionConfig,
    client_message_adapter,
)
from gateway.sessions.replay import ReplayBuffer
from gateway.sessions.results import transcript_event
from gateway.store.redis_store import SessionStore

log = logging.getLogger(__name__)

_Request = asr.StreamingRecognizeRequest


class Transport(Protocol):
    """What a session needs of its socket (an ASGI WebSocket fits)."""

    async def receive(self) -> Mapping[str, Any]: ...

    async def send_text(self, data: str) -> None: ...

    async def close(self, code: int = 1000, reason: str | None = None) -> None: ...


class ClientGone(Exception):
    """The client closed the socket or the connection dropped."""


class _Marker:
    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name


# Markers in the audio queue: end the current backend stream (its pending utterance
# becomes final) and either start a fresh one (FINALIZE) or finish the session (STOP).
FINALIZE: Final = _Marker("finalize")
STOP: Final = _Marker("stop")

_BACKEND_RETRYABLE = {
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
    grpc.StatusCode.DEADLINE_EXCEEDED,
}
# A stream that failed with one of these is replayed on another endpoint. INTERNAL and
# UNKNOWN are what a peer that died mid-call (or grpc/grpc#36066) may leave behind.
_FAILOVER = _BACKEND_RETRYABLE | {
    grpc.StatusCode.INTERNAL,
    grpc.StatusCode.UNKNOWN,
    grpc.StatusCode.CANCELLED,
}
# Finals kept for Redis while it is unreachable; past this the oldest are only sent.
_MAX_PENDING_FINALS = 1000


def _dumps(event: Mapping[str, Any]) -> str:
    return orjson.dumps(event).decode()


class LiveSession:
    def __init__(
        self,
        *,
        session_id: str,
        config: TranscriptionConfig,
        transport: Transport,
        store: SessionStore,
        backend: RivaBackend,
        limits: LimitSettings,
        epoch: int,
        resume_token: str,
        seq: int = 0,
        base_ms: int = 0,
        resent_ms: int = 0,
    ) -> None:
        self.session_id = session_id
        self.resume_token = resume_token
        self.config = config
        self.transport = transport
        self._store = store
        self._backend = backend
        self._limits = limits
        self.epoch = epoch
        self._stream_config = streaming_config(config)
        self._bytes_per_ms = config.bytes_per_ms
        self._queue: asyncio.Queue[bytes | _Marker] = asyncio.Queue(limits.audio_queue_frames)

        # Counters the hot path touches; everything else reads them.
        self.rx_messages = 0
        self.rx_bytes = 0
        self.rx_allowed: float = float("inf")
        self._stream_bytes = 0
        self._stream_audio_ms = 0

        self.seq = seq  # last final's seq
        self.session_start_ms = base_ms  # session audio offset where this connection began
        self._burst_ms = limits.audio_burst_s * 1000 + resent_ms
        self._base_byte = config.byte_offset(base_ms)  # where the backend stream began
        self._base_ms = base_ms
        self.committed_ms = base_ms  # covered by persisted finals
        self._final_end_ms = base_ms  # covered by finals sent (persisted or not)
        self._replay = ReplayBuffer(self._base_byte, config.byte_offset(limits.replay_max_ms))
        self._utterance_start: dict[int, int] = {}
        self._channel_final_end: dict[int, int] = {}
        self._pending: list[tuple[int, str]] = []
        self._persist_lock = asyncio.Lock()
        self._end_marker: _Marker | None = None
        self.stopping = False
        self.finished = False
        self._abort: asyncio.Future[SessionError] = asyncio.get_running_loop().create_future()

        # Housekeeping state (see SessionRegistry.tick).
        self.started_at = asyncio.get_running_loop().time()
        self.seen_messages = -1
        self._idle: asyncio.Timeout | None = None

    # ---- what the housekeeping tick does -------------------------------------------------

    def tick(self, now: float) -> None:
        limits = self._limits
        if self._bytes_per_ms:
            # Allowance for the next tick too, so the bound never bites early.
            allowed_ms = self._burst_ms + limits.max_realtime_factor * (
                (now - self.started_at) * 1000 + 1000
            )
            self.rx_allowed = allowed_ms * self._bytes_per_ms
        if self.rx_messages != self.seen_messages:
            self.seen_messages = self.rx_messages
            if self._idle is not None:
                self._idle.reschedule(now + limits.idle_timeout_s)

    @property
    def audio_ms(self) -> int:
        """Session audio received so far, in ms from the session's start."""
        if self._bytes_per_ms:
            return self.session_start_ms + int(self.rx_bytes / self._bytes_per_ms)
        return self._base_ms + self._stream_audio_ms

    # ---- the session ---------------------------------------------------------------------

    def abort(self, error: SessionError) -> None:
        """End the session from outside (takeover, drain deadline) with `error`."""
        if not self._abort.done():
            self._abort.set_result(error)

    async def run(self) -> None:
        """Stream until stop (returns), or raise SessionError / ClientGone."""
        self.tick(self.started_at)
        async with asyncio.TaskGroup() as tg:
            reader = tg.create_task(self._read_client())
            watcher = tg.create_task(self._raise_on_abort())
            await self._pump_backend()
            reader.cancel()
            watcher.cancel()

    async def _raise_on_abort(self) -> None:
        raise await self._abort

    async def send_reconnect(self, reason: str) -> None:
        await self.transport.send_text(
            _dumps({"event": "reconnect", "reason": reason, "resume_token": self.resume_token})
        )

    async def _read_client(self) -> None:
        receive = self.transport.receive
        queue = self._queue
        max_frame = self._limits.max_frame_bytes
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout_at(loop.time() + self._limits.idle_timeout_s) as idle:
                self._idle = idle
                while True:
                    message = await receive()
                    self.rx_messages += 1
                    data = message.get("bytes")
                    if data is not None:
                        size = len(data)
                        if size > max_frame:
                            raise SessionError(
                                ErrorCode.FRAME_TOO_LARGE,
                                f"audio frame of {size} bytes is over the limit of {max_frame}",
                                close_code=CloseCode.TOO_LARGE,
                            )
                        if self.stopping:
                            await self.send_error(
                                ErrorCode.INVALID_MESSAGE, "audio after stop_transcription"
                            )
                            continue
                        self.rx_bytes += size
                        if self.rx_bytes > self.rx_allowed:
                            raise SessionError(
                                ErrorCode.AUDIO_TOO_FAST,
                                "audio arrives faster than "
                                f"{self._limits.max_realtime_factor}x real time "
                                f"beyond a {self._limits.audio_burst_s} s burst",
                                close_code=CloseCode.POLICY,
                            )
                        if size:
                            if queue.full():
                                # Backpressure: stop reading the socket until Riva takes more.
                                await queue.put(data)
                            else:
                                queue.put_nowait(data)
                    elif message["type"] == "websocket.disconnect":
                        raise ClientGone()
                    else:
                        await self._on_control(message.get("text") or "")
        except TimeoutError:
            raise SessionError(
                ErrorCode.SESSION_EXPIRED,
                f"no audio or keepalive for {self._limits.idle_timeout_s:g} s; "
                "the session can be resumed",
                retryable=True,
                close_code=CloseCode.POLICY,
            ) from None

    async def _on_control(self, text: str) -> None:
        try:
            message = client_message_adapter.validate_json(text)
        except ValidationError as exc:
            await self.send_error(ErrorCode.INVALID_MESSAGE, describe_validation_error(exc))
            return
        if isinstance(message, Keepalive):
            return
        if self.stopping:
            await self.send_error(ErrorCode.INVALID_MESSAGE, "the session is stopping")
        elif isinstance(message, Finalize):
            await self._queue.put(FINALIZE)
        elif isinstance(message, StopTranscription):
            self.stopping = True
            await self._queue.put(STOP)
        else:
            await self.send_error(
                ErrorCode.INVALID_MESSAGE, f"{message.type} is not allowed: the session is live"
            )

    async def _write_audio(
        self, call: StreamCall, replay: list[bytes], end_marker: _Marker | None
    ) -> None:
        """Feed one backend stream: its config, the replayed audio, then the queue until a
        marker. Its own task, so that a failed stream's writer is stopped for certain
        before the next stream takes frames from the queue."""
        write = call.write
        try:
            await write(_Request(streaming_config=self._stream_config))
            for frame in replay:
                self._stream_bytes += len(frame)
                await write(_Request(audio_content=frame))
            if end_marker is None:
                queue = self._queue
                keep = self._replay.append if self._bytes_per_ms else None
                while True:
                    item = queue.get_nowait() if queue.qsize() else await queue.get()
                    if type(item) is not bytes:
                        assert isinstance(item, _Marker)
                        end_marker = item
                        break
                    self._stream_bytes += len(item)
                    if keep is not None:
                        keep(item)
                    await write(_Request(audio_content=item))
            self._end_marker = end_marker
            await call.done_writing()
        except (grpc.aio.AioRpcError, asyncio.InvalidStateError):
            # The call ended: its response side reports how.
            return

    async def _pump_backend(self) -> None:
        """Run backend streams until stop: a new one after each `finalize`, and after a
        failed one, on another endpoint, replaying the audio after the last final."""
        replay: list[bytes] = []
        carry: _Marker | None = None  # a marker the failed stream's writer had taken
        failed: Endpoint[RivaClient] | None = None
        failures = 0
        while True:
            self._end_marker = None
            self._stream_bytes = 0
            self._stream_audio_ms = 0
            endpoint, call = self._backend.open_stream(exclude=failed)
            writer = asyncio.create_task(self._write_audio(call, replay, carry))
            try:
                async for response in call:
                    for result in response.results:
                        if result.alternatives:
                            await self._on_result(result)
                    failures = 0
            except grpc.aio.AioRpcError as exc:
                if exc.code() not in _FAILOVER:
                    raise backend_error(exc) from None
                self._backend.balancer.mark_failed(endpoint)
                failures += 1
                if failures > len(self._backend.balancer.endpoints):
                    raise backend_error(exc) from None
                log.warning(
                    "session %s: stream on %s failed (%s); failing over",
                    self.session_id,
                    endpoint.target,
                    exc.code().name,
                )
                replay, carry, failed = (
                    self._replay_after_last_final(exc),
                    self._end_marker,
                    endpoint,
                )
                continue
            finally:
                writer.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await writer
                self._backend.release(endpoint)
                call.cancel()
            if self._end_marker is STOP:
                break
            if self._end_marker is FINALIZE:
                # The next stream starts where this one's audio ended.
                replay, carry, failed = [], None, None
                if self._bytes_per_ms:
                    self._start_stream_at(self._base_byte + self._stream_bytes, None)
                else:
                    self._start_stream_at(0, self._base_ms + self._stream_audio_ms)
            else:
                # The backend ended the stream on its own: go on in a new one.
                replay, carry, failed = self._replay_after_last_final(None), None, None
        await self._finish()

    def _replay_after_last_final(self, cause: grpc.aio.AioRpcError | None) -> list[bytes]:
        """The audio after the last final, from which the next stream starts: the
        unfinished utterance is recognised again, and the client sees a delay, not an
        error or a duplicate."""
        restart = self.config.byte_offset(self._final_end_ms)
        if not self._bytes_per_ms or not self._replay.covers(restart):
            if cause is not None:
                raise backend_error(cause)
            raise SessionError(
                ErrorCode.BACKEND_ERROR,
                "the speech backend ended the stream and its audio cannot be replayed",
                retryable=True,
                close_code=CloseCode.INTERNAL,
            )
        replay = self._replay.since(restart)
        self._replay.reset(restart)
        for frame in replay:
            self._replay.append(frame)
        self._start_stream_at(restart, self._final_end_ms)
        return replay

    def _start_stream_at(self, byte_offset: int, ms: int | None) -> None:
        self._base_byte = byte_offset
        self._base_ms = ms if ms is not None else round(byte_offset / self._bytes_per_ms)
        self._utterance_start.clear()

    async def _on_result(self, result: asr.StreamingRecognitionResult) -> None:
        channel = result.channel_tag
        processed_ms = round(result.audio_processed * 1000)
        if processed_ms > self._stream_audio_ms:
            self._stream_audio_ms = processed_ms
        is_final = result.is_final
        if is_final and not result.alternatives[0].transcript.strip():
            return
        event = transcript_event(
            result,
            seq=self.seq + 1,
            base_ms=self._base_ms,
            utterance_start_ms=self._utterance_start.get(channel, self._base_ms),
            with_words=self.config.enable_word_time_offsets,
        )
        payload = _dumps(event)
        if not is_final:
            await self.transport.send_text(payload)
            return
        self.seq += 1
        end_ms = event["end_ms"]
        self._utterance_start[channel] = end_ms
        self._channel_final_end[channel] = end_ms
        final_end = self._commit_point()
        if final_end > self._final_end_ms:
            self._final_end_ms = final_end
            if self._bytes_per_ms:
                self._replay.trim(self.config.byte_offset(final_end))
        self._pending.append((self.seq, payload))
        if len(self._pending) > _MAX_PENDING_FINALS:
            del self._pending[0]
        metrics.FINALS.inc()
        # Persisted before sent: a resume replays exactly what the client may have missed.
        persisted = await self.persist()
        await self.transport.send_text(payload)
        if persisted:
            await self.transport.send_text(
                _dumps({"event": "audio_committed", "committed_ms": self.committed_ms})
            )

    def _commit_point(self) -> int:
        # With several channels, audio is covered only up to the channel furthest behind.
        if len(self._channel_final_end) < self.config.channels:
            return self._final_end_ms
        return max(self._final_end_ms, min(self._channel_final_end.values()))

    async def persist(self) -> bool:
        """Write pending finals to Redis; False if Redis is unavailable (kept for later)."""
        async with self._persist_lock:
            if not self._pending:
                return True
            committed = self._final_end_ms
            try:
                await self._store.append_finals(
                    self.session_id,
                    epoch=self.epoch,
                    finals=self._pending,
                    committed_ms=committed,
                    audio_ms=self.audio_ms,
                    ttl_s=self._limits.session_ttl_s,
                )
            except (StoreUnavailable, RecordLost) as exc:
                log.warning("session %s: finals not persisted yet: %r", self.session_id, exc)
                return False
            except Fenced:
                raise session_taken_over() from None
            self._pending.clear()
            self.committed_ms = committed
            return True

    async def _finish(self) -> None:
        if not await self.persist():
            raise SessionError(
                ErrorCode.INTERNAL_ERROR,
                "the session store is unavailable: the last finals were sent but not persisted",
                retryable=True,
                close_code=CloseCode.TRY_AGAIN_LATER,
            )
        try:
            await self._store.set_state(
                self.session_id,
                epoch=self.epoch,
                state="stopped",
                audio_ms=self.audio_ms,
                ttl_s=self._limits.session_ttl_s,
            )
        except (StoreUnavailable, RecordLost) as exc:
            log.warning("session %s: stopped state not persisted: %r", self.session_id, exc)
        except Fenced:
            raise session_taken_over() from None
        self.finished = True
        await self.transport.send_text(
            _dumps(
                {
                    "event": "transcription_stopped",
                    "session_id": self.session_id,
                    "audio_ms": self.audio_ms,
                    "finals": self.seq,
                }
            )
        )
        with contextlib.suppress(Exception):
            await self.transport.close(CloseCode.NORMAL)

    async def send_error(self, code: ErrorCode, message: str) -> None:
        await self.transport.send_text(_dumps(SessionError(code, message).event()))


def session_taken_over() -> SessionError:
    """Another connection resumed the session: this one closes with 1012, no event."""
    return SessionError(
        ErrorCode.SESSION_EXISTS,
        "another connection resumed this session",
        close_code=CloseCode.RESTARTING,
        notify=False,
    )


def backend_error(exc: grpc.aio.AioRpcError) -> SessionError:
    code = exc.code()
    detail = exc.details() or code.name
    if code == grpc.StatusCode.INVALID_ARGUMENT:
        return SessionError(
            ErrorCode.INVALID_CONFIG,
            f"the speech backend rejected the configuration: {detail}",
            close_code=CloseCode.POLICY,
        )
    if code in _BACKEND_RETRYABLE:
        return SessionError(
            ErrorCode.BACKEND_UNAVAILABLE,
            f"no speech backend available: {detail}",
            retryable=True,
            close_code=CloseCode.TRY_AGAIN_LATER,
            retry_after_s=1.0,
        )
    return SessionError(
        ErrorCode.BACKEND_ERROR,
        f"speech backend error ({code.name}): {detail}",
        close_code=CloseCode.INTERNAL,
    )


_MESSAGE_TYPES = {
    "start_transcription",
    "resume_transcription",
    "finalize",
    "keepalive",
    "stop_transcription",
}


def describe_validation_error(exc: ValidationError) -> str:
    """A short message naming each offending field (and any unknown one)."""
    parts = []
    for error in exc.errors(include_url=False)[:5]:
        path = [str(p) for p in error["loc"]]
        if path and path[0] in _MESSAGE_TYPES:  # the union's tag, not a field
            path = path[1:]
        loc = ".".join(path) or "message"
        if error["type"] == "extra_forbidden":
            parts.append(f"unknown field '{loc}'")
        elif error["type"] == "json_invalid":
            parts.append("not valid JSON")
        else:
            parts.append(f"{loc}: {error['msg']}")
    return "; ".join(parts)
