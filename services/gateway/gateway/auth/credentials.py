"""Where a caller's credential travels: the `Authorization: Bearer` header, the
`?access_token=` query parameter, or (browsers cannot set headers on a WebSocket) the
`bearer.<token>` sub-protocol (PROTOCOL.md). The first found, in that order, counts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from gateway.auth.refusal import unauthorized

BEARER_PROTOCOL_PREFIX = "bearer."
# The sub-protocol a browser offers beside its `bearer.<token>` so that the server has a
# protocol to select that does not echo the token back (docs/auth.md).
SPEECH_PROTOCOL = "speech.v1"


def find_credential(
    headers: Mapping[str, str],
    query: Mapping[str, str],
    subprotocols: Sequence[str] = (),
) -> str | None:
    """The credential a request presents, or None; AuthRefused (401) for an Authorization
    header of another scheme (Basic) or an empty one."""
    authorization = headers.get("authorization")
    if authorization is not None:
        scheme, _, token = authorization.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise unauthorized("use Authorization: Bearer <token>")
        return token.strip()
    for protocol in subprotocols:
        if protocol.startswith(BEARER_PROTOCOL_PREFIX) and len(protocol) > len(
            BEARER_PROTOCOL_PREFIX
        ):
            return protocol[len(BEARER_PROTOCOL_PREFIX) :]
    return query.get("access_token") or None


def selected_subprotocol(offered: Sequence[str], preferred: str | None = None) -> str | None:
    """The sub-protocol to accept: a browser fails the handshake when it offered some and
    the server selects none. `preferred` if offered, else the first that is not a
    credential, else the bearer one (the client's own token, echoed)."""
    if preferred is not None and preferred in offered:
        return preferred
    for protocol in offered:
        if not protocol.startswith(BEARER_PROTOCOL_PREFIX):
            return protocol
    return offered[0] if offered else None
