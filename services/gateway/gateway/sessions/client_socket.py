"""What a session needs of its client's socket (the route gives it one on ASGI)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, Protocol


class ClientSocket(Protocol):
    # The next ASGI WebSocket message (`websocket.receive` or `websocket.disconnect`).
    receive: Callable[[], Awaitable[MutableMapping[str, Any]]]

    async def send_text(self, data: str) -> None: ...

    async def close(self, code: int = 1000, reason: str | None = None) -> None: ...


class ClientGone(Exception):
    """The client closed the socket or the connection dropped."""
