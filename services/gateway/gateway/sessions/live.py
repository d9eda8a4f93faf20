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
from collections import deque
from collections.abc import Mapping
from typing import Any

import orjson
from pydantic import ValidationError
from riva.client.proto import riva_asr_pb2 as asr

from gateway.auth.principal import public_id
from gateway.backends.riva import RivaBackend
from gateway.config import LimitSettings
from gateway.errors import Fenced, LogGap, RecordLost, SessionError, StoreUnavailable
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
from gateway.sessions.activity import IdleClock
from gateway.sessions.client_socket import ClientGone, ClientSocket
from gateway.sessions.commit import ChannelCommits
from gateway.sessions.failures import (
    backend_hung,
    describe_validation_error,
    finals_not_persisted,
    log_lost,
    session_expired,
    session_taken_over,
    slow_consumer,
    text_too_large,
)
from gateway.sessions.feed import FINALIZE, STOP, WRITE_ERRORS, BackendFeed, Request
from gateway.sessions.lifecycle import SessionState
from gateway.sessions.results import transcript_event
from gateway.store.redis_store import SessionSnapshot, SessionStore, hash_token

log = logging.getLogger(__name__)

# A backend stream that ends after this long without audio was released for quiet (Riva
# ends streams that get no audio), not failed.
_RELEASE_QUIET_S = 2.0


def _dumps(event: Mapping[str, Any]) -> str:
    return orjson.dumps(event).decode()


class LiveSession:
    def __init__(
        self,
        *,
        session_id: str,
        config: TranscriptionConfig,
        transport: ClientSocket,
        store: SessionStore,
        backend: RivaBackend,
        limits: LimitSettings,
        owner: str,
        epoch: int,
        resume_token: str,
        seq: int = 0,
        base_ms: int = 0,
        resent_ms: int = 0,
        channel_ends: str = "",
    ) -> None:
        self.session_id = session_id
        self.resume_token = resume_token
        self.owner = owner
        self.config = config
        self._config_json = config.model_dump_json()
        self.transport = transport
        self._store = store
        self._limits = limits
        self.epoch = epoch
        self._bytes_per_ms = config.bytes_per_ms
        self._rate_bytes_per_ms = config.rate_bound_bytes_per_ms
        self.feed = BackendFeed(
            session_id=session_id,
            config=config,
            backend=backend,
            on_result=self._on_result,
            base_ms=base_ms,
            held_limit=limits.audio_queue_frames,
            held_max_bytes=limits.held_max_bytes,
            replay_limit_ms=limits.replay_max_ms,
            replay_max_bytes=limits.replay_max_bytes,
            response_timeout_s=limits.backend_response_timeout_s,
            release_quiet_s=_RELEASE_QUIET_S,
        )

        # Counters the hot path touches; the housekeeping tick reads them.
        self.rx_messages = 0
        self.rx_bytes = 0
        self.rx_allowed: float = float("inf")
        # Sends begun and finished: a send that does not finish is a client not reading.
        self.tx_begun = 0
        self.tx_done = 0

        self.seq = seq  # last final's seq
        self.session_start_ms = base_ms  # session audio offset where this connection began
        self._burst_ms = limits.audio_burst_s * 1000 + resent_ms
        self.committed_ms = base_ms  # covered by persisted finals
        self.commits = ChannelCommits(config.channels, base_ms, channel_ends)
        self._pending: list[tuple[int, str]] = []  # finals not yet persisted
        # The last persisted finals: what Redis may yet lose (AOF written once a second, a
        # replica behind its primary) and this driver can then restore.
        self._recent: deque[tuple[int, str]] = deque(maxlen=limits.finals_kept)
        self._persist_lock = asyncio.Lock()
        self.stopping = False
        self.finished = False
        self._abort_error: SessionError | None = None
        self._runner: asyncio.Task[Any] | None = None

        loop = asyncio.get_running_loop()
        self.started_at = loop.time()
        self._idle = IdleClock(limits.idle_timeout_s, self.started_at)
        self._tx_seen = 0
        self._answers_seen = -1
        self._answered_at = self.started_at
        self._tx_moved_at = self.started_at

    # ---- what the housekeeping tick does -------------------------------------------------

    def tick(self, now: float) -> None:
        limits = self._limits
        # Allowance for the next tick too, so the bound never bites early.
        allowed_ms = self._burst_ms + limits.max_realtime_factor * (
            (now - self.started_at) * 1000 + 1000
        )
        self.rx_allowed = allowed_ms * self._rate_bytes_per_ms
        if self.stopping:
            # No more audio comes: the client waits for the last finals, so only a
            # backend that stops answering can end the session now.
            if self.feed.responses != self._answers_seen:
                self._answers_seen = self.feed.responses
                self._answered_at = now
            elif now - self._answered_at >= limits.backend_response_timeout_s:
                self.abort(backend_hung(limits.backend_response_timeout_s))
        elif self._idle.expired(now, self.rx_messages):
            self.abort(session_expired(limits.idle_timeout_s))
        if self.tx_done != self._tx_seen or self.tx_begun == self.tx_done:
            self._tx_seen = self.tx_done
            self._tx_moved_at = now
        elif now - self._tx_moved_at >= limits.slow_consumer_timeout_s:
            self.abort(slow_consumer(limits.slow_consumer_timeout_s))
        self.feed.check(now, self.rx_bytes)

    @property
    def pending_count(self) -> int:
        """Finals sent but not yet persisted."""
        return len(self._pending)

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
        async with asyncio.timeout(self._limits.send_timeout_s):
            await self.transport.send_text(
                _dumps({"event": "reconnect", "reason": reason, "resume_token": self.resume_token})
            )

    async def _read_client(self) -> None:
        receive = self.transport.receive
        feed = self.feed
        keep = feed.keep
        max_frame = self._limits.max_frame_bytes
        max_text = self._limits.max_text_bytes
        while True:
            message = await receive()
            self.rx_messages += 1
            data = message.get("bytes")
            if data is None:
                if message["type"] == "websocket.disconnect":
                    raise ClientGone()
                text = message.get("text") or ""
                if len(text) * 4 > max_text and len(text.encode()) > max_text:
                    raise text_too_large(len(text.encode()), max_text)
                await self._on_control(text)
                continue
            size = len(data)
            if size > max_frame:
                raise SessionError(
                    ErrorCode.FRAME_TOO_LARGE,
                    f"audio frame of {size} bytes is over the limit of {max_frame}",
                    close_code=CloseCode.TOO_LARGE,
                )
            if self.stopping:
                await self.send_error(ErrorCode.INVALID_MESSAGE, "audio after stop_transcription")
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
        commits = self.commits
        is_final = result.is_final
        if not is_final:
            commits.interim(channel)
        elif not result.alternatives[0].transcript.strip():
            return
        elif commits.already_final(channel, feed.base_ms + processed_ms):
            return  # re-recognised after a restart behind this channel's last final
        event = transcript_event(
            result,
            seq=self.seq + 1,
            base_ms=feed.base_ms,
            utterance_start_ms=commits.utterance_start(channel),
            with_words=self.config.enable_word_time_offsets,
        )
        payload = _dumps(event)
        if not is_final:
            await self._send(payload)
            FOLDER.interim_sent(self, received_at, len(payload))
            return
        self.seq += 1
        commits.final(channel, event["end_ms"])
        feed.final_sent(commits.committed_ms)
        self._pending.append((self.seq, payload))
        if len(self._pending) > self._limits.max_pending_finals:
            raise finals_not_persisted(len(self._pending))
        metrics.FINALS.inc()
        # Persisted before sent: a resume replays exactly what the client may have missed.
        persisted = await self.persist()
        await self._send(payload)
        FOLDER.final_sent(self, received_at, event["end_ms"], len(payload))
        if persisted:
            await self._send(
                _dumps({"event": "audio_committed", "committed_ms": self.committed_ms})
            )

    async def _send(self, text: str) -> None:
        """Send while streaming; the tick sees a send that does not finish (the socket's
        buffers are full: the client stopped reading)."""
        self.tx_begun += 1
        await self.transport.send_text(text)
        self.tx_done += 1

    def snapshot(self, state: SessionState) -> SessionSnapshot:
        """What this driver holds of its session, to rebuild a record Redis lost."""
        return SessionSnapshot(
            epoch=self.epoch,
            state=state,
            config_json=self._config_json,
            token_hash=hash_token(self.resume_token),
            owner=self.owner,
            committed_ms=self.committed_ms,
            audio_ms=self.audio_ms,
            channel_ends=self.commits.encode(),
        )

    async def persist(self) -> bool:
        """Write pending finals to Redis; False if Redis is unavailable (kept for later).
        Raises SessionError if the session was taken over, or if Redis lost finals that
        this driver no longer holds."""
        async with self._persist_lock:
            if not self._pending:
                return True
            committed = self.feed.final_end_ms
            try:
                try:
                    await self._store.append_finals(
                        self.session_id,
                        epoch=self.epoch,
                        finals=self._pending,
                        committed_ms=committed,
                        audio_ms=self.audio_ms,
                        channel_ends=self.commits.encode(),
                        ttl_s=self._limits.session_ttl_s,
                    )
                except (RecordLost, LogGap):
                    self.committed_ms = committed
                    await self._rebuild_locked(SessionState.ACTIVE)
            except StoreUnavailable as exc:
                log.warning("session %s: finals not persisted yet: %r", self.session_id, exc)
                return False
            except Fenced:
                raise session_taken_over() from None
            except LogGap:
                raise log_lost(self.session_id) from None
            self._recent.extend(self._pending)
            self._pending.clear()
            self.committed_ms = committed
            return True

    async def repair(self) -> None:
        """Redis lost this session's record or recent finals (the lease renewal saw it):
        rebuild them from what this driver holds."""
        async with self._persist_lock:
            try:
                await self._rebuild_locked(SessionState.ACTIVE)
            except Fenced:
                self.abort(session_taken_over())
            except LogGap:
                self.abort(log_lost(self.session_id))
            else:
                self._recent.extend(self._pending)
                self._pending.clear()

    async def _rebuild_locked(self, state: SessionState) -> None:
        log.warning("session %s: rebuilding what the store lost", self.session_id)
        await self._store.rebuild(
            self.session_id,
            self.snapshot(state),
            [*self._recent, *self._pending],
            ttl_s=self._limits.session_ttl_s,
        )

    async def _finish(self) -> None:
        if not await self.persist():
            raise SessionError(
                ErrorCode.INTERNAL_ERROR,
                "the session store is unavailable: the last finals were sent but not persisted",
                retryable=True,
                close_code=CloseCode.TRY_AGAIN_LATER,
            )
        try:
            await self.save_state(SessionState.STOPPED)
        except StoreUnavailable as exc:
            log.warning("session %s: stopped state not persisted: %r", self.session_id, exc)
        self.finished = True
        stopped = TranscriptionStopped(
            session_id=public_id(self.session_id), audio_ms=self.audio_ms, finals=self.seq
        )
        async with asyncio.timeout(self._limits.send_timeout_s):
            await self.transport.send_text(stopped.model_dump_json())
        with contextlib.suppress(Exception):
            async with asyncio.timeout(self._limits.send_timeout_s):
                await self.transport.close(CloseCode.NORMAL)

    async def save_state(self, state: SessionState) -> None:
        """Record the session's state and audio offset (fenced by this driver's epoch),
        restoring what Redis lost first. Raises SessionError if taken over or unrepairable."""
        limits = self._limits
        ttl_s = limits.stopped_ttl_s if state is SessionState.STOPPED else limits.session_ttl_s
        async with self._persist_lock:
            try:
                try:
                    await self._store.set_state(
                        self.session_id,
                        epoch=self.epoch,
                        seq=self.seq - len(self._pending),
                        state=state,
                        audio_ms=self.audio_ms,
                        ttl_s=ttl_s,
                    )
                except (RecordLost, LogGap):
                    await self._rebuild_locked(state)
            except Fenced:
                raise session_taken_over() from None
            except LogGap:
                raise log_lost(self.session_id) from None

    async def send_error(self, code: ErrorCode, message: str) -> None:
        await self.transport.send_text(_dumps(SessionError(code, message).event()))
