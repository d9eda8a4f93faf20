"""How the session's failures become protocol errors."""

from __future__ import annotations

import contextlib
import logging

import grpc
import orjson
from pydantic import ValidationError

from gateway.errors import SessionError
from gateway.protocol import CloseCode, ErrorCode

log = logging.getLogger(__name__)

_BACKEND_RETRYABLE = {
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
    grpc.StatusCode.DEADLINE_EXCEEDED,
}
# A stream that failed with one of these is replayed on another endpoint. INTERNAL and
# UNKNOWN are what a peer that died mid-call (or grpc/grpc#36066) may leave behind.
FAILOVER_CODES = _BACKEND_RETRYABLE | {
    grpc.StatusCode.INTERNAL,
    grpc.StatusCode.UNKNOWN,
    grpc.StatusCode.CANCELLED,
}


_MAX_DETAIL = 200


def backend_error(exc: grpc.aio.AioRpcError) -> SessionError:
    """The session's end after a backend failure: the client gets a fixed text (a gRPC
    status's details may name internal addresses), the log gets the details, once."""
    code = exc.code()
    detail = exc.details() or code.name
    if code == grpc.StatusCode.INVALID_ARGUMENT:
        # The backend's word on the client's own configuration: the one detail that helps.
        return SessionError(
            ErrorCode.INVALID_CONFIG,
            f"the speech backend rejected the configuration: {detail[:_MAX_DETAIL]}",
            close_code=CloseCode.POLICY,
        )
    log.warning("speech backend failed the session (%s): %s", code.name, detail)
    if code in _BACKEND_RETRYABLE:
        return SessionError(
            ErrorCode.BACKEND_UNAVAILABLE,
            "no speech backend available: try again",
            retryable=True,
            close_code=CloseCode.TRY_AGAIN_LATER,
            retry_after_s=1.0,
        )
    return SessionError(
        ErrorCode.BACKEND_ERROR,
        f"speech backend error ({code.name})",
        close_code=CloseCode.INTERNAL,
    )


def backend_hung(timeout_s: float) -> SessionError:
    return SessionError(
        ErrorCode.BACKEND_UNAVAILABLE,
        f"the speech backend answered nothing for {timeout_s:g} s of audio",
        retryable=True,
        close_code=CloseCode.TRY_AGAIN_LATER,
        retry_after_s=1.0,
    )


def session_taken_over() -> SessionError:
    """A newer connection resumed the session: this one is over for good (its client must
    not resume, or two clients would take the session from each other forever)."""
    return SessionError(
        ErrorCode.SESSION_TAKEN_OVER,
        "another connection resumed this session",
        close_code=CloseCode.POLICY,
    )


def slow_consumer(timeout_s: float) -> SessionError:
    return SessionError(
        ErrorCode.SLOW_CONSUMER,
        f"the client did not read what the server sent for {timeout_s:g} s",
        retryable=True,
        close_code=CloseCode.TRY_AGAIN_LATER,
        retry_after_s=1.0,
    )


def text_too_large(size: int, limit: int) -> SessionError:
    return SessionError(
        ErrorCode.FRAME_TOO_LARGE,
        f"text message of {size} bytes is over the limit of {limit}",
        close_code=CloseCode.TOO_LARGE,
    )


def session_expired(idle_timeout_s: float) -> SessionError:
    return SessionError(
        ErrorCode.SESSION_EXPIRED,
        f"no audio or keepalive for {idle_timeout_s:g} s; the session can be resumed",
        retryable=True,
        close_code=CloseCode.POLICY,
    )


def finals_not_persisted(count: int) -> SessionError:
    """Redis has been unavailable for so long that the finals kept for it overflow: the
    session cannot promise a resume any more, and says so rather than drop them."""
    log.error("%d finals could not be persisted: ending the session", count)
    return SessionError(
        ErrorCode.INTERNAL_ERROR,
        f"the session store has been unavailable for {count} finals: they were sent "
        "but cannot be persisted, so this session cannot be resumed",
        close_code=CloseCode.INTERNAL,
    )


def log_lost(session_id: str) -> SessionError:
    log.error("session %s: the store lost finals this pod no longer holds", session_id)
    return SessionError(
        ErrorCode.INTERNAL_ERROR,
        "the session store lost finals that can no longer be restored: this session "
        "cannot be resumed",
        close_code=CloseCode.INTERNAL,
    )


_MESSAGE_TYPES = {
    "start_transcription",
    "resume_transcription",
    "finalize",
    "keepalive",
    "stop_transcription",
}


_MAX_ECHOED = 64


def describe_validation_error(exc: ValidationError) -> str:
    """A short message naming each offending field (and any unknown one)."""
    parts = []
    for error in exc.errors(include_url=False)[:5]:
        path = [str(p) for p in error["loc"]]
        if path and path[0] in _MESSAGE_TYPES:  # the union's tag, not a field
            path = path[1:]
        # Field names come from the client: never echo more than a short prefix.
        loc = (".".join(path) or "message")[:_MAX_ECHOED]
        if error["type"] == "extra_forbidden":
            parts.append(f"unknown field '{loc}'")
        elif error["type"] == "json_invalid":
            parts.append("not valid JSON")
        else:
            parts.append(f"{loc}: {error['msg'][:200]}")
    return "; ".join(parts)


def first_cause(group: BaseExceptionGroup[BaseException]) -> BaseException:
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


def store_unavailable(session_id: str, exc: Exception) -> SessionError:
    log.warning("session store unavailable for %s: %s", session_id, exc)
    return SessionError(
        ErrorCode.INTERNAL_ERROR,
        "the session store is unavailable; try again",
        retryable=True,
        close_code=CloseCode.TRY_AGAIN_LATER,
        retry_after_s=1.0,
    )


def resume_refused(session_id: str, reason: str, seq: int = 0) -> SessionError:
    if reason == "not_resumable":
        return SessionError(
            ErrorCode.INVALID_CONFIG,
            "a flac or ogg_opus session cannot be resumed (compressed audio cannot be "
            "re-sent from an offset): start a new session",
            close_code=CloseCode.POLICY,
        )
    if reason == "bad_last_seq":
        return SessionError(
            ErrorCode.INVALID_MESSAGE,
            f"last_seq is beyond the session's last final ({seq})",
            close_code=CloseCode.POLICY,
        )
    if reason == "bad_token":
        return SessionError(
            ErrorCode.UNAUTHORIZED,
            f"resume_token does not match session {session_id}",
            close_code=CloseCode.POLICY,
        )
    if reason == "expired":
        return SessionError(
            ErrorCode.SESSION_EXPIRED,
            f"session {session_id} was idle too long to resume: start a new one",
            close_code=CloseCode.POLICY,
        )
    return SessionError(
        ErrorCode.SESSION_NOT_FOUND,
        f"no session {session_id} to resume",
        close_code=CloseCode.POLICY,
    )


def session_exists(session_id: str) -> SessionError:
    return SessionError(
        ErrorCode.SESSION_EXISTS,
        f"session {session_id} already exists: resume it, or start one with a new id",
        close_code=CloseCode.POLICY,
    )


def opening_error_code(text: str, exc: ValidationError) -> ErrorCode:
    """`invalid_config` when a start message is well formed but its config is not."""
    with contextlib.suppress(orjson.JSONDecodeError):
        raw = orjson.loads(text)
        if isinstance(raw, dict) and raw.get("type") == "start_transcription":
            locs = [e["loc"] for e in exc.errors()]
            if locs and all(loc[:2] == ("start_transcription", "config") for loc in locs):
                return ErrorCode.INVALID_CONFIG
    return ErrorCode.INVALID_MESSAGE
