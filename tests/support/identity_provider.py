"""A test identity provider: RSA and EC keys made in the test (`cryptography`), tokens
signed with them (PyJWT), and its JWKS served by a real HTTP server on 127.0.0.1 (a thread
of this process). A stand-in only in that it is not a real provider's software: the
gateway fetches the JWKS over HTTP exactly as it would from one."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

ISSUER = "https://idp.test"
AUDIENCE = "speech-fleet"


@dataclass
class SigningKey:
    kid: str
    algorithm: str  # RS256 or ES256
    private: Any

    @classmethod
    def rsa(cls, kid: str = "rsa-1") -> SigningKey:
        return cls(kid, "RS256", rsa.generate_private_key(public_exponent=65537, key_size=2048))

    @classmethod
    def ec(cls, kid: str = "ec-1") -> SigningKey:
        return cls(kid, "ES256", ec.generate_private_key(ec.SECP256R1()))

    def public_pem(self) -> bytes:
        return bytes(
            self.private.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )

    def jwk(self) -> dict[str, Any]:
        algo = (
            jwt.algorithms.RSAAlgorithm if self.algorithm == "RS256" else jwt.algorithms.ECAlgorithm
        )
        data: dict[str, Any] = json.loads(algo.to_jwk(self.private.public_key()))
        return {**data, "kid": self.kid, "alg": self.algorithm, "use": "sig"}

    def token(
        self,
        *,
        tenant: str | None = "acme",
        issuer: str = ISSUER,
        audience: str = AUDIENCE,
        expires_in_s: float = 300,
        not_before_in_s: float | None = None,
        subject: str = "user-1",
        **extra: Any,
    ) -> str:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": issuer,
            "aud": audience,
            "sub": subject,
            "iat": now,
            "exp": now + int(expires_in_s),
            **extra,
        }
        if tenant is not None:
            claims["tenant"] = tenant
        if not_before_in_s is not None:
            claims["nbf"] = now + int(not_before_in_s)
        return jwt.encode(claims, self.private, algorithm=self.algorithm, headers={"kid": self.kid})


@dataclass
class JwksServer:
    url: str
    keys: list[SigningKey]
    fetches: list[float] = field(default_factory=list)


@contextlib.contextmanager
def serve_jwks(keys: list[SigningKey]) -> Iterator[JwksServer]:
    """The JWKS of `keys` (a list the test may change) at `server.url`."""
    state = JwksServer(url="", keys=keys)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            state.fetches.append(time.monotonic())
            body = json.dumps({"keys": [k.jwk() for k in state.keys]}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}/.well-known/jwks.json"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
