"""The run's picture, next to its JSON: CPU % of a core per stream, and p99 of final
latency, against streams, one line per target, with the knees marked, so that a reader
sees at a glance where each target stops carrying its load."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from bench.stats import SANE_P99_MS

PLOTTED = ("search", "fraction", "fixed")
_STYLE = {
    "direct": ("tab:gray", "gRPC direct (no target)"),
    "relay": ("tab:blue", "bare relay (1 core)"),
    "gateway": ("tab:red", "gateway (1 core)"),
    "nginx": ("tab:green", "NGINX + 2 gateways (2 cores)"),
}


def series(
    levels: Sequence[Mapping[str, Any]], target: str, key: str
) -> list[tuple[int, float, bool]]:
    """(streams, value, carried) of `target`'s search, fraction and fixed levels that have
    `key`, sorted by streams (of two levels at one load, the later one)."""
    points: dict[int, tuple[float, bool]] = {}
    for lv in levels:
        if lv["target"] != target or lv.get("phase") not in PLOTTED:
            continue
        value = lv.get(key)
        if value is not None:
            points[int(lv["streams"])] = (float(value), bool(lv.get("ok")))
    return [(n, *points[n]) for n in sorted(points)]


def write_plot(summary: Mapping[str, Any], path: Path, title: str = "") -> Path:
    """Two panels sharing the streams axis: CPU % per stream, p99 (log scale); the
    relay's and the gateway's knees as vertical lines, the 100 ms bound as a horizontal
    one, the overload level's admitted p99 as a cross; a load not carried is hollow."""
    levels: Sequence[Mapping[str, Any]] = summary.get("levels", [])
    fig = Figure(figsize=(9, 8), layout="constrained")
    cpu_ax, p99_ax = fig.subplots(2, 1, sharex=True)
    for target, (color, label) in _STYLE.items():
        for ax, key in ((cpu_ax, "cpu_pct_per_stream"), (p99_ax, "p99_ms")):
            points = series(levels, target, key)
            if not points:
                continue
            ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", color=color,
                    label=label)  # fmt: skip
            # A load not carried (an error, a lost final, a refusal, p99 or CPU too high):
            # a hollow marker on the line.
            miss = [(n, v) for n, v, ok in points if not ok]
            if miss:
                ax.plot([n for n, _ in miss], [v for _, v in miss], marker="o",
                        linestyle="none", markerfacecolor="white",
                        markeredgecolor=color)  # fmt: skip
    overload = summary.get("overload")
    if overload and overload.get("admitted_p99_ms") is not None:
        p99_ax.plot(
            [overload["offered"]],
            [overload["admitted_p99_ms"]],
            marker="x",
            markersize=10,
            linestyle="none",
            color=_STYLE["gateway"][0],
            label=f"gateway overload: {overload['admitted']} admitted, "
            f"{overload['refused']} refused of {overload['offered']}",
        )
    p99_ax.axhline(SANE_P99_MS, color="black", linestyle=":", linewidth=1)
    for key, color in (("relay_knee_streams", "tab:blue"), ("gateway_knee_streams", "tab:red")):
        knee = summary.get(key)
        if knee:
            label = f"{key.split('_')[0]}'s knee: {knee} streams"
            cpu_ax.axvline(knee, color=color, linestyle="--", linewidth=1, label=label)
            p99_ax.axvline(knee, color=color, linestyle="--", linewidth=1)
    cpu_ax.set_ylabel("CPU % of one core per stream")
    cpu_ax.set_ylim(bottom=0)
    cpu_ax.grid(alpha=0.3)
    cpu_ax.legend(fontsize=8, loc="upper right")
    p99_ax.set_yscale("log")
    p99_ax.set_ylabel("p99 final latency, ms (log)")
    p99_ax.set_xlabel("concurrent real-time streams")
    p99_ax.grid(alpha=0.3, which="both")
    p99_ax.legend(fontsize=8, loc="upper left")
    if title:
        cpu_ax.set_title(title, fontsize=10)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    return path
