"""The session's socket on the raw ASGI callables.

The route opens the socket through Starlette's `WebSocket` (its handshake checks); after
that, every audio frame would pass through Starlette's state checks and an extra
coroutine on each receive and send. The hot path goes straight to the server instead.
"""

from __future__ import annotations

from starlette.websockets import WebSocket

from gateway.sessions.transport import ClientGone


class AsgiTransport:
    __slots__ = ("_send", "receive")

    def __init__(self, websocket: WebSocket) -> None:
        # Starlette keeps the ASGI callables it was given; the socket is accepted.
        self.receive = websocket._receive
        self._send = websocket._send

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
