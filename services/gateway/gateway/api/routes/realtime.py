"""`GET /v1/realtime?intent=transcription`: OpenAI's realtime transcription WebSocket,
served by the same session service as `/api/v1/transcribe/{session_id}`."""

from __future__ import annotations

import secrets
import time
import uuid
from typing import Any

from fastapi import APIRouter, WebSocket
from starlette.responses import PlainTextResponse

from gateway.api.deps import ServiceDep, SettingsDep
from gateway.api.routes.transcribe import origin_allowed
from gateway.protocol import TranscriptionConfig
from gateway.realtime.openai_events import beta_session_object
from gateway.realtime.transport import OpenAIRealtimeTransport

RIVA_TOKEN_PREFIX = "realtime-token."
CLIENT_SECRET_TTL_S = 60

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
    # Browsers name the protocol "realtime" (with their key in a second sub-protocol);
    # Riva's client offers "realtime" and "realtime-token.<client_secret>", and only
    # "realtime" is echoed back, so that the secret never appears in a response.
    offered: list[str] = websocket.scope.get("subprotocols") or []
    await websocket.accept(subprotocol="realtime" if "realtime" in offered else None)
    riva = any(p.startswith(RIVA_TOKEN_PREFIX) for p in offered)
    session_id = f"rt-{uuid.uuid4().hex}"
    transport = OpenAIRealtimeTransport(websocket, session_id, riva=riva)
    await transport.open()
    await service.handle(transport, session_id)


@router.post("/realtime/transcription_sessions")
async def create_transcription_session() -> dict[str, Any]:
    """A session's defaults and a `client_secret`, as NVIDIA's Riva ASR NIM answers; its
    client then offers the secret as the `realtime-token.<secret>` sub-protocol."""
    config = TranscriptionConfig(sample_rate_hz=16000)
    session = beta_session_object(f"sess_{uuid.uuid4().hex}", config)
    session["input_audio_format"] = "none"
    # Not checked yet: the gateway has no authentication; with it, this secret becomes
    # a short-lived credential for the socket.
    session["client_secret"] = {
        "value": secrets.token_urlsafe(24),
        "expires_at": int(time.time()) + CLIENT_SECRET_TTL_S,
    }
    return session
