"""The one exception the session service raises to end a session with a protocol error."""

from __future__ import annotations

from gateway.protocol import CloseCode, ErrorCode


class SessionError(Exception):
    """An `error` event for the client, then (if `close_code` is set) closing the socket."""

    def __init__(
        self,
        code: ErrorCode,
        message: str,
        *,
        retryable: bool = False,
        close_code: CloseCode | None = None,
        retry_after_s: float | None = None,
        notify: bool = True,
    ) -> None:
        super().__init__(message)
        self.notify = notify  # send the `error` event before closing
        self.code = code
        self.message = message
        self.retryable = retryable
        self.close_code = close_code
        self.retry_after_s = retry_after_s

    def event(self) -> dict[str, object]:
        event: dict[str, object] = {
            "event": "error",
            "code": self.code.value,
            "message": self.message,
            "retryable": self.retryable,
        }
        if self.retry_after_s is not None:
            event["retry_after_s"] = self.retry_after_s
        return event


class StoreUnavailable(Exception):
    """Redis could not be reached or did not answer in time."""


class Fenced(Exception):
    """This connection no longer holds the session's lease: another one took it over."""


class RecordLost(Exception):
    """The session's record is gone from Redis (expired, or Redis lost its data)."""


class LogGap(Exception):
    """The stored finals log ends before the driver's last final (Redis lost recent writes),
    or a rebuild could not fill what it lost."""
