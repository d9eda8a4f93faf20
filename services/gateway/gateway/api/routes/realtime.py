"""`GET /v1/realtime?intent=transcription`: OpenAI's realtime transcription WebSocket
(also NVIDIA's `riva.client.realtime`), served by the same session service as
`/api/v1/transcribe/{session_id}`; and `POST /v1/realtime/transcription_sessions`.

The WebSocket is a plain ASGI endpoint, as `transcribe.py`'s, so that the session gets
the server's own `receive` and `send`.
"""

from __future__ import annotations

import secrets
import time
import uuid
from typing import Any

from fastapi import APIRouter
from starlette.responses import PlainTextResponse
from starlette.routing import WebSocketRoute
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket

from gateway.api.routes.transcribe import origin_allowed
from gateway.config import Settings
from gateway.protocol import TranscriptionConfig
from gateway.realtime.openai_events import beta_session_object
from gateway.realtime.openai_socket import OpenAIRealtimeSocket
from gateway.sessions.service import SessionService

router = APIRouter(prefix="/v1", tags=["openai"])

RIVA_TOKEN_PREFIX = "realtime-token."
CLIENT_SECRET_TTL_S = 60


async def _deny(websocket: WebSocket, status: int, text: str) -> None:
    await websocket.send_denial_response(PlainTextResponse(text, status_code=status))


class RealtimeEndpoint:
    """`GET /v1/realtime?intent=transcription` (WebSocket)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        websocket = WebSocket(scope, receive=receive, send=send)
        service: SessionService = scope["app"].state.service
        settings: Settings = scope["app"].state.settings
        if websocket.query_params.get("intent") != "transcription":
            await _deny(websocket, 400, "only ?intent=transcription is served here")
            return
        headers = websocket.headers
        allowed = settings.server.allowed_origins
        if not origin_allowed(headers.get("origin"), allowed, headers.get("host")):
            await _deny(websocket, 403, "forbidden_origin: origin not allowed")
            return
        if service.draining:
            await _deny(websocket, 503, "draining: connect again")
            return
        # Browsers name the protocol "realtime" (with their key in a second
        # sub-protocol); Riva's client offers "realtime" and "realtime-token.<secret>",
        # and only "realtime" is echoed back, so the secret never appears in a response.
        offered: list[str] = scope.get("subprotocols") or []
        await websocket.accept(subprotocol="realtime" if "realtime" in offered else None)
        riva = any(p.startswith(RIVA_TOKEN_PREFIX) for p in offered)
        session_id = f"rt-{uuid.uuid4().hex}"
        socket = OpenAIRealtimeSocket(receive, send, session_id, riva=riva)
        await socket.open()
        await service.handle(socket, session_id)


router.routes.append(WebSocketRoute("/v1/realtime", RealtimeEndpoint()))


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
