"""One streaming session on this pod: the hot path from socket to Riva and back.

Per audio frame the gateway does the two unavoidable hops (socket read, gRPC write into
the session's stream, see `BackendFeed`) and a few integer operations: no Redis call, no
log line, no metric update, no timer, no task switch. Rate and idle limits are moved
from the pod's housekeeping tick (`SessionRegistry.tick`), once a second for all
sessions. Two tasks per session: the reader (socket to Riva) and the runner (Riva's
results to the socket, through Redis for finals).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Mapping
from typing import Any

import orjson
from pydantic import ValidationError
from riva.client.proto import riva_asr_pb2 as asr

from gateway.backends.riva import RivaBackend
from gateway.config import LimitSettings
from gateway.errors import Fenced, RecordLost, SessionError, StoreUnavailable
from gateway.observability import metrics
from gateway.observability.fold import FOLDER
from gateway.protocol import (
    CloseCode,
    ErrorCode,
    Finalize,
    Keepalive,
    StopTranscription,
    TranscriptionConfig,
    TranscriptionStopped,
    client_message_adapter,
)
from gateway.sessions.failures import describe_validation_error, session_taken_over
from gateway.sessions.feed import FINALIZE, STOP, WRITE_ERRORS, BackendFeed, Request
from gateway.sessions.results import transcript_event
from gateway.sessions.transport import ClientGone, Transport
from gateway.store.redis_store import SessionStore

log = logging.getLogger(__name__)

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
        self._limits = limits
        self.epoch = epoch
        self._bytes_per_ms = config.bytes_per_ms
        self.feed = BackendFeed(
            session_id=session_id,
            config=config,
            backend=backend,
            on_result=self._on_result,
            base_ms=base_ms,
            held_limit=limits.audio_queue_frames,
            replay_limit_ms=limits.replay_max_ms,
        )

        # Counters the hot path touches; the housekeeping tick reads them.
        self.rx_messages = 0
        self.rx_bytes = 0
        self.rx_allowed: float = float("inf")

        self.seq = seq  # last final's seq
        self.session_start_ms = base_ms  # session audio offset where this connection began
        self._burst_ms = limits.audio_burst_s * 1000 + resent_ms
        self.committed_ms = base_ms  # covered by persisted finals
        self._utterance_start: dict[int, int] = {}
        self._channel_final_end: dict[int, int] = {}
        self._pending: list[tuple[int, str]] = []
        self._persist_lock = asyncio.Lock()
        self.stopping = False
        self.finished = False
        self._abort_error: SessionError | None = None
        self._runner: asyncio.Task[Any] | None = None

        loop = asyncio.get_running_loop()
        self.started_at = loop.time()
        self._seen_messages = -1
        self._idle: asyncio.Timeout | None = None
        self._idle_deadline = self.started_at + limits.idle_timeout_s

    # ---- what the housekeeping tick does -------------------------------------------------

    def tick(self, now: float) -> None:
        limits = self._limits
        if self._bytes_per_ms:
            # Allowance for the next tick too, so the bound never bites early.
            allowed_ms = self._burst_ms + limits.max_realtime_factor * (
                (now - self.started_at) * 1000 + 1000
            )
            self.rx_allowed = allowed_ms * self._bytes_per_ms
        if self.rx_messages != self._seen_messages:
            self._seen_messages = self.rx_messages
            # Moving a timer costs a heap operation: move it only when it is half spent.
            if self._idle is not None and self._idle_deadline - now < limits.idle_timeout_s / 2:
                self._idle_deadline = now + limits.idle_timeout_s
                self._idle.reschedule(self._idle_deadline)

    @property
    def audio_ms(self) -> int:
        """Session audio received so far, in ms from the session's start."""
        if self._bytes_per_ms:
            return self.session_start_ms + int(self.rx_bytes / self._bytes_per_ms)
        return self.feed.base_ms + self.feed.stream_audio_ms

    # ---- the session ---------------------------------------------------------------------

    def abort(self, error: SessionError) -> None:
        """End the session from outside (takeover, drain deadline) with `error`."""
        if self._abort_error is None:
            self._abort_error = error
            if self._runner is not None:
                self._runner.cancel()

    async def run(self) -> None:
        """Stream until stop (returns), or raise SessionError / ClientGone."""
        self._runner = asyncio.current_task()
        if self._abort_error is not None:
            raise self._abort_error
        self.tick(self.started_at)
        try:
            async with asyncio.TaskGroup() as tg:
                reader = tg.create_task(self._read_client())
                await self.feed.run()
                await self._finish()
                reader.cancel()
        except asyncio.CancelledError:
            if self._abort_error is not None and self._runner is not None:
                self._runner.uncancel()
                raise self._abort_error from None
            raise

    async def send_reconnect(self, reason: str) -> None:
        await self.transport.send_text(
            _dumps({"event": "reconnect", "reason": reason, "resume_token": self.resume_token})
        )

    async def _read_client(self) -> None:
        try:
            await self._read_frames()
        except TimeoutError:
            raise SessionError(
                ErrorCode.SESSION_EXPIRED,
                f"no audio or keepalive for {self._limits.idle_timeout_s:g} s; "
                "the session can be resumed",
                retryable=True,
                close_code=CloseCode.POLICY,
            ) from None

    async def _read_frames(self) -> None:
        receive = self.transport.receive
        feed = self.feed
        keep = feed.keep
        max_frame = self._limits.max_frame_bytes
        async with asyncio.timeout_at(self._idle_deadline) as self._idle:
            while True:
                message = await receive()
                self.rx_messages += 1
                data = message.get("bytes")
                if data is None:
                    if message["type"] == "websocket.disconnect":
                        raise ClientGone()
                    await self._on_control(message.get("text") or "")
                    continue
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
                    raise self._too_fast()
                if not size:
                    continue
                call = feed.call
                if call is None:
                    await feed.hold(data)
                    continue
                feed.stream_bytes += size
                keep(data)
                try:
                    await call.write(Request(audio_content=data))
                except WRITE_ERRORS:
                    # The frame is in the replay buffer; the runner fails over.
                    feed.write_failed(call)

    def _too_fast(self) -> SessionError:
        return SessionError(
            ErrorCode.AUDIO_TOO_FAST,
            f"audio arrives faster than {self._limits.max_realtime_factor}x real time "
            f"beyond a {self._limits.audio_burst_s} s burst",
            close_code=CloseCode.POLICY,
        )

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
            await self.feed.end_stream(FINALIZE)
        elif isinstance(message, StopTranscription):
            self.stopping = True
            await self.feed.end_stream(STOP)
        else:
            await self.send_error(
                ErrorCode.INVALID_MESSAGE, f"{message.type} is not allowed: the session is live"
            )

    async def _on_result(self, result: asr.StreamingRecognitionResult) -> None:
        received_at = time.perf_counter()
        feed = self.feed
        channel = result.channel_tag
        processed_ms = round(result.audio_processed * 1000)
        if processed_ms > feed.stream_audio_ms:
            feed.stream_audio_ms = processed_ms
        is_final = result.is_final
        if is_final and not result.alternatives[0].transcript.strip():
            return
        event = transcript_event(
            result,
            seq=self.seq + 1,
            base_ms=feed.base_ms,
            utterance_start_ms=self._utterance_start.get(channel, feed.base_ms),
            with_words=self.config.enable_word_time_offsets,
        )
        payload = _dumps(event)
        if not is_final:
            await self.transport.send_text(payload)
            FOLDER.interim_sent(self, received_at, len(payload))
            return
        self.seq += 1
        end_ms = event["end_ms"]
        self._utterance_start[channel] = end_ms
        self._channel_final_end[channel] = end_ms
        if len(self._channel_final_end) >= self.config.channels:
            # With several channels, audio is covered up to the channel furthest behind.
            feed.final_sent(min(self._channel_final_end.values()))
        self._pending.append((self.seq, payload))
        if len(self._pending) > _MAX_PENDING_FINALS:
            del self._pending[0]
        metrics.FINALS.inc()
        # Persisted before sent: a resume replays exactly what the client may have missed.
        persisted = await self.persist()
        await self.transport.send_text(payload)
        FOLDER.final_sent(self, received_at, end_ms, len(payload))
        if persisted:
            await self.transport.send_text(
                _dumps({"event": "audio_committed", "committed_ms": self.committed_ms})
            )

    async def persist(self) -> bool:
        """Write pending finals to Redis; False if Redis is unavailable (kept for later)."""
        async with self._persist_lock:
            if not self._pending:
                return True
            committed = self.feed.final_end_ms
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
            await self.save_state("stopped")
        except (StoreUnavailable, RecordLost) as exc:
            log.warning("session %s: stopped state not persisted: %r", self.session_id, exc)
        except Fenced:
            raise session_taken_over() from None
        self.finished = True
        stopped = TranscriptionStopped(
            session_id=self.session_id, audio_ms=self.audio_ms, finals=self.seq
        )
        await self.transport.send_text(stopped.model_dump_json())
        with contextlib.suppress(Exception):
            await self.transport.close(CloseCode.NORMAL)

    async def save_state(self, state: str) -> None:
        """Record the session's state and audio offset (fenced by this driver's epoch)."""
        limits = self._limits
        await self._store.set_state(
            self.session_id,
            epoch=self.epoch,
            state=state,
            audio_ms=self.audio_ms,
            ttl_s=limits.stopped_ttl_s if state == "stopped" else limits.session_ttl_s,
        )

    async def send_error(self, code: ErrorCode, message: str) -> None:
        await self.transport.send_text(_dumps(SessionError(code, message).event()))
