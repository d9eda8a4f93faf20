"""The AUTH__ settings of a test fleet with authentication on, and API keys made through
the gateway's own command; for any test that needs tenants (tests/integration/test_auth*)."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

from gateway.auth.keys import main as keys_command
from tests.support.identity_provider import AUDIENCE, ISSUER

SESSION_TOKEN_SECRET = "fleet-wide-session-token-secret-0123456789"


def add_key(path: Path, tenant: str) -> str:
    """A new key for `tenant` in the keys file at `path`; the key, as printed once."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        assert keys_command(["--file", str(path), "add", "--tenant", tenant]) == 0
    return out.getvalue().strip()


def auth_env(keys_file: Path, jwks_url: str | None = None) -> dict[str, str]:
    """Gateway environment: API keys from `keys_file`, JWTs of the test identity provider
    when its `jwks_url` is given, session tokens on."""
    env = {
        "AUTH__REQUIRED": "true",
        "AUTH__API_KEYS_FILE": str(keys_file),
        "AUTH__SESSION_TOKEN_SECRET": SESSION_TOKEN_SECRET,
    }
    if jwks_url:
        env.update(
            AUTH__JWT__JWKS_URL=jwks_url, AUTH__JWT__ISSUER=ISSUER, AUTH__JWT__AUDIENCE=AUDIENCE
        )
    return env
