"""The session's socket on the raw ASGI callables.

The route accepts the socket through Starlette's `WebSocket` (its handshake helpers);
after that, every audio frame would pass through Starlette's state checks and an extra
coroutine on each receive and send. The hot path goes straight to the server instead,
on the `receive` and `send` callables the route was called with.
"""

from __future__ import annotations

from starlette.types import Receive, Send

from gateway.sessions.client_socket import ClientGone


class AsgiSocket:
    __slots__ = ("_send", "receive")

    def __init__(self, receive: Receive, send: Send) -> None:
        self.receive = receive
        self._send = send

    async def send_text(self, data: str) -> None:
        try:
            await self._send({"type": "websocket.send", "text": data})
        except OSError as exc:  # the server's ClientDisconnected
            raise ClientGone() from exc

    async def close(self, code: int = 1000, reason: str | None = None) -> None:
        try:
            await self._send({"type": "websocket.close", "code": code, "reason": reason or ""})
        except OSError as exc:
            raise ClientGone() from exc
