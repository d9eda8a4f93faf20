"""The async client: one transcription session over the gateway's WebSocket protocol.

    async with Transcription(url, audio.frames(100), audio.format) as session:
        async for event in session:
            ...

Two tasks per connection, owned by a TaskGroup: the sender streams audio (paced) and then
`stop_transcription`; the receiver parses events, keeps the resume state (token, last
final seq, replay buffer) and queues events for the caller. A retryable failure (the
socket dropped, the pod restarts or drains, a retryable `error`) reconnects with backoff
and resumes: the gateway replays the finals after our last seq and we re-send our audio
from its committed offset, so the caller sees one stream of events, without duplicates.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterable, AsyncIterator, Iterable
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus
from websockets.typing import Origin

from speech_client import errors
from speech_client.audio import AudioFormat
from speech_client.config import TranscriptionConfig, config_for
from speech_client.errors import RECONNECT_REQUESTED, TranscriptionError
from speech_client.events import (
    AudioCommitted,
    ErrorEvent,
    Event,
    ProtocolViolation,
    Reconnect,
    Transcript,
    TranscriptionResumed,
    TranscriptionStarted,
    TranscriptionStopped,
    parse_event,
)
from speech_client.pacing import Pacer
from speech_client.resume import FinalsTracker, ReplayBuffer, backoff_delay, skip_bytes
from speech_client.urls import session_url

# Close codes after which resuming can succeed: the network or the pod went away
# (1006 is what a dropped connection reports), the pod is restarting or draining, or the
# server asks us to come back later.
RESUMABLE_CLOSE_CODES = frozenset({1001, 1006, 1011, 1012, 1013})
_STOP = json.dumps({"type": "stop_transcription"})
_END = object()  # queued after the last event


@dataclass(frozen=True, slots=True)
class ClientOptions:
    """How to connect, and how long to wait for what. Every wait has a bound."""

    token: str | None = None  # sent as `Authorization: Bearer <token>`
    origin: str | None = None
    open_timeout_s: float = 10.0  # TCP + TLS + WebSocket handshake
    start_timeout_s: float = 10.0  # for transcription_started / transcription_resumed
    stop_timeout_s: float = 60.0  # from stop_transcription to transcription_stopped
    error_close_timeout_s: float = 2.0  # from an `error` event to the server's close
    # While audio streams the server may rightly say nothing for long (silence); a dead
    # peer is detected by WebSocket pings instead.
    ping_interval_s: float = 20.0
    ping_timeout_s: float = 20.0
    close_timeout_s: float = 5.0
    max_message_bytes: int = 16 * 2**20  # a final with word offsets can be large
    resume: bool = True
    max_reconnect_attempts: int = 6  # consecutive failed attempts before giving up
    backoff_base_s: float = 0.2
    backoff_cap_s: float = 10.0
    # Uncommitted audio kept for a resume (about 17 minutes of 16 kHz mono PCM16); past
    # it the oldest is dropped, and a resume that would need it fails (replay_unavailable).
    max_replay_bytes: int = 32 * 2**20


class Transcription:
    """One transcription session: an async context manager, iterated for its events.

    Yields TranscriptionStarted, Transcript (finals deduplicated by seq), AudioCommitted,
    TranscriptionResumed, Reconnect, ... and last TranscriptionStopped. A failure is
    raised from the iteration as TranscriptionError (other exceptions, e.g. from the
    audio source, are raised as they are). Leaving the `async with` early cancels the
    session and closes the socket.

    `frames` are consecutive chunks of audio in `audio_format` (whole samples each). A
    plain iterable is read without awaiting, so it survives reconnects intact; an async
    iterable should not be cancelled mid-item (e.g. a queue fed by a microphone).
    """

    def __init__(
        self,
        url: str,
        frames: Iterable[bytes] | AsyncIterable[bytes],
        audio_format: AudioFormat,
        *,
        config: TranscriptionConfig | None = None,
        session_id: str | None = None,
        speed: float = 1.0,
        options: ClientOptions | None = None,
        resume_token: str | None = None,
        last_seq: int = 0,
        skip_committed: bool = False,
    ) -> None:
        if session_id is None and "/api/v1/transcribe/" not in url:
            session_id = uuid.uuid4().hex
        self.url, self.session_id = session_url(url, session_id)
        self.format = audio_format
        self.config = config_for(audio_format, config)
        self.speed = speed
        self.options = options or ClientOptions()
        self.replay = ReplayBuffer(self.options.max_replay_bytes)
        self.finals = FinalsTracker()
        # Given: the first connection resumes that session (`frames` then start at the
        # offset the server resumes from) instead of starting one. With `skip_committed`,
        # `frames` are the session's audio from its very start (a file given again) and
        # what the server had committed is skipped. `last_seq`: finals already seen.
        self.resume_token: str | None = resume_token
        self.finals.last_seq = last_seq
        self._skip_committed = skip_committed
        self._source_skip = 0
        self.reconnects = 0  # connections opened after the first
        self._frames = frames
        self._sync_frames = iter(frames) if isinstance(frames, Iterable) else None
        self._async_frames = aiter(frames) if isinstance(frames, AsyncIterable) else None
        self._pacer: Pacer | None = None
        self._queue: asyncio.Queue[Any] = asyncio.Queue()
        self._group: asyncio.TaskGroup | None = None
        self._task: asyncio.Task[None] | None = None
        self._done = False
        self._connected_ok = False  # the current connection got started or resumed

    @property
    def last_seq(self) -> int:
        return self.finals.last_seq

    async def __aenter__(self) -> Transcription:
        self._group = asyncio.TaskGroup()
        await self._group.__aenter__()
        self._task = self._group.create_task(self._run(), name=f"transcribe-{self.session_id}")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._group is not None
        assert self._task is not None
        self._task.cancel()  # a no-op once the session has ended
        # _run never raises, so the group ends quietly and the caller's own exception,
        # if any, propagates unchanged rather than wrapped in an ExceptionGroup.
        await self._group.__aexit__(None, None, None)

    def __aiter__(self) -> AsyncIterator[Event]:
        return self

    async def __anext__(self) -> Event:
        if self._task is None:
            raise RuntimeError("iterate a Transcription inside `async with`")
        if self._done:
            raise StopAsyncIteration
        # Bounded: _run always ends by queueing _END, and each of its waits is bounded.
        item = await self._queue.get()
        if item is _END:
            self._done = True
            raise StopAsyncIteration
        if isinstance(item, BaseException):
            self._done = True
            raise item
        event: Event = item
        return event

    # ---- connection loop ---------------------------------------------------------------

    async def _run(self) -> None:
        try:
            await self._connect_until_done()
        except Exception as e:
            self._queue.put_nowait(e)
        finally:
            self._queue.put_nowait(_END)

    async def _connect_until_done(self) -> None:
        attempt = 0
        while True:
            try:
                await self._connect_once()
                return
            except TranscriptionError as e:
                if self._connected_ok:
                    # The session got going again: a fresh series of attempts.
                    attempt = 0
                if not self._may_resume(e) or attempt >= self.options.max_reconnect_attempts:
                    raise
                delay = backoff_delay(
                    attempt,
                    base_s=self.options.backoff_base_s,
                    cap_s=self.options.backoff_cap_s,
                    minimum_s=e.retry_after_s or 0.0,
                )
                attempt += 1
                await asyncio.sleep(delay)
                self.reconnects += 1

    def _may_resume(self, e: TranscriptionError) -> bool:
        if not (self.options.resume and e.retryable):
            return False
        # Before transcription_started there is nothing to resume, but a new start is
        # safe only if the server never saw the first one.
        return self.resume_token is not None or e.code == errors.CONNECT_FAILED

    async def _connect_once(self) -> None:
        self._connected_ok = False
        headers = {"Authorization": f"Bearer {self.options.token}"} if self.options.token else {}
        o = self.options
        try:
            ws_context = connect(
                self.url,
                additional_headers=headers,
                origin=None if o.origin is None else Origin(o.origin),
                compression=None,  # audio does not compress; deflate only costs CPU
                open_timeout=o.open_timeout_s,
                ping_interval=o.ping_interval_s,
                ping_timeout=o.ping_timeout_s,
                close_timeout=o.close_timeout_s,
                max_size=o.max_message_bytes,
            )
            ws = await ws_context.__aenter__()
        except InvalidStatus as e:
            status = e.response.status_code
            # The gateway says why in a short text body ("unauthorized: token expired").
            why = (e.response.body or b"").decode(errors="replace").strip().splitlines()
            detail = f": {why[0][:200]}" if why else ""
            raise TranscriptionError(
                errors.CONNECT_FAILED,
                f"{self.url}: HTTP {status} {e.response.reason_phrase}".rstrip() + detail,
                retryable=status >= 500 or status == 429,
            ) from e
        except (OSError, TimeoutError, InvalidHandshake) as e:
            # Refused before the session ever started is most likely a wrong URL: say so
            # at once. Once it streamed, the pod may just be gone: resume elsewhere.
            started = self.resume_token is not None
            raise TranscriptionError(
                errors.CONNECT_FAILED,
                f"{self.url}: {e or type(e).__name__}",
                retryable=started or isinstance(e, TimeoutError),
            ) from e
        try:
            await self._converse(ws)
        finally:
            await ws_context.__aexit__(None, None, None)

    async def _converse(self, ws: ClientConnection) -> None:
        loop = asyncio.get_running_loop()
        ready: asyncio.Future[int] = loop.create_future()
        if self.resume_token is None:
            hello: dict[str, Any] = {"type": "start_transcription", "config": self.config}
        else:
            hello = {
                "type": "resume_transcription",
                "resume_token": self.resume_token,
                "last_seq": self.finals.last_seq,
            }
        try:
            await ws.send(json.dumps(hello))
        except ConnectionClosed as e:
            raise _closed_error(e, self._state()) from None
        try:
            async with asyncio.TaskGroup() as tg:
                deadline = asyncio.timeout(self.options.start_timeout_s)
                tg.create_task(self._receive(ws, ready, deadline))
                tg.create_task(self._send_audio(ws, ready, deadline))
        except BaseExceptionGroup as group:
            raise _first_error(group) from None

    # ---- receiving ---------------------------------------------------------------------

    async def _receive(
        self, ws: ClientConnection, ready: asyncio.Future[int], deadline: asyncio.Timeout
    ) -> None:
        # `deadline` bounds the wait for the start (or resume) answer, is lifted while
        # audio streams, and is set again by the sender once it has sent the stop.
        try:
            async with deadline:
                while True:
                    try:
                        message = await ws.recv()
                    except ConnectionClosed as e:
                        raise _closed_error(e, self._state()) from None
                    event = self._parse(message)
                    if isinstance(event, ErrorEvent):
                        raise await self._error_then_close(ws, event)
                    if not self._track(event, ready, deadline):
                        continue
                    self._queue.put_nowait(event)
                    if isinstance(event, TranscriptionStopped):
                        return
                    if isinstance(event, Reconnect):
                        # The server moves us (a drain): go now, before it must close us.
                        raise TranscriptionError(
                            RECONNECT_REQUESTED,
                            f"the server asked to reconnect: {event.reason}",
                            retryable=True,
                        )
        except TimeoutError:
            raise TranscriptionError(
                errors.TIMEOUT, f"no answer from the server in time ({self._state()})"
            ) from None

    def _parse(self, message: str | bytes) -> Event:
        try:
            if isinstance(message, bytes):
                raise ProtocolViolation("binary frame from the server")
            return parse_event(json.loads(message))
        except ValueError as e:  # includes JSONDecodeError and ProtocolViolation
            raise TranscriptionError(errors.PROTOCOL_ERROR, str(e)) from e

    def _track(self, event: Event, ready: asyncio.Future[int], deadline: asyncio.Timeout) -> bool:
        """Update the resume state from `event`; False if the caller must not see it."""
        match event:
            case Transcript(seq=seq, is_final=is_final):
                return self.finals.accept(seq, is_final)
            case AudioCommitted(committed_ms=ms):
                self.replay.commit(self.format.ms_to_bytes(ms))
            case TranscriptionStarted(resume_token=token, session_id=session_id):
                self.resume_token = token
                self.session_id = session_id
                self._mark_ready(ready, deadline, 0)
            case TranscriptionResumed(resume_from_ms=ms):
                offset = self.format.ms_to_bytes(ms)
                if self._skip_committed and self.replay.end == 0 and self._pacer is None:
                    # Resumed by token before sending anything: skip what was committed.
                    self.replay.skip_to(offset)
                    self._source_skip = offset
                if offset < self.replay.start:
                    raise TranscriptionError(
                        errors.REPLAY_UNAVAILABLE,
                        f"the server resumes from {ms} ms, but audio before"
                        f" {self.format.bytes_to_ms(self.replay.start):.0f} ms was dropped",
                    )
                self._mark_ready(ready, deadline, min(offset, self.replay.end))
            case Reconnect(resume_token=token):
                self.resume_token = token
            case TranscriptionStopped():
                if not ready.done():  # a resumed session that had already stopped
                    ready.set_result(-1)
        return True

    def _mark_ready(self, ready: asyncio.Future[int], deadline: asyncio.Timeout, at: int) -> None:
        if not ready.done():
            ready.set_result(at)
        self._connected_ok = True
        deadline.reschedule(None)

    async def _error_then_close(
        self, ws: ClientConnection, event: ErrorEvent
    ) -> TranscriptionError:
        """The error to raise for `event`, with the close code if the server closes soon."""
        close_code: int | None = None
        try:
            async with asyncio.timeout(self.options.error_close_timeout_s):
                while True:
                    await ws.recv()
        except ConnectionClosed as e:
            close_code = e.rcvd.code if e.rcvd else 1006
        except TimeoutError:
            pass
        return TranscriptionError(
            event.code,
            event.message,
            retryable=event.retryable,
            close_code=close_code,
            retry_after_s=event.retry_after_s,
        )

    def _state(self) -> str:
        return f"session {self.session_id}, last seq {self.finals.last_seq}"

    # ---- sending -----------------------------------------------------------------------

    async def _send_audio(
        self, ws: ClientConnection, ready: asyncio.Future[int], deadline: asyncio.Timeout
    ) -> None:
        resume_at = await ready  # bounded: the receiver's deadline covers it
        if resume_at < 0:
            return
        if self._pacer is None:
            self._pacer = Pacer(
                self.format.bytes_per_second, self.speed, origin_offset=self.replay.start
            )
        if self._source_skip and self._sync_frames is not None:
            self._sync_frames = skip_bytes(self._sync_frames, self._source_skip)
            self._source_skip = 0
        pacer = self._pacer
        try:
            for start, data in self.replay.since(resume_at):
                await _pace(pacer, start + len(data))
                await ws.send(data)
            if self._sync_frames is not None:
                for frame in self._sync_frames:
                    # Into the replay buffer before the first await: a frame taken from
                    # the source must never be lost to a cancel or a dropped socket.
                    end = self.replay.append(frame)
                    await _pace(pacer, end)
                    await ws.send(frame)
            elif self._async_frames is not None:
                async for frame in self._async_frames:
                    end = self.replay.append(frame)
                    await _pace(pacer, end)
                    await ws.send(frame)
            # Bound the wait for transcription_stopped; set before the stop is sent,
            # since once the answer is in, the receiver has left the deadline's scope.
            deadline.reschedule(asyncio.get_running_loop().time() + self.options.stop_timeout_s)
            await ws.send(_STOP)
        except ConnectionClosed:
            # The receiver sees the same close, with any `error` event before it, and
            # reports it; failing here would race it and hide that event.
            return


async def _pace(pacer: Pacer, end_offset: int) -> None:
    delay = pacer.delay(end_offset)
    # Unpaced, still yield once per frame so that the receiver keeps up.
    await asyncio.sleep(delay)


def _closed_error(e: ConnectionClosed, state: str) -> TranscriptionError:
    code = e.rcvd.code if e.rcvd else 1006
    reason = e.rcvd.reason if e.rcvd else ""
    what = "closed the connection" if e.rcvd else "connection lost"
    return TranscriptionError(
        errors.CONNECTION_LOST,
        f"{what} before transcription_stopped" + (f": {reason}" if reason else "") + f" ({state})",
        retryable=code in RESUMABLE_CLOSE_CODES,
        close_code=code,
    )


def _first_error(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The exception that ended a connection's TaskGroup (the others are its fallout)."""
    for exc in group.exceptions:
        if isinstance(exc, BaseExceptionGroup):
            return _first_error(exc)
        if not isinstance(exc, asyncio.CancelledError):
            return exc
    return group
