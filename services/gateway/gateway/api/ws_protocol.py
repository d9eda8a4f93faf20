"""uvicorn's sans-I/O WebSocket protocol, hardened against input that clients control.

Three things change, none of them per frame:

- a text frame that is not UTF-8 gets the protocol's `invalid_message` error (OpenAI's
  `error` event on `/v1/realtime`) and close 1008, is counted, and is logged once as a
  warning; uvicorn logs an ERROR with a traceback for each such frame and closes with 1007
  without a word;
- a refusal before the upgrade (`send_denial_response`: bad id, origin, capacity) is a
  complete handshake, not an ERROR line ("ASGI callable returned without completing
  handshake") per refused connection;
- frames that break RFC 6455 (oversized, bad close codes, ...) are counted; the websockets
  library's own per-connection lines ("connection open", "connection rejected") duplicate
  uvicorn's and are kept to warnings.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import orjson
from starlette.types import Receive, Scope, Send
from uvicorn.config import Config
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from uvicorn.server import ServerState

from gateway.errors import SessionError
from gateway.observability import events
from gateway.protocol import CloseCode, ErrorCode
from gateway.realtime.openai_events import error_event

log = logging.getLogger(__name__)

# The websockets library logs each connection's opening and refusal at INFO, as uvicorn
# does already: one line per connection is enough.
_LIBRARY_LOG = logging.getLogger("uvicorn.error.websockets")
_LIBRARY_LOG.setLevel(logging.WARNING)

NOT_UTF8 = "text frames must be UTF-8"
REALTIME_PATH = "/v1/realtime"


def invalid_text_reply(path: str) -> bytes:
    """The error event for a text frame that is not UTF-8, in the endpoint's protocol."""
    if path.startswith(REALTIME_PATH):
        return orjson.dumps(error_event("event_invalid_utf8", "invalid_event", NOT_UTF8))
    return orjson.dumps(SessionError(ErrorCode.INVALID_MESSAGE, NOT_UTF8).event())


class GatewayWebSocketProtocol(WebSocketsSansIOProtocol):
    """The gateway's WebSocket protocol for uvicorn (`ws=` in the worker's config)."""

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self._app = self.app
        self.app = self._run_app
        self.conn.logger = _LIBRARY_LOG

    async def _run_app(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._app(scope, receive, send)
        if self.initial_response is not None and self.close_sent:
            # The app refused the upgrade with a full HTTP response: that is a handshake.
            self.handshake_complete = True

    def send_receive_event_to_app(self) -> None:
        if self.curr_msg_data_type == "text" and not self.close_sent:
            data = self.frames[0] if len(self.frames) == 1 else b"".join(self.frames)
            try:
                data.decode()
            except UnicodeDecodeError:
                self.frames = []
                self._refuse_invalid_text()
                return
        super().send_receive_event_to_app()

    def _refuse_invalid_text(self) -> None:
        events.bad_input("invalid_utf8")
        # At most once per connection: the connection ends here. The path carries the
        # session id, never the query string (which may hold an access token).
        log.warning(
            "text frame is not valid UTF-8: closing the connection",
            extra={"path": self.scope["path"]},
        )
        self.conn.send_text(invalid_text_reply(self.scope["path"]))
        self.conn.send_close(CloseCode.POLICY)
        self.transport.write(b"".join(self.conn.data_to_send()))
        self.close_sent = True
        # The app's later sends fail as on a dropped connection (its ClientGone), and it
        # reads the end of the socket next.
        self.disconnected = True
        self.queue.put_nowait({"type": "websocket.disconnect", "code": int(CloseCode.POLICY)})
        if self.read_paused:
            self.read_paused = False
            self.transport.resume_reading()
        # Wait briefly for the client's echo of the close frame, as after the app's close.
        self.close_timer = self.loop.call_later(self.close_timeout, self.transport.close)

    def handle_parser_exception(self) -> None:
        events.bad_input("bad_frame")
        super().handle_parser_exception()
