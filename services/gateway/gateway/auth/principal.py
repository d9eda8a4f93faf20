"""The caller a request was authenticated as, and the tenant-scoped session key.

Sessions belong to a tenant: two tenants may use the same session id without meeting,
because every key the gateway derives from a session (Redis keys, the registry, takeover
notices) is built from `scoped_id(tenant, session_id)`. With authentication off every
caller is `ANONYMOUS`, whose tenant is "", and the scoped id is the session id itself.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Tenant names as API key files and token claims may give them; "/" never appears in a
# tenant or a session id, so a scoped id splits back into exactly one pair.
TENANT_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


@dataclass(frozen=True, slots=True)
class Principal:
    # "" when authentication is off (the local fleet).
    tenant: str
    # The API key's id or the token's `sub`, for logs and audit; never a secret.
    subject: str = ""
    # A session-scoped token (the page's): only this session id; None: any of the tenant's.
    session_id: str | None = None

    def may_use(self, session_id: str) -> bool:
        return self.session_id is None or self.session_id == session_id

    def key(self, session_id: str) -> str:
        return scoped_id(self.tenant, session_id)


ANONYMOUS = Principal(tenant="")


def scoped_id(tenant: str, session_id: str) -> str:
    """The id a session is stored and registered under."""
    return f"{tenant}/{session_id}" if tenant else session_id


def public_id(scoped: str) -> str:
    """The client's own session id from a scoped id."""
    return scoped.rpartition("/")[2]
