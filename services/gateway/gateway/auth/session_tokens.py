"""The gateway's own short-lived tokens: one tenant, one session id, a few minutes.

`POST /api/v1/tokens` exchanges an API key or an identity provider's JWT for one of these,
so that a browser page is handed a credential that can open (and resume) one session and
nothing else, and that expires soon. HS256 with a secret every pod of the fleet shares
(`AUTH__SESSION_TOKEN_SECRET`); their own issuer and audience keep them apart from any
other JWT signed with the same secret by mistake.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import jwt

from gateway.auth.principal import TENANT_RE, Principal
from gateway.auth.refusal import AuthConfigError, unauthorized
from gateway.protocol import SESSION_ID_RE

ALGORITHM = "HS256"
ISSUER = "speech-gateway"
AUDIENCE = "speech-gateway-session"
MIN_SECRET_BYTES = 32


class SessionTokens:
    def __init__(self, secret: str, ttl_s: int, *, clock: Callable[[], float] = time.time) -> None:
        if len(secret.encode()) < MIN_SECRET_BYTES:
            raise AuthConfigError(
                f"AUTH__SESSION_TOKEN_SECRET must be at least {MIN_SECRET_BYTES} bytes"
            )
        self._secret = secret
        self.ttl_s = ttl_s
        self._clock = clock

    def issue(self, principal: Principal, session_id: str) -> tuple[str, int]:
        """A token for `principal`'s tenant and `session_id` only; (token, expires_at)."""
        now = int(self._clock())
        expires_at = now + self.ttl_s
        claims = {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": principal.subject,
            "tenant": principal.tenant,
            "sid": session_id,
            "iat": now,
            "nbf": now,
            "exp": expires_at,
        }
        return jwt.encode(claims, self._secret, algorithm=ALGORITHM), expires_at

    def verify(self, token: str) -> Principal:
        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=[ALGORITHM],
                audience=AUDIENCE,
                issuer=ISSUER,
                leeway=5,
                options={"require": ["exp", "iss", "aud", "sid"]},
            )
        except jwt.ExpiredSignatureError:
            raise unauthorized("token expired") from None
        except jwt.PyJWTError:
            raise unauthorized("invalid token") from None
        tenant, session_id = claims.get("tenant"), claims.get("sid")
        # Tenant "" is a token issued while authentication was off: never valid with it on.
        if not isinstance(tenant, str) or not TENANT_RE.fullmatch(tenant):
            raise unauthorized("invalid token")
        if not isinstance(session_id, str) or not SESSION_ID_RE.fullmatch(session_id):
            raise unauthorized("invalid token")
        return Principal(
            tenant=tenant, subject=str(claims.get("sub") or "session"), session_id=session_id
        )


def is_gateway_token(token: str) -> bool:
    """Whether a JWT claims to be one of ours (by its algorithm; the signature decides)."""
    try:
        return jwt.get_unverified_header(token).get("alg") == ALGORITHM
    except jwt.InvalidTokenError:
        return False
