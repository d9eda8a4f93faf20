"""How the session's failures become protocol errors."""

from __future__ import annotations

import grpc
from pydantic import ValidationError

from gateway.errors import SessionError
from gateway.protocol import CloseCode, ErrorCode

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


def session_taken_over() -> SessionError:
    """Another connection resumed the session: this one closes with 1012, no event."""
    return SessionError(
        ErrorCode.SESSION_EXISTS,
        "another connection resumed this session",
        close_code=CloseCode.RESTARTING,
        notify=False,
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
