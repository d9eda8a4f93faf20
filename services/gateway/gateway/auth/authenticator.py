"""From a presented credential to a Principal: API keys, identity-provider JWTs and the
gateway's own session tokens, as the settings enable them."""

from __future__ import annotations

from pathlib import Path

from gateway.auth.jwt_bearer import JwtVerifier
from gateway.auth.keys import KEY_PREFIX, KeyFile, KeyFileError
from gateway.auth.principal import ANONYMOUS, Principal
from gateway.auth.refusal import AuthConfigError, forbidden, unauthorized
from gateway.auth.session_tokens import SessionTokens, is_gateway_token
from gateway.config import AuthSettings

_NO_SOURCE = (
    "authentication is required (AUTH__REQUIRED, on by default) but no credential source "
    "is configured: set AUTH__API_KEYS_FILE and/or AUTH__JWT__JWKS_URL or "
    "AUTH__JWT__PUBLIC_KEY_FILE (with AUTH__JWT__ISSUER and AUTH__JWT__AUDIENCE); for a "
    "development fleet without authentication set AUTH__REQUIRED=false"
)


class Authenticator:
    """`authenticate(credential)`: the caller's Principal, or AuthRefused. With
    authentication off every caller is ANONYMOUS and credentials are not looked at."""

    def __init__(
        self,
        *,
        required: bool,
        keys: KeyFile | None = None,
        jwts: JwtVerifier | None = None,
        session_tokens: SessionTokens | None = None,
    ) -> None:
        self.required = required
        self.keys = keys
        self.jwts = jwts
        self.session_tokens = session_tokens

    @classmethod
    def from_settings(cls, settings: AuthSettings) -> Authenticator:
        """Raises AuthConfigError, naming the settings, when they cannot work."""
        if not settings.required:
            return cls(required=False)
        keys = jwts = tokens = None
        if settings.api_keys_file:
            try:
                keys = KeyFile(Path(settings.api_keys_file))
            except KeyFileError as exc:
                raise AuthConfigError(f"AUTH__API_KEYS_FILE: {exc}") from None
        if settings.jwt.jwks_url or settings.jwt.public_key_file:
            jwts = JwtVerifier(settings.jwt)
        if keys is None and jwts is None:
            raise AuthConfigError(_NO_SOURCE)
        if settings.session_token_secret is not None:
            tokens = SessionTokens(
                settings.session_token_secret.get_secret_value(), settings.session_token_ttl_s
            )
        return cls(required=True, keys=keys, jwts=jwts, session_tokens=tokens)

    async def authenticate(self, credential: str | None) -> Principal:
        if not self.required:
            return ANONYMOUS
        if credential is None:
            raise unauthorized("credentials required")
        if credential.startswith(KEY_PREFIX):
            if self.keys is not None:
                key = await self.keys.lookup(credential)
                if key is not None:
                    return Principal(tenant=key.tenant, subject=f"key:{key.key_id}")
            raise unauthorized("invalid API key")
        if credential.count(".") != 2:
            raise unauthorized("unrecognised credential: an API key or a JWT")
        if is_gateway_token(credential):
            if self.session_tokens is None:
                raise unauthorized("invalid token")
            return self.session_tokens.verify(credential)
        if self.jwts is None:
            raise unauthorized("JWTs are not accepted here")
        return await self.jwts.verify(credential)

    async def authorize_session(self, credential: str | None, session_id: str) -> Principal:
        """`authenticate`, then 403 for a session token of another session id."""
        principal = await self.authenticate(credential)
        if not principal.may_use(session_id):
            raise forbidden("this token is for another session")
        return principal
