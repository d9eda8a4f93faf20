"""`python -m bench`'s options (no servers): `--quick` changes the defaults only, and the
run refuses a plan it cannot carry out before starting anything."""

from __future__ import annotations

import os

import pytest

from bench import run


def test_quick_shortens_the_run_but_an_explicit_option_wins() -> None:
    full = run.parse_args([])
    assert (full.seconds, full.search_seconds, full.fractions) == (20.0, 6.0, "0.3,0.6,0.8,0.9,1")
    quick = run.parse_args(["--quick"])
    assert quick.seconds == run.QUICK["seconds"]
    assert quick.fractions == "0.3,0.6,1.0"
    assert quick.search_resolution == 0.25
    assert run.parse_args(["--seconds", "7", "--quick"]).seconds == 7.0


@pytest.mark.parametrize(
    ("argv", "problem"),
    [
        (["--targets", "gateway,bogus"], "unknown targets"),
        (["--targets", "gateway"], "yardstick"),
        (["--fractions", "0.5,3"], "fractions"),
    ],
)
def test_a_plan_that_cannot_run_is_refused_up_front(argv: list[str], problem: str) -> None:
    args = run.parse_args(argv)
    wanted = args.targets.split(",")
    message = run.check_plan(args, wanted)
    assert message is not None
    assert problem in message


def test_fixed_loads_or_a_given_knee_need_no_relay() -> None:
    core = str(min(os.sched_getaffinity(0)))  # whatever this machine lets us use
    cores = ["--gateway-core", core, "--other-core", core]
    for plan in (["--streams", "500"], ["--relay-knee", "600"]):
        args = run.parse_args(["--targets", "gateway", *plan, *cores])
        assert run.check_plan(args, args.targets.split(",")) is None
