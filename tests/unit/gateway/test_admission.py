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


def test_a_worker_busy_nearly_all_the_time_is_saturated() -> None:
    gate = admission()
    gate.observe(0.0, busy=0.99)
    assert not gate.saturated(0)  # one busy second is not saturation
    for _ in range(5):
        gate.observe(0.0, busy=0.99)
    assert gate.saturated(0)
    for _ in range(3):
        gate.observe(0.0, busy=0.5)
    assert not gate.saturated(0)


def budget(max_busy: float = 0.8, start_cost_s: float = 1.0) -> Admission:
    limits = LimitSettings(
        max_concurrent_sessions=10_000, max_loop_busy=max_busy, start_cost_s=start_cost_s
    )
    return Admission(limits)


def steady(gate: Admission, sessions: int, busy: float, ticks: int = 20) -> None:
    for _ in range(ticks):
        gate.observe(0.0, busy=busy, sessions=sessions)


def test_the_session_that_would_pass_the_cpu_budget_is_refused() -> None:
    gate = budget(max_busy=0.8)
    steady(gate, 200, busy=0.4)  # 0.2 % of the core per session: 400 fit in 80 %
    assert gate.refusal(350, serves_it=False) is None
    assert not gate.saturated(350)
    refused = gate.refusal(400, serves_it=False)
    assert refused is not None
    assert (refused.code.value, refused.close_code, refused.retryable) == (
        "capacity_exhausted",
        1013,
        True,
    )
    assert refused.retry_after_s
    assert gate.saturated(400)
    # Sessions admitted and still opening count as the ones they will be.
    gate.opening = 60
    assert gate.refusal(350, serves_it=False) is not None
    # A resume of a session it serves replaces a connection: taken.
    assert gate.refusal(400, serves_it=True) is None


def test_a_flash_crowd_of_starts_does_not_count_as_steady_cost() -> None:
    gate = budget(max_busy=0.8, start_cost_s=1.0)
    steady(gate, 200, busy=0.4)
    # 200 more start within one tick: it costs their streams (300 on average over the
    # tick: 0.6) and their starts (0.4), all the core. busy / sessions would say 0.0025.
    for _ in range(200):
        gate.admitted()
    gate.opening = 0  # registered
    gate.observe(0.0, busy=1.0, sessions=400)
    assert gate.cpu.per_session is not None
    assert abs(gate.cpu.per_session - 0.002) < 0.0002
    assert gate.refusal(380, serves_it=False) is None


def test_the_projection_follows_a_change_of_cost() -> None:
    gate = budget(max_busy=0.8)
    steady(gate, 200, busy=0.4)
    assert gate.refusal(380, serves_it=False) is None
    steady(gate, 200, busy=0.7, ticks=5)  # each session costs more now (longer results)
    assert gate.refusal(250, serves_it=False) is not None


def test_an_idle_worker_learns_nothing_from_its_fixed_costs() -> None:
    gate = budget(max_busy=0.8)
    steady(gate, 1, busy=0.05)  # one session and the worker's own housekeeping
    assert gate.cpu.per_session is None
    assert gate.refusal(500, serves_it=False) is None


def test_a_budget_of_one_core_turns_the_cpu_bound_off() -> None:
    gate = budget(max_busy=1.0)
    steady(gate, 100, busy=1.0, ticks=10)
    assert gate.refusal(5_000, serves_it=False) is None
    assert not gate.saturated(5_000)


def test_a_tick_of_few_sessions_weighs_little_in_the_estimate() -> None:
    gate = budget(max_busy=0.8)
    # The first tick of a ramp: 20 sessions on average and the worker's fixed costs,
    # 0.008 each; then 220 and 400 sessions at 0.002 each. The mean of the ticks' ratios
    # would say 0.004.
    gate.observe(0.0, busy=0.16, sessions=40)
    gate.observe(0.0, busy=0.44, sessions=400)
    gate.observe(0.0, busy=0.8, sessions=400)
    assert gate.cpu.per_session is not None
    assert gate.cpu.per_session < 0.0024
