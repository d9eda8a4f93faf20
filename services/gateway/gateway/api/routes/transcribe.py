"""The WebSocket edge: check the id, the origin and the caller's credential before the
upgrade, then hand over.

A plain ASGI endpoint rather than a FastAPI handler, so that the session gets the
server's own `receive` and `send` (see `api/asgi_socket.py`) without reaching into
Starlette's private attributes.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from fastapi import APIRouter
from starlette.responses import PlainTextResponse
from starlette.routing import WebSocketRoute
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket

from gateway.api.asgi_socket import AsgiSocket
from gateway.api.authn import deny_socket, socket_principal
from gateway.auth.credentials import SPEECH_PROTOCOL, selected_subprotocol
from gateway.auth.refusal import AuthRefused
from gateway.config import Settings
from gateway.observability import events
from gateway.protocol import SESSION_ID_RE
from gateway.sessions.service import SessionService

router = APIRouter(tags=["transcribe"])

BAD_SESSION_ID = "session_id must be 8 to 64 of [A-Za-z0-9_-]"


def origin_allowed(origin: str | None, allowed: list[str], host: str | None = None) -> bool:
    """Whether a socket may be opened from a page at `origin`: with an `allowed` list,
    the origins it names ("*": any); with an empty list, the fleet's own page only, whose
    Origin names the Host the request was sent to. Non-browser clients send no Origin and
    are not concerned: CORS does not protect WebSockets, this does."""
    if origin is None:
        return True
    if allowed:
        return "*" in allowed or origin in allowed
    return host is not None and same_origin(origin, host)


def same_origin(origin: str, host: str) -> bool:
    # host[:port] only, not the scheme: behind a proxy that ends TLS the gateway sees
    # http while the page is https. "null" (sandboxed pages, files) has no host.
    parts = urlsplit(origin)
    return parts.scheme in ("http", "https") and parts.netloc.lower() == host.strip().lower()


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
        headers = websocket.headers
        allowed = settings.server.allowed_origins
        if not origin_allowed(headers.get("origin"), allowed, headers.get("host")):
            events.rejected("origin")
            await _deny(websocket, 403, "forbidden_origin: origin not allowed")
            return
        try:
            principal = await socket_principal(scope, session_id)
        except AuthRefused as auth_refused:
            await deny_socket(websocket, auth_refused)
            return
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
        offered: list[str] = scope.get("subprotocols") or []
        await websocket.accept(subprotocol=selected_subprotocol(offered, SPEECH_PROTOCOL))
        await service.handle(AsgiSocket(receive, send), session_id, principal)


router.routes.append(WebSocketRoute("/transcribe/{session_id}", TranscribeEndpoint()))
