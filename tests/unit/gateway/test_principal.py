"""Tenant-scoped session keys: two tenants' sessions with one id never share a key."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from gateway.auth.principal import ANONYMOUS, TENANT_RE, Principal, public_id, scoped_id

session_ids = st.from_regex(r"[A-Za-z0-9_-]{8,64}", fullmatch=True)
tenants = st.from_regex(TENANT_RE, fullmatch=True)


def test_the_anonymous_tenant_keeps_the_clients_id() -> None:
    assert ANONYMOUS.key("abcdefgh") == "abcdefgh"


@given(tenants, tenants, session_ids)
def test_scoped_ids_differ_per_tenant_and_give_back_the_id(a: str, b: str, sid: str) -> None:
    assert public_id(scoped_id(a, sid)) == sid
    if a != b:
        assert scoped_id(a, sid) != scoped_id(b, sid)
    assert scoped_id(a, sid) != sid


def test_a_session_scoped_principal_may_use_only_its_session() -> None:
    page = Principal(tenant="acme", session_id="session-1")
    assert page.may_use("session-1")
    assert not page.may_use("session-2")
    assert Principal(tenant="acme").may_use("session-2")
