"""The WebSocket edge: check the id and the origin before the upgrade, then hand over.

A plain ASGI endpoint rather than a FastAPI handler, so that the session gets the
server's own `receive` and `send` (see `api/asgi_socket.py`) without reaching into
Starlette's private attributes.
"""

from __future__ import annotations

from fastapi import APIRouter
from starlette.responses import PlainTextResponse
from starlette.routing import WebSocketRoute
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket

from gateway.api.asgi_socket import AsgiSocket
from gateway.auth.principal import ANONYMOUS
from gateway.config import Settings
from gateway.observability import events
from gateway.protocol import SESSION_ID_RE
from gateway.sessions.service import SessionService

router = APIRouter(tags=["transcribe"])

BAD_SESSION_ID = "session_id must be 8 to 64 of [A-Za-z0-9_-]"


def origin_allowed(origin: str | None, allowed: list[str]) -> bool:
    # Non-browser clients send no Origin; CORS does not protect WebSockets, this does.
    return origin is None or "*" in allowed or origin in allowed


async def _deny(websocket: WebSocket, status: int, text: str) -> None:
    await websocket.send_denial_response(PlainTextResponse(text, status_code=status))


class TranscribeEndpoint:
    """`GET /api/v1/transcribe/{session_id}` (WebSocket)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        websocket = WebSocket(scope, receive=receive, send=send)
        session_id: str = scope["path_params"]["session_id"]
        service: SessionService = scope["app"].state.service
        settings: Settings = scope["app"].state.settings
        if not SESSION_ID_RE.fullmatch(session_id):
            events.bad_input("bad_session_id")
            await _deny(websocket, 400, f"invalid_message: {BAD_SESSION_ID}")
            return
        if not origin_allowed(websocket.headers.get("origin"), settings.server.allowed_origins):
            events.rejected("origin")
            await _deny(websocket, 403, "forbidden_origin: origin not allowed")
            return
        principal = ANONYMOUS
        refused = service.refusal(principal.key(session_id))
        if refused is not None:
            events.rejected("draining" if service.draining else "capacity")
            # Before the upgrade, so that NGINX tries the next gateway at once.
            await websocket.send_denial_response(
                PlainTextResponse(
                    f"{refused.code.value}: {refused.message}",
                    status_code=503,
                    headers={"Retry-After": str(max(1, round(refused.retry_after_s or 1)))},
                )
            )
            return
        await websocket.accept()
        await service.handle(AsgiSocket(receive, send), session_id, principal)


router.routes.append(WebSocketRoute("/transcribe/{session_id}", TranscribeEndpoint()))
