"""The pure parts of the quotas: a tenant's limits from the settings (and the
environment), the refusals clients see, the keys of one tenant in one Cluster slot, and
the grouping of a pod's sessions by tenant."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from redis.crc import key_slot

from gateway.config import QuotaSettings, Settings, TenantQuota
from gateway.protocol import CloseCode, ErrorCode
from gateway.quotas.gate import QuotaGate, _by_tenant
from gateway.quotas.limits import limits_for, tenant_of
from gateway.quotas.refusals import refusal, rejection_reason


@dataclass
class Driver:
    session_id: str
    session_start_ms: int = 0
    audio_ms: int = 0


def test_a_tenant_gets_the_defaults_with_its_overrides() -> None:
    settings = QuotaSettings(
        max_sessions=10,
        starts_per_s=2.0,
        start_burst=5,
        audio_hours_per_day=1.5,
        tenants={"acme": TenantQuota(max_sessions=0, audio_hours_per_day=0.25)},
    )
    plain = limits_for(settings, "other")
    assert (plain.max_sessions, plain.starts_per_s, plain.start_burst) == (10, 2.0, 5)
    assert plain.audio_ms_per_day == 5_400_000
    acme = limits_for(settings, "acme")
    # Left out: inherited; 0: unlimited.
    assert (acme.max_sessions, acme.starts_per_s, acme.audio_ms_per_day) == (0, 2.0, 900_000)
    assert not acme.unlimited


def test_none_and_zero_are_unlimited() -> None:
    settings = QuotaSettings(max_sessions=None, starts_per_s=0, audio_hours_per_day=None)
    assert limits_for(settings, "").unlimited


def test_overrides_come_from_the_environment_as_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QUOTAS__MAX_SESSIONS", "3")
    monkeypatch.setenv("QUOTAS__TENANTS", '{"acme": {"max_sessions": 100, "starts_per_s": 0}}')
    settings = Settings().quotas
    assert limits_for(settings, "x").max_sessions == 3
    assert limits_for(settings, "acme").max_sessions == 100
    assert limits_for(settings, "acme").starts_per_s == 0
    monkeypatch.setenv("QUOTAS__TENANTS", '{"": {"max_sessions": 7}}')
    assert limits_for(Settings().quotas, "").max_sessions == 7  # the anonymous tenant
    monkeypatch.setenv("QUOTAS__TENANTS", '{"acme": {"max_session": 100}}')
    with pytest.raises(ValueError, match="max_session"):
        Settings()  # a misspelt limit is refused, not ignored


def test_the_tenant_of_a_scoped_key() -> None:
    assert tenant_of("acme/s-123") == "acme"
    assert tenant_of("s-123") == ""


def test_refusals_carry_their_codes_and_waits() -> None:
    rate = refusal("rate", 250, max_sessions=0)
    assert (rate.code, rate.retryable, rate.close_code) == (
        ErrorCode.RATE_LIMITED, True, CloseCode.TRY_AGAIN_LATER,
    )  # fmt: skip
    assert rate.retry_after_s == 0.25
    assert rejection_reason(rate) == "rate"
    cap = refusal("sessions", 0, max_sessions=7)
    assert (cap.code, cap.retryable, cap.close_code) == (
        ErrorCode.QUOTA_EXCEEDED, True, CloseCode.TRY_AGAIN_LATER,
    )  # fmt: skip
    assert "7" in cap.message
    assert rejection_reason(cap) == "quota"
    audio = refusal("audio", 3_600_000, max_sessions=0)
    assert (audio.code, audio.retryable, audio.close_code) == (
        ErrorCode.QUOTA_EXCEEDED, False, CloseCode.POLICY,
    )  # fmt: skip
    assert audio.event()["retry_after_s"] == 3600.0
    with pytest.raises(ValueError, match="not a refusal"):
        refusal("ok", 0, max_sessions=0)


def test_the_keys_of_one_tenant_share_a_cluster_slot() -> None:
    gate = QuotaGate(None, QuotaSettings(), "speech")
    for tenant in ("", "acme", "a.b-c_d"):
        slots = {key_slot(key.encode()) for key in gate.keys(tenant)}
        assert len(slots) == 1, tenant
    assert gate.keys("a") != gate.keys("b")


def test_a_lease_shorter_than_two_renewals_is_refused() -> None:
    with pytest.raises(ValueError, match="LEASE_S"):
        QuotaGate(None, QuotaSettings(renew_interval_s=10, lease_s=15), "speech")


def test_renewal_ticks_and_grouping_by_tenant() -> None:
    gate = QuotaGate(None, QuotaSettings(renew_interval_s=3, lease_s=10), "speech")
    assert [t for t in range(1, 10) if gate.due(t)] == [3, 6, 9]
    settings = QuotaSettings(
        tenants={"free": TenantQuota(max_sessions=0, starts_per_s=0, audio_hours_per_day=0)}
    )
    sessions = [Driver("a/1"), Driver("free/1"), Driver("a/2"), Driver("s-anon")]
    batches = _by_tenant(sessions, lambda tenant: limits_for(settings, tenant))
    assert {t: [s.session_id for s in b] for t, b in batches.items()} == {
        "a": ["a/1", "a/2"], "": ["s-anon"],
    }  # fmt: skip
