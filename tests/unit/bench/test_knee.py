"""The plan of `make bench`, without servers: the knee search against a target whose
capacity is known, the loads at fractions of a knee, and the overload level."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from bench import knee


def run_search(search: knee.KneeSearch, carries: Callable[[int], bool]) -> list[int]:
    """Drives `search` against a target that carries a load when `carries` says so; the
    loads probed, in order."""
    probed = []
    while (n := search.next_load()) is not None:
        assert n not in probed, f"{n} probed twice"
        probed.append(n)
        search.record(n, carries(n))
        assert len(probed) < 40, "the search does not end"
    return probed


@pytest.mark.parametrize("capacity", [10, 37, 120, 333, 640, 1000, 2222])
def test_the_search_finds_the_capacity_within_its_resolution(capacity: int) -> None:
    search = knee.KneeSearch(start=50, limit=4000, resolution=0.05, step=10)
    probed = run_search(search, lambda n: n <= capacity)
    assert search.knee <= capacity
    # Within 5 % (or one step of 10) below the real capacity.
    assert capacity - search.knee <= max(10, 0.05 * search.knee) + 10
    assert not search.is_lower_bound
    # Doubling, then bisecting: a few probes, not a sweep.
    assert len(probed) <= 12


def test_the_search_doubles_from_its_start_then_bisects() -> None:
    search = knee.KneeSearch(start=50, limit=4000, resolution=0.05, step=10)
    probed = run_search(search, lambda n: n <= 640)
    # Doubling to the first load not carried, then halving the gap until it is within
    # 5 % of the knee.
    assert probed == [50, 100, 200, 400, 800, 600, 700, 650, 620]
    assert search.knee == 620
    assert search.probes == [(n, n <= 640) for n in probed]


def test_a_target_that_carries_the_limit_gives_a_lower_bound() -> None:
    search = knee.KneeSearch(start=50, limit=300, resolution=0.05, step=10)
    probed = run_search(search, lambda n: True)
    assert probed == [50, 100, 200, 300]
    assert search.knee == 300
    assert search.is_lower_bound


def test_a_target_that_carries_nothing_has_a_knee_of_zero() -> None:
    search = knee.KneeSearch(start=50, limit=4000, resolution=0.05, step=10)
    probed = run_search(search, lambda n: False)
    assert probed[0] == 50
    assert min(probed) == 10  # bisected down to one step
    assert search.knee == 0
    assert not search.is_lower_bound


def test_a_larger_load_carried_after_a_smaller_one_failed_wins() -> None:
    # Noise: 400 failed once, then 500 carried; the search trusts what was carried.
    search = knee.KneeSearch(start=50, limit=4000)
    search.record(400, False)
    search.record(500, True)
    assert search.knee == 500
    assert search.failed is None
    assert search.next_load() == 1000


def test_a_seeded_search_starts_from_the_loads_already_measured() -> None:
    # The gateway at fractions of a relay knee of 600: carried up to 0.8, not at 0.9, 1.0.
    done = [(180, True), (360, True), (480, True), (540, False), (600, False)]
    search = knee.KneeSearch.seeded(done, start=50, limit=4000, resolution=0.05)
    assert (search.carried, search.failed) == (480, 540)
    assert search.next_load() == 510
    search.record(510, True)
    # 30 apart is more than 5 % of 510: one more probe, then 10 apart is close enough.
    assert search.next_load() == 520
    search.record(520, False)
    assert search.next_load() is None
    assert search.knee == 510


def test_a_seeded_search_goes_up_when_every_fraction_was_carried() -> None:
    done = [(180, True), (360, True), (600, True)]
    search = knee.KneeSearch.seeded(done, start=50, limit=4000)
    assert search.next_load() == 1200


def test_a_low_failure_among_carried_fractions_is_taken_as_noise() -> None:
    done = [(180, False), (360, True), (600, True)]
    search = knee.KneeSearch.seeded(done, start=50, limit=4000)
    assert search.carried == 600
    assert search.failed is None


def test_fraction_loads_of_a_knee() -> None:
    assert knee.fraction_loads(600) == [(0.3, 180), (0.6, 360), (0.8, 480), (0.9, 540), (1.0, 600)]
    # Small knees: at least one stream, and a load two fractions share is run once.
    assert knee.fraction_loads(1) == [(0.3, 1)]
    assert knee.fraction_loads(10, [0.3, 0.6, 0.62, 1.0]) == [(0.3, 3), (0.6, 6), (1.0, 10)]


def test_the_overload_level_is_twice_the_gateways_knee() -> None:
    assert knee.overload_load(450) == 900
    assert knee.overload_load(450, 1.5) == 675
    assert knee.overload_load(0) is None


def test_fractions_are_parsed_and_checked() -> None:
    assert knee.parse_fractions("0.3, 0.6,1") == [0.3, 0.6, 1.0]
    for bad in ("", "0", "-0.5", "2.0"):
        with pytest.raises(ValueError, match="fractions"):
            knee.parse_fractions(bad)
