"""JWT bearer tokens from an identity provider (PyJWT): RS256/ES256, signed by a key from
its JWKS URL or by one static public key; `exp`, `nbf`, `iss` and `aud` checked, the
tenant in a claim.

The JWKS is fetched in a thread (urllib blocks) and cached; an unknown `kid` fetches it
again at most once per `_MIN_REFRESH_S`, so that a flood of tokens with made-up key ids
cannot make the gateway hammer the identity provider.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from gateway.auth.principal import TENANT_RE, Principal
from gateway.auth.refusal import AuthConfigError, AuthRefused, unauthorized
from gateway.config import JwtSettings

log = logging.getLogger(__name__)

_MIN_REFRESH_S = 10.0
_ASYMMETRIC = {"RS256", "RS384", "RS512", "ES256", "ES384", "ES512", "PS256", "EdDSA"}


class JwksKeys:
    """Signing keys by `kid` from a JWKS URL, fetched off the event loop and cached."""

    def __init__(
        self,
        url: str,
        *,
        cache_s: float,
        timeout_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._url = url
        self._client = jwt.PyJWKClient(
            url, cache_jwk_set=False, cache_keys=False, timeout=timeout_s
        )
        self._cache_s = cache_s
        self._clock = clock
        self._keys: dict[str | None, jwt.PyJWK] = {}
        self._fetched_at: float | None = None
        self._lock = asyncio.Lock()

    async def key(self, kid: str | None) -> jwt.PyJWK | None:
        """The key `kid` names (None: not in the JWKS); AuthRefused (503) when the JWKS
        cannot be fetched and no key of that id is held from before."""
        now = self._clock()
        fresh = self._fetched_at is not None and now - self._fetched_at < self._cache_s
        if fresh and kid in self._keys:
            return self._keys[kid]
        failed = False
        async with self._lock:  # one fetch at a time; the others use its result
            last = self._fetched_at
            if last is None or self._clock() - last >= _MIN_REFRESH_S:
                failed = not await self._fetch()
        if failed and kid not in self._keys:
            raise AuthRefused(503, "the identity provider's keys are unavailable: try again")
        return self._keys.get(kid)

    async def _fetch(self) -> bool:
        try:
            data: dict[str, Any] = await asyncio.to_thread(self._client.fetch_data)
            keys = jwt.PyJWKSet.from_dict(data).keys
        except (jwt.PyJWTError, ValueError, OSError) as exc:
            log.warning("JWKS fetch from %s failed: %r", self._url, exc)
            # The keys held are kept (stale beats none); the next try after _MIN_REFRESH_S.
            self._fetched_at = self._clock()
            return False
        self._keys = {k.key_id: k for k in keys}
        if len(keys) == 1:
            self._keys.setdefault(None, keys[0])  # a token without `kid`, one key
        self._fetched_at = self._clock()
        return True


class JwtVerifier:
    """Checks an identity provider's token; the Principal it names, or AuthRefused (401)."""

    def __init__(self, settings: JwtSettings) -> None:
        self._settings = settings
        problems = []
        if not settings.issuer:
            problems.append("AUTH__JWT__ISSUER")
        if not settings.audience:
            problems.append("AUTH__JWT__AUDIENCE")
        if problems:
            raise AuthConfigError(f"JWTs are configured: set {' and '.join(problems)}")
        bad = set(settings.algorithms) - _ASYMMETRIC
        if bad or not settings.algorithms:
            raise AuthConfigError(
                f"AUTH__JWT__ALGORITHMS: asymmetric algorithms only (RS256, ES256), not {bad}"
            )
        self._static: Any = None
        self._jwks: JwksKeys | None = None
        if settings.public_key_file:
            try:
                self._static = load_pem_public_key(Path(settings.public_key_file).read_bytes())
            except (OSError, ValueError) as exc:
                raise AuthConfigError(
                    f"AUTH__JWT__PUBLIC_KEY_FILE {settings.public_key_file}: {exc}"
                ) from None
        else:
            self._jwks = JwksKeys(
                settings.jwks_url, cache_s=settings.jwks_cache_s, timeout_s=settings.jwks_timeout_s
            )

    async def verify(self, token: str) -> Principal:
        s = self._settings
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError:
            raise unauthorized("malformed token") from None
        if header.get("alg") not in s.algorithms:
            raise unauthorized("token algorithm not accepted")
        key = self._static
        if self._jwks is not None:
            found = await self._jwks.key(header.get("kid"))
            if found is None:
                raise unauthorized("token signed by an unknown key")
            key = found.key
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=list(s.algorithms),
                audience=s.audience,
                issuer=s.issuer,
                leeway=s.leeway_s,
                options={"require": ["exp", "iss", "aud"]},
            )
        except jwt.ExpiredSignatureError:
            raise unauthorized("token expired") from None
        except jwt.ImmatureSignatureError:
            raise unauthorized("token not valid yet") from None
        except jwt.InvalidAudienceError:
            raise unauthorized("token audience not accepted") from None
        except jwt.InvalidIssuerError:
            raise unauthorized("token issuer not accepted") from None
        except jwt.MissingRequiredClaimError as exc:
            raise unauthorized(f"token lacks the {exc.claim} claim") from None
        except (jwt.PyJWTError, TypeError, ValueError):
            # Also a key of another type than the token's algorithm (an ES256 token and
            # an RSA key): PyJWT raises TypeError or InvalidKeyError for those.
            raise unauthorized("invalid token") from None
        tenant = claims.get(s.tenant_claim)
        if not isinstance(tenant, str) or not TENANT_RE.fullmatch(tenant):
            raise unauthorized(f"token lacks a valid {s.tenant_claim} claim")
        # For logs and audit: bounded, whatever the provider puts there.
        subject = str(claims.get("sub") or "")[:128]
        return Principal(tenant=tenant, subject=f"jwt:{subject}" if subject else "jwt")
