"""Authentication at the edge: the REST dependency and the WebSocket check before the
upgrade, both on the one Authenticator the app was built with (`app.state.authenticator`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException
from starlette.requests import HTTPConnection
from starlette.responses import PlainTextResponse
from starlette.types import Scope
from starlette.websockets import WebSocket

from gateway.auth.authenticator import Authenticator
from gateway.auth.credentials import find_credential
from gateway.auth.principal import ANONYMOUS, Principal
from gateway.auth.refusal import AuthRefused
from gateway.observability import events


def get_authenticator(conn: HTTPConnection) -> Authenticator:
    authenticator: Authenticator = conn.app.state.authenticator
    return authenticator


def challenge(refused: AuthRefused) -> dict[str, str]:
    """The headers a refusal carries: RFC 6750's challenge on 401, Retry-After on 503."""
    if refused.status == 401:
        return {"WWW-Authenticate": 'Bearer realm="speech-gateway"'}
    if refused.status == 503:
        return {"Retry-After": "5"}
    return {}


async def get_principal(conn: HTTPConnection) -> Principal:
    """The caller of a REST route (header or `?access_token=`); 401/403 otherwise."""
    authenticator = get_authenticator(conn)
    if not authenticator.required:
        return ANONYMOUS  # credentials, even malformed ones, are not looked at
    try:
        return await authenticator.authenticate(find_credential(conn.headers, conn.query_params))
    except AuthRefused as refused:
        events.rejected("auth")
        raise HTTPException(refused.status, refused.body, headers=challenge(refused)) from None


PrincipalDep = Annotated[Principal, Depends(get_principal)]


async def socket_principal(scope: Scope, session_id: str | None = None) -> Principal:
    """The caller of a WebSocket, before the upgrade (AuthRefused if refused); with a
    `session_id`, a session token for another id is refused (403)."""
    conn = HTTPConnection(scope)
    authenticator = get_authenticator(conn)
    if not authenticator.required:
        return ANONYMOUS
    credential = find_credential(conn.headers, conn.query_params, scope.get("subprotocols") or ())
    if session_id is None:
        return await authenticator.authenticate(credential)
    return await authenticator.authorize_session(credential, session_id)


async def deny_socket(websocket: WebSocket, refused: AuthRefused) -> None:
    events.rejected("auth")
    await websocket.send_denial_response(
        PlainTextResponse(refused.body, status_code=refused.status, headers=challenge(refused))
    )
