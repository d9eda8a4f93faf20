"""Admission control's decision, with explicit loads and lags."""

from __future__ import annotations

from gateway.config import LimitSettings
from gateway.sessions.admission import Admission


def admission(cap: int = 10, max_lag_s: float = 0.1) -> Admission:
    return Admission(LimitSettings(max_concurrent_sessions=cap, max_loop_lag_s=max_lag_s))


def test_below_the_cap_and_on_time_every_session_is_admitted() -> None:
    gate = admission()
    gate.observe(0.01)
    assert gate.refusal(9, serves_it=False) is None
    assert not gate.saturated(9)


def test_sessions_being_opened_count_against_the_cap() -> None:
    gate = admission(cap=2)
    gate.opening = 1
    refused = gate.refusal(1, serves_it=False)
    assert refused is not None
    assert refused.code.value == "capacity_exhausted"
    assert refused.close_code == 1013
    assert refused.retryable
    assert refused.retry_after_s


def test_a_lagging_loop_refuses_until_the_lag_has_decayed() -> None:
    gate = admission(max_lag_s=0.1)
    gate.observe(0.4)  # a long pause
    assert gate.refusal(0, serves_it=False) is not None
    gate.observe(0.0)
    assert gate.saturated(0)  # 0.2: still behind
    gate.observe(0.0)
    gate.observe(0.0)
    assert not gate.saturated(0)  # 0.05


def test_a_resume_of_a_session_it_serves_is_taken_even_when_saturated() -> None:
    gate = admission(cap=1)
    gate.observe(1.0)
    assert gate.refusal(1, serves_it=True) is None
    assert gate.refusal(1, serves_it=False) is not None


def test_a_loop_busy_nearly_all_the_time_is_saturated() -> None:
    gate = admission()
    gate.observe(0.0, busy=0.97)
    assert not gate.saturated(0)  # one busy second is not saturation
    for _ in range(4):
        gate.observe(0.0, busy=0.97)
    assert gate.saturated(0)
    for _ in range(3):
        gate.observe(0.0, busy=0.5)
    assert not gate.saturated(0)
