"""What a client is told when a quota refuses its session (PROTOCOL.md's codes).

- at the concurrent-sessions cap: `quota_exceeded`, retryable, close 1013 (try again
  later): a session of the tenant ending makes room;
- over the start rate: `rate_limited`, retryable, close 1013, `retry_after_s` = when the
  next start is allowed;
- over the day's audio: `quota_exceeded`, NOT retryable, close 1008 (policy): only UTC
  midnight helps, which `retry_after_s` says; a client must not sit in a retry loop for
  hours (a client retries after 1013 and any retryable error).
"""

from __future__ import annotations

from gateway.errors import SessionError
from gateway.protocol import CloseCode, ErrorCode

# At the cap nothing says when a session ends: a hint of a few seconds (leases of
# crashed pods' sessions run out within `QUOTAS__LEASE_S`).
CAP_RETRY_AFTER_S = 5.0


def refusal(verdict: str, wait_ms: int, *, max_sessions: int) -> SessionError:
    """The error for a refusing verdict of the ADMIT script (`sessions`, `audio`, `rate`)."""
    if verdict == "rate":
        return SessionError(
            ErrorCode.RATE_LIMITED,
            "too many new sessions for this tenant: start again later",
            retryable=True,
            close_code=CloseCode.TRY_AGAIN_LATER,
            retry_after_s=_seconds(wait_ms),
        )
    if verdict == "audio":
        return SessionError(
            ErrorCode.QUOTA_EXCEEDED,
            "this tenant's audio quota for the day (UTC) is used up",
            retryable=False,
            close_code=CloseCode.POLICY,
            retry_after_s=_seconds(wait_ms),
        )
    if verdict == "sessions":
        return SessionError(
            ErrorCode.QUOTA_EXCEEDED,
            f"this tenant has its {max_sessions} concurrent sessions: try again when one ends",
            retryable=True,
            close_code=CloseCode.TRY_AGAIN_LATER,
            retry_after_s=CAP_RETRY_AFTER_S,
        )
    raise ValueError(f"not a refusal: {verdict!r}")


def rejection_reason(error: SessionError) -> str:
    """The `events.rejected` reason (observability/metrics.REJECTION_REASONS)."""
    return "rate" if error.code is ErrorCode.RATE_LIMITED else "quota"


def _seconds(ms: int) -> float:
    return max(ms, 1) / 1000
