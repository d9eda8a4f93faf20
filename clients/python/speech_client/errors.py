"""The one exception the SDK raises when a session cannot go on."""

from __future__ import annotations

# Codes the client itself uses, beside the server's codes of PROTOCOL.md.
CONNECTION_LOST = "connection_lost"  # the socket closed without an `error` event
CONNECT_FAILED = "connect_failed"  # no WebSocket could be opened (refused, HTTP error)
PROTOCOL_ERROR = "protocol_error"  # the server sent something that is not protocol v1
TIMEOUT = "timeout"  # the server did not answer within a bound
REPLAY_UNAVAILABLE = "replay_unavailable"  # a resume asked for audio no longer buffered
RECONNECT_REQUESTED = "reconnect"  # a `reconnect` event, and resuming is off or failed


class TranscriptionError(Exception):
    """The session failed: an `error` event from the server, or a close other than 1000.

    `code` is one of PROTOCOL.md's error codes, or one of this module's constants when the
    failure was seen only by the client. `close_code` is the WebSocket close code, when
    the connection was closed with one.
    """

    def __init__(
        self,
        code: str,
        message: str,
        *,
        retryable: bool = False,
        close_code: int | None = None,
        retry_after_s: float | None = None,
    ) -> None:
        super().__init__(code, message, retryable, close_code)
        self.code = code
        self.message = message
        self.retryable = retryable
        self.close_code = close_code
        self.retry_after_s = retry_after_s

    def __str__(self) -> str:
        text = f"{self.code}: {self.message}"
        if self.close_code is not None:
            text += f" (close code {self.close_code})"
        return text
