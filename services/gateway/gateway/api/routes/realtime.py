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
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from starlette.responses import PlainTextResponse
from starlette.routing import WebSocketRoute
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket

from gateway.api.authn import deny_socket, get_authenticator, get_principal, socket_principal
from gateway.api.routes.transcribe import origin_allowed
from gateway.auth.authenticator import Authenticator
from gateway.auth.credentials import selected_subprotocol
from gateway.auth.principal import Principal
from gateway.auth.refusal import AuthRefused
from gateway.config import Settings
from gateway.protocol import TranscriptionConfig
from gateway.realtime.openai_events import beta_session_object
from gateway.realtime.openai_socket import OpenAIRealtimeSocket
from gateway.sessions.service import SessionService

router = APIRouter(prefix="/v1", tags=["openai"])

RIVA_TOKEN_PREFIX = "realtime-token."
OPENAI_KEY_PREFIX = "openai-insecure-api-key."
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
        offered: list[str] = scope.get("subprotocols") or []
        try:
            principal = await _principal(scope, offered)
        except AuthRefused as refused:
            await deny_socket(websocket, refused)
            return
        if service.draining:
            await _deny(websocket, 503, "draining: connect again")
            return
        # Browsers name the protocol "realtime" (with their key in a second
        # sub-protocol); Riva's client offers "realtime" and "realtime-token.<secret>",
        # and only "realtime" is echoed back, so the secret never appears in a response.
        await websocket.accept(subprotocol=selected_subprotocol(offered, "realtime"))
        riva = any(p.startswith(RIVA_TOKEN_PREFIX) for p in offered)
        # A session token (the `client_secret` of transcription_sessions) names its id.
        session_id = principal.session_id or f"rt-{uuid.uuid4().hex}"
        socket = OpenAIRealtimeSocket(receive, send, session_id, riva=riva)
        await socket.open()
        await service.handle(socket, session_id, principal)


async def _principal(scope: Scope, offered: list[str]) -> Principal:
    """The caller: a bearer credential as on /api/v1/transcribe; Riva's client's
    `realtime-token.<client_secret>` sub-protocol; or, from OpenAI's browser SDK,
    `openai-insecure-api-key.<credential>` (best a session token, never an API key)."""
    authenticator: Authenticator = scope["app"].state.authenticator
    if authenticator.required:
        for protocol in offered:
            if protocol.startswith(OPENAI_KEY_PREFIX):
                return await authenticator.authenticate(protocol[len(OPENAI_KEY_PREFIX) :])
            # Riva's secret is a session token only when this fleet makes them.
            if protocol.startswith(RIVA_TOKEN_PREFIX) and authenticator.session_tokens:
                return await authenticator.authenticate(protocol[len(RIVA_TOKEN_PREFIX) :])
    return await socket_principal(scope)


router.routes.append(WebSocketRoute("/v1/realtime", RealtimeEndpoint()))


@router.post("/realtime/transcription_sessions")
async def create_transcription_session(
    principal: Annotated[Principal, Depends(get_principal)],
    authenticator: Annotated[Authenticator, Depends(get_authenticator)],
) -> dict[str, Any]:
    """A session's defaults and a `client_secret`, as NVIDIA's Riva ASR NIM answers; its
    client then offers the secret as the `realtime-token.<secret>` sub-protocol. With
    authentication on (and session tokens enabled) the secret is a session token for a
    fresh session id of the caller's tenant; otherwise it is not checked."""
    config = TranscriptionConfig(sample_rate_hz=16000)
    session = beta_session_object(f"sess_{uuid.uuid4().hex}", config)
    session["input_audio_format"] = "none"
    tokens = authenticator.session_tokens
    if authenticator.required and tokens is not None and principal.session_id is None:
        value, expires_at = tokens.issue(principal, f"rt-{uuid.uuid4().hex}")
    else:
        value, expires_at = secrets.token_urlsafe(24), int(time.time()) + CLIENT_SECRET_TTL_S
    session["client_secret"] = {"value": value, "expires_at": expires_at}
    return session
