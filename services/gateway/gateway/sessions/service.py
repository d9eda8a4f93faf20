"""The session service: from an accepted socket to a running session and its clean end.

It knows nothing of FastAPI: the route hands it a `ClientSocket` and a session id.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Sequence

import orjson
from pydantic import ValidationError

from gateway.auth.principal import ANONYMOUS, Principal
from gateway.backends.riva import RivaBackend
from gateway.config import Settings
from gateway.errors import Fenced, LogGap, RecordLost, SessionError, StoreUnavailable
from gateway.observability import events, metrics, tracing
from gateway.protocol import (
    CloseCode,
    ErrorCode,
    ResumeTranscription,
    StartTranscription,
    TranscriptionConfig,
    TranscriptionResumed,
    TranscriptionStarted,
    TranscriptionStopped,
    client_message_adapter,
)
from gateway.quotas.gate import QuotaGate
from gateway.sessions.admission import Admission
from gateway.sessions.client_socket import ClientGone, ClientSocket
from gateway.sessions.failures import (
    describe_validation_error,
    first_cause,
    opening_error_code,
    resume_refused,
    session_exists,
    session_taken_over,
    store_unavailable,
    text_too_large,
)
from gateway.sessions.lifecycle import SessionState
from gateway.sessions.live import LiveSession
from gateway.sessions.registry import SessionRegistry
from gateway.store import scripts
from gateway.store.redis_store import Resumed, ResumeRefused, SessionStore

Opening = StartTranscription | ResumeTranscription

log = logging.getLogger(__name__)

# Bad messages tolerated before a valid start; past that the client is not speaking v1.
_MAX_BAD_OPENING_MESSAGES = 10


class SessionService:
    def __init__(
        self,
        settings: Settings,
        store: SessionStore,
        backend: RivaBackend,
        registry: SessionRegistry,
        quotas: QuotaGate | None = None,
    ) -> None:
        self._settings = settings
        self._limits = settings.limits
        self.owner = settings.server.pod_name or f"pod-{secrets.token_hex(4)}"
        self.store = store
        self.backend = backend
        self.registry = registry
        self.admission = Admission(settings.limits)
        self.draining = False
        # Fleet-wide quotas per tenant (gateway/quotas); none when not given.
        self.quotas = quotas if quotas is not None else QuotaGate.off()

    async def handle(
        self, transport: ClientSocket, session_id: str, principal: Principal = ANONYMOUS
    ) -> None:
        """Serve one accepted socket until the session ends, however it ends.

        `session_id` is the client's; the session lives under `principal.key(session_id)`
        (its tenant's), which is the id the store, the registry and the logs use."""
        session: LiveSession | None = None
        outcome = "error"
        quota_added = False
        key = principal.key(session_id)
        traced = tracing.start_session(key, self.owner)
        try:
            opening = await self._await_opening(transport)
            self._admit(key)
            self.admission.admitted()
            try:
                # Quotas: count the session for its tenant, or raise the refusal.
                new = isinstance(opening, StartTranscription)
                quota_added = await self.quotas.admit(principal.tenant, key, new=new)
                if isinstance(opening, StartTranscription):
                    session = await self._start(transport, key, session_id, opening.config)
                else:
                    session = await self._resume(transport, key, session_id, opening)
            finally:
                self.admission.opening -= 1
            if session is not None:
                await session.run()
            outcome = "stopped"
        except BaseExceptionGroup as group:
            outcome = await self._end_with(transport, first_cause(group), key)
        except (SessionError, ClientGone) as exc:
            outcome = await self._end_with(transport, exc, key)
        except Exception as exc:
            outcome = await self._end_with(transport, exc, key)
        finally:
            if session is not None:
                self.registry.remove(session)
                if not session.finished:
                    await self._detach(session)
            # Quotas: count its last audio; free its place unless it may be resumed.
            resumable = session is not None and not session.finished
            await self.quotas.ended(key, session, added=quota_added, keep=resumable)
            metrics.SESSIONS_ENDED.labels(outcome).inc()
            tracing.end_session(traced, session, outcome)

    async def _await_opening(self, transport: ClientSocket) -> Opening:
        """Read messages until a valid start or resume, within the start timeout."""
        bad = 0
        try:
            async with asyncio.timeout(self._limits.start_timeout_s):
                while True:
                    message = await transport.receive()
                    if message["type"] == "websocket.disconnect":
                        raise ClientGone()
                    if message.get("bytes") is not None:
                        raise SessionError(
                            ErrorCode.INVALID_MESSAGE,
                            "audio before start_transcription",
                            close_code=CloseCode.POLICY,
                        )
                    bad += 1
                    if bad > _MAX_BAD_OPENING_MESSAGES:
                        raise SessionError(
                            ErrorCode.INVALID_MESSAGE,
                            "too many invalid messages",
                            close_code=CloseCode.POLICY,
                        )
                    text = message.get("text") or ""
                    size = len(text.encode())
                    if size > self._limits.max_text_bytes:
                        raise text_too_large(size, self._limits.max_text_bytes)
                    try:
                        parsed = client_message_adapter.validate_json(text)
                    except ValidationError as exc:
                        code = opening_error_code(text, exc)
                        await _send_error(transport, code, describe_validation_error(exc))
                        continue
                    if isinstance(parsed, StartTranscription | ResumeTranscription):
                        return parsed
                    await _send_error(
                        transport,
                        ErrorCode.INVALID_MESSAGE,
                        f"{parsed.type} before start_transcription",
                    )
        except TimeoutError:
            raise SessionError(
                ErrorCode.INVALID_MESSAGE,
                f"no start_transcription within {self._limits.start_timeout_s:g} s",
                close_code=CloseCode.POLICY,
            ) from None

    def refusal(self, session_id: str) -> SessionError | None:
        """Why this worker does not take a connection for `session_id` now (None: it
        does): draining, or saturated unless it already serves that session."""
        if self.draining:
            return SessionError(
                ErrorCode.CAPACITY_EXHAUSTED,
                "this gateway is draining: connect again",
                retryable=True,
                close_code=CloseCode.TRY_AGAIN_LATER,
                retry_after_s=0.5,
            )
        return self.admission.refusal(
            len(self.registry.sessions), serves_it=session_id in self.registry.sessions
        )

    @property
    def saturated(self) -> bool:
        return self.admission.saturated(len(self.registry.sessions))

    def _admit(self, session_id: str) -> None:
        refused = self.refusal(session_id)
        if refused is not None:
            events.rejected("draining" if self.draining else "capacity")
            raise refused

    async def _start(
        self, transport: ClientSocket, key: str, session_id: str, config: TranscriptionConfig
    ) -> LiveSession:
        token = secrets.token_urlsafe(32)
        try:
            epoch = await self.store.create(
                key,
                config_json=config.model_dump_json(),
                token=token,
                owner=self.owner,
                ttl_s=self._limits.session_ttl_s,
                retry_window_s=self._limits.start_retry_window_s,
            )
        except StoreUnavailable as exc:
            raise store_unavailable(key, exc) from None
        if not epoch:
            raise session_exists(session_id)
        session = self._live(transport, key, config, epoch=epoch, resume_token=token)
        self.registry.add(session)
        metrics.SESSIONS_STARTED.inc()
        events.session_started()
        started = TranscriptionStarted(session_id=session_id, resume_token=token, config=config)
        await self._announce(transport, session, started.model_dump_json())
        return session

    async def _resume(
        self, transport: ClientSocket, key: str, session_id: str, message: ResumeTranscription
    ) -> LiveSession | None:
        """Take the session over, replay the finals the client missed, and continue from
        the committed offset; None if the session had stopped (nothing to continue)."""
        try:
            # Bumps the epoch and tells the previous driver, wherever it runs.
            resumed = await self.store.resume(
                key,
                token=message.resume_token,
                owner=self.owner,
                last_seq=message.last_seq,
                resume_window_s=self._limits.session_timeout_s,
                ttl_s=self._limits.session_ttl_s,
            )
        except StoreUnavailable as exc:
            raise store_unavailable(key, exc) from None
        except ResumeRefused as refused:
            raise resume_refused(session_id, refused.reason, refused.seq) from None
        if resumed.state is not SessionState.STOPPED:
            self.on_takeover(key, resumed.epoch)  # here at once, if it runs here
        try:
            finals = await self.store.finals_after(key, message.last_seq)
        except StoreUnavailable as exc:
            # The session is ours now but cannot go on: leave it resumable.
            await self._leave_detached(key, resumed)
            raise store_unavailable(key, exc) from None
        # Bounded: a client that does not read its replay must not hold this pod.
        async with asyncio.timeout(self._limits.send_timeout_s + len(finals) / 100):
            for _, payload in finals:
                await transport.send_text(payload)
        if resumed.state is SessionState.STOPPED:
            stopped = TranscriptionStopped(
                session_id=session_id, audio_ms=resumed.audio_ms, finals=resumed.seq
            )
            await transport.send_text(stopped.model_dump_json())
            with contextlib.suppress(Exception):
                await transport.close(CloseCode.NORMAL)
            return None
        config = TranscriptionConfig.model_validate_json(resumed.config_json)
        session = self._live(
            transport,
            key,
            config,
            epoch=resumed.epoch,
            resume_token=message.resume_token,
            seq=resumed.seq,
            base_ms=resumed.committed_ms,
            # The client re-sends its uncommitted audio at once: allow it over the burst.
            resent_ms=max(0, resumed.audio_ms - resumed.committed_ms),
            channel_ends=resumed.channel_ends,
        )
        self.registry.add(session)
        # A resume that raced ours may have published its takeover before we were
        # registered to hear it: look once more, now that any later one will be heard.
        with contextlib.suppress(StoreUnavailable):
            if await self.store.epoch(key) > resumed.epoch:
                session.abort(session_taken_over())
        metrics.SESSIONS_RESUMED.inc()
        events.session_resumed(resumed.epoch)
        event = TranscriptionResumed(
            session_id=session_id,
            resume_from_ms=resumed.committed_ms,
            replayed_finals=len(finals),
        )
        await self._announce(transport, session, event.model_dump_json())
        return session

    async def _announce(self, transport: ClientSocket, session: LiveSession, event: str) -> None:
        """Send a registered session's first event. A client gone by then (it closed right
        after its start, or sent a frame that ended the socket) must not leave the session
        registered, and renewed, for the life of the worker: it is left resumable."""
        try:
            await transport.send_text(event)
        except BaseException:
            self.registry.remove(session)
            await self._detach(session)
            raise

    async def _leave_detached(self, session_id: str, resumed: Resumed) -> None:
        with contextlib.suppress(StoreUnavailable, Fenced, RecordLost, LogGap):
            await self.store.set_state(
                session_id,
                epoch=resumed.epoch,
                seq=resumed.seq,
                state=SessionState.DETACHED,
                audio_ms=resumed.audio_ms,
                ttl_s=self._limits.session_ttl_s,
            )

    def _live(
        self,
        transport: ClientSocket,
        session_id: str,
        config: TranscriptionConfig,
        *,
        epoch: int,
        resume_token: str,
        seq: int = 0,
        base_ms: int = 0,
        resent_ms: int = 0,
        channel_ends: str = "",
    ) -> LiveSession:
        return LiveSession(
            session_id=session_id,
            config=config,
            transport=transport,
            store=self.store,
            backend=self.backend,
            limits=self._limits,
            owner=self.owner,
            epoch=epoch,
            resume_token=resume_token,
            seq=seq,
            base_ms=base_ms,
            resent_ms=resent_ms,
            channel_ends=channel_ends,
        )

    def on_takeover(self, session_id: str, epoch: int) -> None:
        """Another connection (maybe on another pod) took `session_id` over at `epoch`."""
        session = self.registry.sessions.get(session_id)
        if session is not None and session.epoch < epoch:
            session.abort(session_taken_over())

    async def watch_takeovers(self) -> None:
        """Listen for takeovers published by any pod; subscribe again when the
        subscription breaks (Redis restarted, a failover, a slot moved), then renew the
        leases at once: a takeover published in the gap is seen there (newer epoch)."""
        while True:
            try:
                subscription = self.store.takeovers()
                try:
                    await subscription.subscribe()
                    await self.renew_leases()
                    async for session_id, epoch in subscription.notices():
                        self.on_takeover(session_id, epoch)
                finally:
                    await subscription.close()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("takeover listener: %r; retrying", exc)
                await asyncio.sleep(1.0)

    async def renew_leases(self, batch: Sequence[LiveSession] | None = None) -> None:
        """Refresh the records of this pod's sessions, or of `batch` of them (one round
        trip), stop any that another connection took over, and rebuild what Redis lost."""
        sessions = list(self.registry.sessions.values()) if batch is None else batch
        if not sessions:
            return
        try:
            results = await self.store.renew(
                [(s.session_id, s.epoch, s.audio_ms, s.seq - s.pending_count) for s in sessions],
                ttl_s=self._limits.session_ttl_s,
            )
        except StoreUnavailable as exc:
            log.warning("lease renewal failed: %s", exc)
            return
        for session, result in zip(sessions, results, strict=True):
            if result == scripts.FENCED:
                session.abort(session_taken_over())
            elif result in (scripts.LOST, scripts.GAP):
                with contextlib.suppress(StoreUnavailable):
                    await session.repair()

    async def run_housekeeping(self, tick_s: float = 1.0, renew_every: int = 10) -> None:
        """The pod's one periodic task: rate and idle limits every tick, leases less often."""
        ticks = 0
        loop = asyncio.get_running_loop()
        while True:
            asked, cpu = loop.time(), time.process_time()
            await asyncio.sleep(tick_s)
            # How late the loop woke us, and how busy the worker was (every thread: the
            # loop's and gRPC's poller share its core): what admission control reads.
            elapsed = loop.time() - asked
            self.registry.loop_lag.record(elapsed - tick_s)
            self.admission.observe(elapsed - tick_s, (time.process_time() - cpu) / elapsed)
            ticks += 1
            try:
                self.registry.tick()
                # Each session's lease every `renew_every` ticks, a share of them each
                # tick: Redis gets a steady trickle, not one burst for the whole pod
                # (issue 13: periodic work at one instant widens the latency tail).
                await self.renew_leases(self.registry.renewal_batch(ticks, renew_every))
                # Quotas: this pod's sessions' leases and audio, one pipeline for all.
                if self.quotas.due(ticks):
                    await self.quotas.renew(self.registry.sessions.values())
            except Exception:
                log.exception("housekeeping failed")

    async def sample_cpu(self, every_s: float = 0.25) -> None:
        """Admission control's CPU samples: often enough to see a flash crowd within its
        first second (the housekeeping tick's once a second is not)."""
        loop = asyncio.get_running_loop()
        at, cpu = loop.time(), time.process_time()
        while True:
            await asyncio.sleep(every_s)
            now, cpu_now = loop.time(), time.process_time()
            self.admission.sample(cpu_now - cpu, now - at, len(self.registry.sessions))
            at, cpu = now, cpu_now

    async def drain(self, timeout_s: float) -> dict[str, int]:
        """Stop taking sessions, ask every client to reconnect (elsewhere), and wait until
        they have moved or `timeout_s` passed; then close the rest with 1012."""
        self.draining = True
        sessions = list(self.registry.sessions.values())
        log.info("draining %d sessions (up to %.0f s)", len(sessions), timeout_s)
        tracing.sessions_event("drain", [s.session_id for s in sessions])
        # At once to every client, each send bounded: a stalled client never blocks a drain.
        await asyncio.gather(
            *(session.send_reconnect("draining") for session in sessions), return_exceptions=True
        )
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):
                await self.registry.wait_empty()
        remaining = list(self.registry.sessions.values())
        for session in remaining:
            session.abort(
                SessionError(
                    ErrorCode.INTERNAL_ERROR,
                    "the gateway restarts: resume elsewhere",
                    retryable=True,
                    close_code=CloseCode.RESTARTING,
                    notify=False,
                )
            )
        return {"sessions": len(sessions), "remaining": len(remaining)}

    async def _end_with(self, transport: ClientSocket, exc: BaseException, session_id: str) -> str:
        if isinstance(exc, ClientGone):
            return "client_gone"
        if isinstance(exc, SessionError):
            error = exc
        else:
            log.error("session %s failed", session_id, exc_info=exc)
            error = SessionError(
                ErrorCode.INTERNAL_ERROR,
                "internal error",
                retryable=True,
                close_code=CloseCode.INTERNAL,
            )
        events.session_failed(error)
        with contextlib.suppress(Exception):
            async with asyncio.timeout(self._limits.send_timeout_s):
                if error.notify:
                    await transport.send_text(orjson.dumps(error.event()).decode())
                await transport.close(error.close_code or CloseCode.NORMAL)
        return error.code.value if error.notify else "moved"

    async def _detach(self, session: LiveSession) -> None:
        """Leave a session that ended without stop resumable: finals and offsets saved."""
        with contextlib.suppress(StoreUnavailable, SessionError):
            await session.persist()
            await session.save_state(SessionState.DETACHED)


async def _send_error(transport: ClientSocket, code: ErrorCode, message: str) -> None:
    metrics.SESSION_ERRORS.labels(code.value).inc()
    await transport.send_text(orjson.dumps(SessionError(code, message).event()).decode())
