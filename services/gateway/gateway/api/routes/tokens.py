"""`POST /api/v1/tokens`: an API key or an identity provider's JWT in, a short-lived token
for one session id of the caller's tenant out. A site's backend calls it and hands the
token to its page, so that the page never holds an API key (docs/auth.md)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, HTTPException, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import HTTPConnection

from gateway.api.authn import challenge, get_authenticator
from gateway.auth.authenticator import Authenticator
from gateway.auth.credentials import find_credential
from gateway.auth.principal import ANONYMOUS, Principal
from gateway.auth.refusal import AuthRefused
from gateway.observability import events
from gateway.protocol import SESSION_ID_RE

router = APIRouter(prefix="/tokens", tags=["auth"])


class TokenRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    session_id: str = Field(pattern=SESSION_ID_RE.pattern, description="the one session id")


class TokenResponse(BaseModel):
    access_token: str
    token_type: Literal["Bearer"] = "Bearer"
    expires_in: int
    expires_at: int
    session_id: str


async def header_principal(conn: HTTPConnection) -> Principal:
    """The caller, from the Authorization header only: a long-lived key in a query
    string ends up in browser histories and proxy logs."""
    authenticator = get_authenticator(conn)
    if not authenticator.required:
        return ANONYMOUS
    try:
        return await authenticator.authenticate(find_credential(conn.headers, {}))
    except AuthRefused as refused:
        events.rejected("auth")
        raise HTTPException(refused.status, refused.body, headers=challenge(refused)) from None


@router.post("", response_model=TokenResponse)
async def create_token(
    body: TokenRequest,
    response: Response,
    principal: Annotated[Principal, Depends(header_principal)],
    authenticator: Annotated[Authenticator, Depends(get_authenticator)],
) -> TokenResponse:
    """A session token for `session_id` in the caller's tenant; 404 when this fleet has
    no authentication or no `AUTH__SESSION_TOKEN_SECRET`."""
    tokens = authenticator.session_tokens
    if not authenticator.required or tokens is None:
        raise HTTPException(404, "session tokens are not enabled on this fleet")
    if principal.session_id is not None:
        raise HTTPException(403, "unauthorized: a session token cannot make tokens")
    token, expires_at = tokens.issue(principal, body.session_id)
    response.headers["Cache-Control"] = "no-store"
    return TokenResponse(
        access_token=token,
        expires_in=tokens.ttl_s,
        expires_at=expires_at,
        session_id=body.session_id,
    )
