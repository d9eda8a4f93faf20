"""The WebSocket edge: check the id and the origin before the upgrade, then hand over."""

from __future__ import annotations

from fastapi import APIRouter, WebSocket
from starlette.responses import PlainTextResponse

from gateway.api.deps import ServiceDep, SettingsDep
from gateway.api.transport import AsgiTransport
from gateway.observability import events
from gateway.protocol import SESSION_ID_RE

router = APIRouter(tags=["transcribe"])


def origin_allowed(origin: str | None, allowed: list[str]) -> bool:
    # Non-browser clients send no Origin; CORS does not protect WebSockets, this does.
    return origin is None or "*" in allowed or origin in allowed


@router.websocket("/transcribe/{session_id}")
async def transcribe(
    websocket: WebSocket, session_id: str, service: ServiceDep, settings: SettingsDep
) -> None:
    if not SESSION_ID_RE.fullmatch(session_id):
        await websocket.send_denial_response(
            PlainTextResponse("session_id must be 8 to 64 of [A-Za-z0-9_-]", status_code=400)
        )
        return
    if not origin_allowed(websocket.headers.get("origin"), settings.server.allowed_origins):
        events.rejected("origin")
        await websocket.send_denial_response(
            PlainTextResponse("forbidden_origin: origin not allowed", status_code=403)
        )
        return
    if service.draining:
        events.rejected("draining")
        # Before the upgrade, so that NGINX tries the next gateway at once.
        await websocket.send_denial_response(
            PlainTextResponse("draining: connect again", status_code=503)
        )
        return
    await websocket.accept()
    await service.handle(AsgiTransport(websocket), session_id)
