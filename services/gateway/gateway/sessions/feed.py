"""Audio into Riva: one backend stream at a time, a new one after each `finalize`, and,
after a failure, one on another endpoint fed again with the audio after the last final.

In steady streaming the session's reader writes each frame straight into the current
call (`feed.call`): the frame's only hops are the socket read and the gRPC write. While
no call takes frames (before the first stream is open, between streams, during a
failover) they wait in `held`, bounded; the reader waits when it is full.

Offsets are bytes of the session's audio from its start (across resumes). Each stream
starts at `base_byte`: the connection's start, the end of the previous stream after a
`finalize`, or the end of the last final after a failure.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Final

import grpc
from riva.client.proto import riva_asr_pb2 as asr

from gateway.backends.balancer import Endpoint
from gateway.backends.riva import RivaBackend, RivaClient, StreamCall
from gateway.backends.riva_config import streaming_config
from gateway.errors import SessionError
from gateway.observability import events, tracing
from gateway.protocol import CloseCode, ErrorCode, TranscriptionConfig
from gateway.sessions.activity import BackendWatch
from gateway.sessions.failures import FAILOVER_CODES, backend_error, backend_hung
from gateway.sessions.replay import ReplayBuffer

log = logging.getLogger(__name__)

Request = asr.StreamingRecognizeRequest
ResultHandler = Callable[[asr.StreamingRecognitionResult], Awaitable[None]]

# Errors of a write into a call that has ended; its response side reports how.
WRITE_ERRORS = (grpc.aio.AioRpcError, asyncio.InvalidStateError)


class Marker:
    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name


# End the current stream (its pending utterance becomes final), then start a fresh one
# (FINALIZE) or finish the session (STOP).
FINALIZE: Final = Marker("finalize")
STOP: Final = Marker("stop")


def _discard(frame: bytes) -> None:
    return None


class BackendFeed:
    def __init__(
        self,
        *,
        session_id: str,
        config: TranscriptionConfig,
        backend: RivaBackend,
        on_result: ResultHandler,
        base_ms: int,
        held_limit: int,
        held_max_bytes: int,
        replay_limit_ms: int,
        replay_max_bytes: int,
        response_timeout_s: float,
        release_quiet_s: float,
    ) -> None:
        self._session_id = session_id
        self._config = config
        self._backend = backend
        self._on_result = on_result
        self._stream_config = streaming_config(config)
        self._bytes_per_ms = config.bytes_per_ms
        self.call: StreamCall | None = None
        self.held: deque[bytes | Marker] = deque()
        self._held_limit = held_limit
        self._held_max_bytes = held_max_bytes
        self._held_bytes = 0
        self._room = asyncio.Event()
        self._room.set()
        self.replay = ReplayBuffer(
            config.byte_offset(base_ms),
            min(config.byte_offset(replay_limit_ms), replay_max_bytes),
        )
        # Raw audio can be replayed; compressed audio has no byte offsets to cut at.
        self.keep = self.replay.append if self._bytes_per_ms else _discard
        self.stream_bytes = 0  # written into the current stream
        self.stream_audio_ms = 0  # the current stream's audio_processed
        self.base_byte = config.byte_offset(base_ms)
        self.base_ms = base_ms
        self.final_end_ms = base_ms  # covered by the finals sent so far
        self._end_marker: Marker | None = None
        self._stream: StreamCall | None = None  # the open call, taking frames or not
        self._hung: StreamCall | None = None
        self.responses = 0  # responses of every stream, for the watch
        self.watch = BackendWatch(response_timeout_s, asyncio.get_running_loop().time())
        self._release_quiet_s = release_quiet_s

    # ---- what the session calls ----------------------------------------------------------

    async def hold(self, item: bytes | Marker) -> None:
        """Keep a frame or marker for the next stream; wait while too many (frames or bytes)
        are held."""
        self.held.append(item)
        if type(item) is bytes:
            self._held_bytes += len(item)
        if len(self.held) >= self._held_limit or self._held_bytes >= self._held_max_bytes:
            self._room.clear()
            await self._room.wait()

    async def end_stream(self, marker: Marker) -> None:
        """Half-close the current stream (or, if none takes frames, queue the marker)."""
        call = self.call
        if call is None:
            await self.hold(marker)
            return
        self.call = None
        self._end_marker = marker
        with contextlib.suppress(*WRITE_ERRORS):
            await call.done_writing()

    def write_failed(self, call: StreamCall) -> None:
        """The reader's write into `call` failed: hold frames until the next stream."""
        if self.call is call:
            self.call = None

    def final_sent(self, end_ms: int) -> None:
        """Audio up to `end_ms` is covered by a final: no need to replay it."""
        if end_ms > self.final_end_ms:
            self.final_end_ms = end_ms
            if self._bytes_per_ms:
                self.replay.trim(self._config.byte_offset(end_ms))

    # ---- the streams ---------------------------------------------------------------------

    async def run(self) -> None:
        """Run backend streams until the one ended by STOP is over."""
        replay: list[bytes] = []
        failed: Endpoint[RivaClient] | None = None
        failures = 0
        while True:
            traced = tracing.start_backend_stream()
            endpoint, call = self._backend.open_stream(exclude=failed)
            self._stream = call
            self.watch.restarted()
            error: grpc.aio.AioRpcError | SessionError | None = None
            try:
                await self._start(call, replay)
                async for response in call:
                    self.responses += 1
                    for result in response.results:
                        if result.alternatives:
                            await self._on_result(result)
                    failures = 0
            except grpc.aio.AioRpcError as exc:
                events.backend_stream_failed(exc.code())
                if exc.code() not in FAILOVER_CODES:
                    raise backend_error(exc) from None
                error = exc
            except asyncio.CancelledError:
                # `check` cancels a hung stream's call; grpc.aio reports that as a
                # cancellation of the reading task, which a real one would also show.
                task = asyncio.current_task()
                if self._hung is not call or (task is not None and task.cancelling()):
                    raise
                error = backend_hung(self.watch.timeout_s)
            finally:
                self.call = None
                self._stream = None
                self._backend.release(endpoint)
                call.cancel()
                tracing.end_backend_stream(traced, endpoint.target)
            if error is not None:
                if not isinstance(error, SessionError) and self._quiet():
                    # Released for want of audio (Riva ends quiet streams): go on in a
                    # new stream, on the same endpoint if it is fine.
                    replay, failed = self._restart_after_last_final(None), None
                    continue
                self._backend.balancer.mark_failed(endpoint)
                failures += 1
                if failures > len(self._backend.balancer.endpoints):
                    raise error if isinstance(error, SessionError) else backend_error(error)
                log.warning(
                    "session %s: stream on %s failed (%s); failing over",
                    self._session_id,
                    endpoint.target,
                    error.code.value if isinstance(error, SessionError) else error.code().name,
                )
                cause = None if isinstance(error, SessionError) else error
                replay, failed = self._restart_after_last_final(cause), endpoint
                events.backend_failover()
                continue
            marker, self._end_marker = self._end_marker, None
            if marker is STOP:
                return
            if marker is FINALIZE:
                replay, failed = [], None
                self._start_at(self.base_byte + self.stream_bytes, None)
            else:
                # The backend ended the stream on its own: go on in a new one.
                replay, failed = self._restart_after_last_final(None), None

    def check(self, now: float, fed: int) -> None:
        """From the housekeeping tick: fail over a stream that takes audio (`fed` bytes so
        far) and answers nothing."""
        if self.watch.hung(now, fed, self.responses) and self._stream is not None:
            self._hung = self._stream
            self._stream.cancel()

    def _quiet(self) -> bool:
        return asyncio.get_running_loop().time() - self.watch.fed_at >= self._release_quiet_s

    async def _start(self, call: StreamCall, replay: list[bytes]) -> None:
        """Send the config, the replayed audio and what was held; then hand the call to
        the reader (unless a held marker ends it first)."""
        self.stream_bytes = 0
        self.stream_audio_ms = 0
        write = call.write
        try:
            await write(Request(streaming_config=self._stream_config))
            for frame in replay:
                self.stream_bytes += len(frame)
                await write(Request(audio_content=frame))
            held = self.held
            while held:
                item = held.popleft()
                if type(item) is bytes:
                    self._held_bytes -= len(item)
                if (
                    not self._room.is_set()
                    and len(held) < self._held_limit
                    and self._held_bytes < self._held_max_bytes
                ):
                    self._room.set()
                if type(item) is not bytes:
                    assert isinstance(item, Marker)
                    self._end_marker = item
                    await call.done_writing()
                    return
                self.stream_bytes += len(item)
                self.keep(item)
                await write(Request(audio_content=item))
        except WRITE_ERRORS:
            return  # reading the responses tells why
        # No await since `held` was found empty: the reader's next frame goes to the call.
        self.call = call
        self._room.set()

    def _restart_after_last_final(self, cause: grpc.aio.AioRpcError | None) -> list[bytes]:
        """The audio after the last final, for the next stream: the unfinished utterance
        is recognised again, and the client sees a delay, not an error or a duplicate."""
        restart = self._config.byte_offset(self.final_end_ms)
        if not self._bytes_per_ms:
            raise SessionError(
                ErrorCode.BACKEND_ERROR,
                "the speech backend stream ended, and flac or ogg_opus audio cannot be "
                "replayed into a new one: start a new session",
                close_code=CloseCode.INTERNAL,
            )
        if not self.replay.covers(restart):
            if cause is not None:
                raise backend_error(cause)
            raise SessionError(
                ErrorCode.BACKEND_ERROR,
                "the speech backend ended the stream and its audio cannot be replayed",
                retryable=True,
                close_code=CloseCode.INTERNAL,
            )
        if self._end_marker is not None:
            # The failed stream had been told to end: so must the next one.
            self.held.appendleft(self._end_marker)
            self._end_marker = None
        replay = self.replay.since(restart)
        self.replay.reset(restart)
        for frame in replay:
            self.replay.append(frame)
        self._start_at(restart, self.final_end_ms)
        return replay

    def _start_at(self, byte_offset: int, ms: int | None) -> None:
        if not self._bytes_per_ms:
            # Compressed audio: only the backend knows how much it heard.
            byte_offset, ms = 0, self.base_ms + self.stream_audio_ms
        self.base_byte = byte_offset
        self.base_ms = ms if ms is not None else round(byte_offset / self._bytes_per_ms)
