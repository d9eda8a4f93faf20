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
    """`ticks` one-second samples of `sessions` using `busy` of the core."""
    for _ in range(ticks):
        gate.sample(busy, 1.0, sessions)


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
    gate.sample(1.0, 1.0, 400)
    assert gate.cpu.per_session is not None
    assert abs(gate.cpu.per_session - 0.002) < 0.0002
    assert gate.refusal(380, serves_it=False) is None


def test_the_projection_follows_a_change_of_cost() -> None:
    gate = budget(max_busy=0.8)
    steady(gate, 200, busy=0.4)
    assert gate.refusal(380, serves_it=False) is None
    steady(gate, 200, busy=0.7)  # each session costs more now (longer results)
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


def test_a_sample_of_few_sessions_weighs_little_in_the_estimate() -> None:
    gate = budget(max_busy=0.8)
    # The first tick of a ramp: 20 sessions on average and the worker's fixed costs,
    # 0.008 each; then 220 and 400 sessions at 0.002 each. The mean of the ticks' ratios
    # would say 0.004.
    gate.sample(0.16, 1.0, 40)
    gate.sample(0.44, 1.0, 400)
    gate.sample(0.8, 1.0, 400)
    assert gate.cpu.per_session is not None
    assert gate.cpu.per_session < 0.0024


def test_samples_of_a_quarter_second_say_the_same_per_session_cost() -> None:
    gate = budget()
    gate.sample(0.0, 0.25, 200)  # idle: nothing learnt; 200 sessions from here on
    for _ in range(8):
        gate.sample(0.1, 0.25, 200)  # 40 % of the core over 200 sessions
    assert gate.cpu.per_session is not None
    assert abs(gate.cpu.per_session - 0.002) < 1e-9


def test_a_saturated_sample_can_raise_the_estimate_but_not_lower_it() -> None:
    gate = budget()
    steady(gate, 200, busy=0.5, ticks=40)  # 0.0025 each (the window: all steady)
    before = gate.cpu.per_session
    assert before is not None
    # A flash crowd saturates the core: it did 0.99 of work asked of more.
    gate.sample(0.99, 1.0, 600)
    assert gate.cpu.per_session == before
    # Saturated and dearer than thought: the floor moves the estimate up.
    gate.sample(0.99, 1.0, 300)  # 450 on average over it: cheaper, ignored
    assert gate.cpu.per_session == before
    gate.sample(0.99, 1.0, 300)  # 300: 0.0033 each at least
    assert gate.cpu.per_session > before


def test_samples_without_a_session_teach_nothing() -> None:
    gate = budget()
    gate.sample(0.3, 0.25, 0)  # a warm-up request, no session streaming
    assert gate.cpu.per_session is None
    assert gate.refusal(300, serves_it=False) is None
