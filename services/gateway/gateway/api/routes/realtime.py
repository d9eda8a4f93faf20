"""`GET /v1/realtime?intent=transcription`: OpenAI's realtime transcription WebSocket,
served by the same session service as `/api/v1/transcribe/{session_id}`."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, WebSocket
from starlette.responses import PlainTextResponse

from gateway.api.deps import ServiceDep, SettingsDep
from gateway.api.routes.transcribe import origin_allowed
from gateway.realtime.transport import OpenAIRealtimeTransport

router = APIRouter(prefix="/v1", tags=["openai"])


@router.websocket("/realtime")
async def realtime(websocket: WebSocket, service: ServiceDep, settings: SettingsDep) -> None:
    if websocket.query_params.get("intent") != "transcription":
        await websocket.send_denial_response(
            PlainTextResponse("only ?intent=transcription is served here", status_code=400)
        )
        return
    if not origin_allowed(websocket.headers.get("origin"), settings.server.allowed_origins):
        await websocket.send_denial_response(
            PlainTextResponse("forbidden_origin: origin not allowed", status_code=403)
        )
        return
    if service.draining:
        await websocket.send_denial_response(
            PlainTextResponse("draining: connect again", status_code=503)
        )
        return
    # Browsers name the protocol "realtime" (with their key in a second sub-protocol).
    offered = websocket.scope.get("subprotocols") or []
    await websocket.accept(subprotocol="realtime" if "realtime" in offered else None)
    session_id = f"rt-{uuid.uuid4().hex}"
    transport = OpenAIRealtimeTransport(websocket, session_id)
    await transport.open()
    await service.handle(transport, session_id)
