"""make bench's PNG, from a summary (no servers): the points each target's line goes
through, and a real PNG written."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench import plot


def _lv(target: str, n: int, phase: str, p99: float, ok: bool = True) -> dict[str, Any]:
    return {"target": target, "streams": n, "phase": phase, "p99_ms": p99, "ok": ok,
            "cpu_pct_per_stream": 0.1}  # fmt: skip


LEVELS = [
    _lv("relay", 400, "search", 8.0),
    _lv("relay", 800, "search", 900.0, ok=False),
    _lv("relay", 600, "search", 40.0),
    _lv("relay", 600, "fraction", 30.0),
    _lv("gateway", 600, "fraction", 150.0, ok=False),
    _lv("gateway", 1200, "overload", 60.0, ok=False),
    _lv("gateway", 300, "per_frame", 5.0),
]


def test_a_line_goes_through_every_load_once_in_order_with_whether_it_was_carried() -> None:
    assert plot.series(LEVELS, "relay", "p99_ms") == [
        (400, 8.0, True),
        (600, 30.0, True),  # the fraction level, run after the search probe
        (800, 900.0, False),
    ]
    # Neither the overload level nor Redis per frame is on the line.
    assert plot.series(LEVELS, "gateway", "p99_ms") == [(600, 150.0, False)]
    assert plot.series(LEVELS, "nginx", "p99_ms") == []


def test_the_png_is_written(tmp_path: Path) -> None:
    summary = {
        "levels": LEVELS,
        "relay_knee_streams": 600,
        "gateway_knee_streams": 540,
        "overload": {"offered": 1080, "admitted": 560, "refused": 520, "admitted_p99_ms": 60.0},
    }
    out = plot.write_plot(summary, tmp_path / "results" / "latest.png", "a title")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert out.stat().st_size > 10_000
