"""Identity-provider JWTs: RS256 and ES256, a static key or a JWKS served over real HTTP;
exp, nbf, iss, aud and the tenant claim checked; the JWKS fetched off the event loop."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import jwt
import pytest

from gateway.auth.jwt_bearer import JwtVerifier
from gateway.auth.refusal import AuthConfigError, AuthRefused
from gateway.config import JwtSettings
from tests.support.identity_provider import AUDIENCE, ISSUER, SigningKey, serve_jwks


def settings(**kwargs: object) -> JwtSettings:
    return JwtSettings(issuer=ISSUER, audience=AUDIENCE, **kwargs)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def rsa_key() -> SigningKey:
    return SigningKey.rsa()


@pytest.fixture(scope="module")
def ec_key() -> SigningKey:
    return SigningKey.ec()


def static_verifier(key: SigningKey, tmp_path: Path) -> JwtVerifier:
    pem = tmp_path / f"{key.kid}.pem"
    pem.write_bytes(key.public_pem())
    return JwtVerifier(settings(public_key_file=str(pem)))


@pytest.mark.parametrize("kind", ["rsa", "ec"])
async def test_a_valid_token_names_its_tenant(
    kind: str, tmp_path: Path, rsa_key: SigningKey, ec_key: SigningKey
) -> None:
    key = rsa_key if kind == "rsa" else ec_key
    principal = await static_verifier(key, tmp_path).verify(key.token(tenant="acme"))
    assert (principal.tenant, principal.subject, principal.session_id) == (
        "acme",
        "jwt:user-1",
        None,
    )


@pytest.mark.parametrize(
    ("claims", "reason"),
    [
        ({"expires_in_s": -120}, "token expired"),
        ({"not_before_in_s": 600}, "token not valid yet"),
        ({"audience": "someone-else"}, "token audience not accepted"),
        ({"issuer": "https://evil.test"}, "token issuer not accepted"),
        ({"tenant": None}, "lacks a valid tenant claim"),
        ({"tenant": "a/b"}, "lacks a valid tenant claim"),
    ],
)
async def test_a_token_that_fails_a_claim_is_refused_with_the_reason(
    claims: dict[str, object], reason: str, tmp_path: Path, rsa_key: SigningKey
) -> None:
    verifier = static_verifier(rsa_key, tmp_path)
    with pytest.raises(AuthRefused, match=reason) as refused:
        await verifier.verify(rsa_key.token(**claims))  # type: ignore[arg-type]
    assert refused.value.status == 401


async def test_expiry_allows_the_configured_leeway(tmp_path: Path, rsa_key: SigningKey) -> None:
    pem = tmp_path / "k.pem"
    pem.write_bytes(rsa_key.public_pem())
    verifier = JwtVerifier(settings(public_key_file=str(pem), leeway_s=60))
    assert (await verifier.verify(rsa_key.token(expires_in_s=-30))).tenant == "acme"


async def test_another_key_and_the_hs256_confusion_are_refused(
    tmp_path: Path, rsa_key: SigningKey
) -> None:
    verifier = static_verifier(rsa_key, tmp_path)
    with pytest.raises(AuthRefused, match="invalid token"):
        await verifier.verify(SigningKey.rsa("rsa-1").token())
    # An ES256 token whose kid names the RSA key: a key of the wrong type, still a 401.
    with pytest.raises(AuthRefused, match="invalid token"):
        await verifier.verify(SigningKey.ec("rsa-1").token())
    # HS256 signed with the public key as the secret: the classic algorithm confusion.
    forged = jwt.encode(
        {"iss": ISSUER, "aud": AUDIENCE, "tenant": "acme", "exp": 2**31},
        "a-secret-that-is-not-the-public-key-at-all",
        algorithm="HS256",
    )
    with pytest.raises(AuthRefused, match="algorithm not accepted"):
        await verifier.verify(forged)


async def test_jwks_keys_are_fetched_in_a_thread_and_cached(
    rsa_key: SigningKey, ec_key: SigningKey
) -> None:
    with serve_jwks([rsa_key, ec_key]) as jwks:
        verifier = JwtVerifier(settings(jwks_url=jwks.url))
        loop_thread = threading.get_ident()
        seen: list[int] = []
        original = verifier._jwks._client.fetch_data  # type: ignore[union-attr]

        def fetch() -> object:
            seen.append(threading.get_ident())
            return original()

        verifier._jwks._client.fetch_data = fetch  # type: ignore[union-attr,method-assign]
        results = await asyncio.gather(
            verifier.verify(rsa_key.token(tenant="acme")),
            verifier.verify(ec_key.token(tenant="globex")),
        )
        assert [p.tenant for p in results] == ["acme", "globex"]
        assert len(jwks.fetches) == 1  # one fetch for both, then the cache
        assert seen
        assert loop_thread not in seen
        await verifier.verify(rsa_key.token())
        assert len(jwks.fetches) == 1


async def test_an_unknown_kid_refetches_the_jwks_at_most_every_few_seconds(
    rsa_key: SigningKey,
) -> None:
    rotated = SigningKey.rsa("rsa-2")
    with serve_jwks([rsa_key]) as jwks:
        verifier = JwtVerifier(settings(jwks_url=jwks.url))
        assert (await verifier.verify(rsa_key.token())).tenant == "acme"
        jwks.keys.append(rotated)  # the provider rotates; our cache is fresh, 1 fetch old
        for _ in range(5):  # a flood of unknown kids does not hammer the provider
            with pytest.raises(AuthRefused, match="unknown key"):
                await verifier.verify(SigningKey.rsa("made-up").token())
        assert len(jwks.fetches) == 1


def test_jwt_settings_without_issuer_or_audience_refuse_to_start() -> None:
    with pytest.raises(AuthConfigError, match="AUTH__JWT__ISSUER and AUTH__JWT__AUDIENCE"):
        JwtVerifier(JwtSettings(jwks_url="http://127.0.0.1:1/jwks"))
    with pytest.raises(AuthConfigError, match="asymmetric"):
        JwtVerifier(settings(jwks_url="http://127.0.0.1:1/jwks", algorithms=["HS256"]))
