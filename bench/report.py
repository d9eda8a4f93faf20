"""The table a reader sees: one row per level (search probes, fractions of the relay's
knee, the overload level), and the headline figures under it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

_COLUMNS = (
    # header, key, format
    ("phase", None, ""),
    ("target", "target", "{}"),
    ("N", "streams", "{}"),
    ("CPU %", "cpu_pct", "{:.1f}"),
    ("%/stream", "cpu_pct_per_stream", "{:.3f}"),
    ("RSS KB/sess", "rss_kb_per_session", "{:.1f}"),
    ("p50 ms", "p50_ms", "{:.1f}"),
    ("p99 ms", "p99_ms", "{:.1f}"),
    ("errors", "errors", "{}"),
    ("refused", "refused", "{}"),
    ("refusal p99 ms", "refusal_p99_ms", "{:.1f}"),
    ("finals recv/exp", None, ""),
    ("redis ops/s/sess", "redis_ops_per_session_second", "{:.3f}"),
    ("nginx %", "nginx_cpu_pct", "{:.1f}"),
    ("loadgen %", "loadgen_cpu_pct", "{:.1f}"),
    ("asr %", "asr_cpu_pct", "{:.1f}"),
    ("core0/1 busy %", None, ""),
    ("ok", "ok", "{}"),
)


def _cell(level: Mapping[str, Any], header: str, key: str | None, fmt: str) -> str:
    if header == "phase":
        phase = str(level.get("phase") or "")
        fraction = level.get("fraction")
        return f"{phase} {fraction:g}" if fraction is not None else phase
    if header == "finals recv/exp":
        return f"{level.get('finals_received')}/{level.get('finals_expected')}"
    if header == "core0/1 busy %":
        busy = level.get("core_busy_pct") or {}
        return "/".join(f"{busy[c]:.0f}" for c in sorted(busy))
    value = level.get(key or "")
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "NO"
    return fmt.format(value)


def format_table(
    levels: Sequence[Mapping[str, Any]],
    summary: Mapping[str, Any],
    per_frame: Sequence[Mapping[str, Any]] = (),
) -> str:
    rows = [[h for h, _, _ in _COLUMNS]]
    rows += [[_cell(lv, h, k, f) for h, k, f in _COLUMNS] for lv in levels]
    widths = [max(len(r[i]) for r in rows) for i in range(len(_COLUMNS))]
    lines = ["  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    notes = [
        "",
        "CPU % = the target's processes (gunicorn master + worker; for nginx: both gateways)"
        " as % of one core over the steady window; direct has no target process.",
        f"relay_knee_streams={summary.get('relay_knee_streams')}  "
        f"gateway_knee_streams={summary.get('gateway_knee_streams')}  "
        f"capacity_ratio={summary.get('capacity_ratio')}  "
        f"cpu_ratio_vs_relay={summary.get('cpu_ratio_vs_relay')} "
        f"(worst, at {summary.get('cpu_ratio_vs_relay_at_fraction')} of the relay's knee)  "
        f"added_p99_ms_at_0_6={summary.get('added_p99_ms_at_0_6')}  "
        f"rss_kb_per_session={summary.get('rss_kb_per_session')}",
        f"overload={summary.get('overload')}",
    ]
    if per_frame:
        notes.append(
            "Redis per audio frame (the same gateway load and audio, frames of each size):"
        )
        for lv in per_frame:
            notes.append(
                f"  N={lv.get('streams')} frame={lv.get('frame_ms')}ms "
                f"frames/s={lv.get('frames_per_s')} redis ops/s={lv.get('redis_ops_per_s')} "
                f"round trips/s={lv.get('redis_round_trips_per_s')} "
                f"finals={lv.get('finals_received')}/{lv.get('finals_expected')} "
                f"p99={lv.get('p99_ms')} ok={lv.get('ok')}"
            )
        notes.append(
            f"  redis_ops_per_frame={summary.get('redis_ops_per_frame')} "
            f"redis_round_trips_per_frame={summary.get('redis_round_trips_per_frame')} "
            "(Δ per s ÷ Δ frames per s)"
        )
    notes.append(
        f"redis_ops_per_session_second={summary.get('redis_ops_per_session_second')}  "
        "redis_round_trips_per_session_second="
        f"{summary.get('redis_round_trips_per_session_second')} "
        f"(at N={summary.get('redis_rates_at_streams')})"
    )
    for lv in [*levels, *per_frame]:
        if lv.get("error_kinds"):
            notes.append(f"{lv['target']} N={lv['streams']} errors: {lv['error_kinds']}")
    return "\n".join(lines + notes)
