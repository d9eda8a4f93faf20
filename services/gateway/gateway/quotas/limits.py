"""A tenant's quotas, resolved from `QuotaSettings` (defaults, then its overrides)."""

from __future__ import annotations

from dataclasses import dataclass

from gateway.config import QuotaSettings

_MS_PER_HOUR = 3_600_000


@dataclass(frozen=True, slots=True)
class TenantLimits:
    """0 in any field: unlimited."""

    max_sessions: int
    starts_per_s: float
    start_burst: int
    audio_ms_per_day: int

    @property
    def unlimited(self) -> bool:
        """Nothing to check or count: such a tenant's sessions cost Redis nothing here."""
        return not (self.max_sessions or self.starts_per_s or self.audio_ms_per_day)


def limits_for(settings: QuotaSettings, tenant: str) -> TenantLimits:
    """The defaults, with whatever `settings.tenants[tenant]` sets in their place."""
    override = settings.tenants.get(tenant)
    max_sessions = settings.max_sessions
    starts_per_s = settings.starts_per_s
    start_burst = settings.start_burst
    audio_hours = settings.audio_hours_per_day
    if override is not None:
        if override.max_sessions is not None:
            max_sessions = override.max_sessions
        if override.starts_per_s is not None:
            starts_per_s = override.starts_per_s
        if override.start_burst is not None:
            start_burst = override.start_burst
        if override.audio_hours_per_day is not None:
            audio_hours = override.audio_hours_per_day
    return TenantLimits(
        max_sessions=max_sessions or 0,
        starts_per_s=starts_per_s or 0.0,
        start_burst=start_burst,
        audio_ms_per_day=round((audio_hours or 0.0) * _MS_PER_HOUR),
    )


def tenant_of(key: str) -> str:
    """The tenant of a scoped session key (`auth.principal.scoped_id`): "" for none."""
    tenant, _, _ = key.rpartition("/")
    return tenant
