"""The session service: from an accepted socket to a running session and its clean end.

It knows nothing of FastAPI: the route hands it a `Transport` and a session id.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets

import orjson
from pydantic import ValidationError

from gateway.backends.riva import RivaBackend
from gateway.config import Settings
from gateway.errors import Fenced, SessionError, StoreUnavailable
from gateway.observability import metrics
from gateway.protocol import (
    CloseCode,
    ErrorCode,
    ResumeTranscription,
    StartTranscription,
    TranscriptionConfig,
    TranscriptionStarted,
    client_message_adapter,
)
from gateway.sessions.live import ClientGone, LiveSession, Transport, describe_validation_error
from gateway.sessions.registry import SessionRegistry
from gateway.store.redis_store import SessionStore

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
    ) -> None:
        self._settings = settings
        self._limits = settings.limits
        self._owner = settings.server.pod_name or f"pod-{secrets.token_hex(4)}"
        self.store = store
        self.backend = backend
        self.registry = registry

    async def handle(self, transport: Transport, session_id: str) -> None:
        """Serve one accepted socket until the session ends, however it ends."""
        session: LiveSession | None = None
        outcome = "error"
        try:
            config = await self._await_start(transport)
            session = await self._start(transport, session_id, config)
            await session.run()
            outcome = "stopped"
        except BaseExceptionGroup as group:
            outcome = await self._end_with(transport, _first_cause(group), session_id)
        except (SessionError, ClientGone) as exc:
            outcome = await self._end_with(transport, exc, session_id)
        except Exception as exc:
            outcome = await self._end_with(transport, exc, session_id)
        finally:
            if session is not None:
                self.registry.remove(session)
                metrics.AUDIO_SECONDS.inc((session.audio_ms - session.session_start_ms) / 1000)
                if not session.finished:
                    await self._detach(session)
            metrics.SESSIONS_ENDED.labels(outcome).inc()

    async def _await_start(self, transport: Transport) -> TranscriptionConfig:
        """Read messages until a valid `start_transcription`, within the start timeout."""
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
                    try:
                        parsed = client_message_adapter.validate_json(message.get("text") or "")
                    except ValidationError as exc:
                        code = _opening_error_code(message.get("text") or "", exc)
                        await _send_error(transport, code, describe_validation_error(exc))
                        continue
                    if isinstance(parsed, StartTranscription):
                        return parsed.config
                    if isinstance(parsed, ResumeTranscription):
                        raise SessionError(
                            ErrorCode.SESSION_NOT_FOUND,
                            "resume is not available on this gateway version",
                            close_code=CloseCode.POLICY,
                        )
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

    async def _start(
        self, transport: Transport, session_id: str, config: TranscriptionConfig
    ) -> LiveSession:
        if self.registry.at_capacity or session_id in self.registry.sessions:
            if session_id in self.registry.sessions:
                raise _session_exists(session_id)
            raise SessionError(
                ErrorCode.CAPACITY_EXHAUSTED,
                "this gateway is at capacity",
                retryable=True,
                close_code=CloseCode.TRY_AGAIN_LATER,
                retry_after_s=1.0,
            )
        token = secrets.token_urlsafe(32)
        try:
            created = await self.store.create(
                session_id,
                config_json=config.model_dump_json(),
                token=token,
                owner=self._owner,
                ttl_s=self._limits.session_ttl_s,
            )
        except StoreUnavailable as exc:
            log.warning("session store unavailable at start of %s: %s", session_id, exc)
            raise SessionError(
                ErrorCode.INTERNAL_ERROR,
                "the session store is unavailable; try again",
                retryable=True,
                close_code=CloseCode.TRY_AGAIN_LATER,
                retry_after_s=1.0,
            ) from None
        if not created:
            raise _session_exists(session_id)
        session = LiveSession(
            session_id=session_id,
            config=config,
            transport=transport,
            store=self.store,
            backend=self.backend,
            limits=self._limits,
            epoch=1,
        )
        self.registry.add(session)
        metrics.SESSIONS_STARTED.inc()
        started = TranscriptionStarted(session_id=session_id, resume_token=token, config=config)
        await transport.send_text(started.model_dump_json())
        return session

    async def _end_with(self, transport: Transport, exc: BaseException, session_id: str) -> str:
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
        metrics.SESSION_ERRORS.labels(error.code.value).inc()
        with contextlib.suppress(Exception):
            await transport.send_text(orjson.dumps(error.event()).decode())
            await transport.close(error.close_code or CloseCode.NORMAL)
        return error.code.value

    async def _detach(self, session: LiveSession) -> None:
        """Leave a session that ended without stop resumable: finals and offsets saved."""
        with contextlib.suppress(StoreUnavailable, Fenced, SessionError):
            await session.persist()
            await self.store.set_state(
                session.session_id,
                epoch=session.epoch,
                state="detached",
                audio_ms=session.audio_ms,
                ttl_s=self._limits.session_ttl_s,
            )


def _first_cause(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The exception that ended a session's task group (errors before disconnects)."""
    leaves: list[BaseException] = []

    def walk(exc: BaseException) -> None:
        if isinstance(exc, BaseExceptionGroup):
            for inner in exc.exceptions:
                walk(inner)
        else:
            leaves.append(exc)

    walk(group)
    for leaf in leaves:
        if isinstance(leaf, SessionError):
            return leaf
    return leaves[0]


def _session_exists(session_id: str) -> SessionError:
    return SessionError(
        ErrorCode.SESSION_EXISTS,
        f"session {session_id} already exists: resume it, or start one with a new id",
        close_code=CloseCode.POLICY,
    )


def _opening_error_code(text: str, exc: ValidationError) -> ErrorCode:
    """`invalid_config` when a start message is well formed but its config is not."""
    with contextlib.suppress(orjson.JSONDecodeError):
        raw = orjson.loads(text)
        if isinstance(raw, dict) and raw.get("type") == "start_transcription":
            locs = [e["loc"] for e in exc.errors()]
            if locs and all(loc[:2] == ("start_transcription", "config") for loc in locs):
                return ErrorCode.INVALID_CONFIG
    return ErrorCode.INVALID_MESSAGE


async def _send_error(transport: Transport, code: ErrorCode, message: str) -> None:
    metrics.SESSION_ERRORS.labels(code.value).inc()
    await transport.send_text(orjson.dumps(SessionError(code, message).event()).decode())
