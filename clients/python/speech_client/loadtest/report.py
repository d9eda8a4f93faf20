"""The load test's report: one JSON-ready dict, and a human table of it."""

from __future__ import annotations

from collections import Counter
from typing import Any

from speech_client.loadtest.runner import LoadRun
from speech_client.loadtest.stats import LatencySummary, SessionResult

MAX_ERROR_SAMPLES = 5


def _ms(summary: LatencySummary) -> dict[str, Any]:
    def ms(seconds: float | None) -> float | None:
        return None if seconds is None else round(seconds * 1000, 1)

    return {
        "count": summary.count,
        "p50": ms(summary.p50),
        "p90": ms(summary.p90),
        "p99": ms(summary.p99),
        "max": ms(summary.max),
    }


def _counts(values: list[str]) -> dict[str, int]:
    return dict(sorted(Counter(values).items()))


def build_report(run: LoadRun) -> dict[str, Any]:
    results: list[SessionResult] = run.stats.results
    options = run.options
    ok = sum(r.ok for r in results)
    failed = [r for r in results if not r.ok]
    stopped = [r for r in results if r.finals_reported is not None]
    return {
        "url": options.url,
        "run_id": options.run_id,
        "sessions": {"requested": options.sessions, "ok": ok, "failed": len(failed)},
        "audio": {
            "sources": [p.name for p in run.plans],
            "seconds_per_session": [round(p.audio_ms / 1000, 3) for p in run.plans],
            "frame_ms": options.frame_ms,
            "speed": options.speed,
        },
        "ramp_up_s": options.ramp_up_s,
        "wall_s": round(run.wall_s, 3),
        "finals": {
            "received": sum(r.finals for r in results),
            # what the sessions' transcription_stopped said they had
            "reported": sum(r.finals_reported or 0 for r in stopped),
            "sessions_mismatched": sum(r.finals != r.finals_reported for r in stopped),
            "without_latency": sum(r.finals_without_latency for r in results),
        },
        "interims": {"received": sum(r.interims for r in results)},
        "latency_ms": {
            "started": _ms(
                LatencySummary.of([r.started_s for r in results if r.started_s is not None])
            ),
            "first_interim": _ms(
                LatencySummary.of(
                    [r.first_transcript_s for r in results if r.first_transcript_s is not None]
                )
            ),
            "final": _ms(LatencySummary.of(run.stats.final_latencies)),
        },
        "resumes": {
            "total": sum(r.reconnects for r in results),
            "sessions": sum(r.reconnects > 0 for r in results),
        },
        # "none": the session ended without a close code (e.g. it could not connect)
        "close_codes": _counts(
            ["none" if r.close_code is None else str(r.close_code) for r in results]
        ),
        "error_codes": _counts([r.error_code for r in failed if r.error_code]),
        "errors": [f"{r.session_id}: {r.error}" for r in failed[:MAX_ERROR_SAMPLES]],
        "loadgen": {
            "cpu_s": round(run.cpu_s, 2),
            "cpu_percent": round(100 * run.cpu_s / run.wall_s, 1) if run.wall_s > 0 else 0.0,
            "max_rss_mib": round(run.max_rss_kib / 1024, 1),
        },
    }


def _cell(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def format_table(report: dict[str, Any]) -> str:
    """The report for people: a few aligned lines."""
    s, f, lg = report["sessions"], report["finals"], report["loadgen"]
    lines = [
        f"sessions     {s['ok']} ok, {s['failed']} failed (of {s['requested']})"
        f" in {report['wall_s']:.1f} s",
        f"finals       {f['received']} received, {f['reported']} reported by the server"
        + (f", {f['sessions_mismatched']} sessions differ" if f["sessions_mismatched"] else ""),
        f"interims     {report['interims']['received']} received",
        f"resumes      {report['resumes']['total']} (in {report['resumes']['sessions']} sessions)",
        "",
        f"{'latency (ms)':<16}{'count':>7}{'p50':>9}{'p90':>9}{'p99':>9}{'max':>9}",
    ]
    for name, label in (
        ("started", "started"),
        ("first_interim", "first interim"),
        ("final", "final"),
    ):
        row = report["latency_ms"][name]
        cells = "".join(f"{_cell(row[k]):>9}" for k in ("p50", "p90", "p99", "max"))
        lines.append(f"{label:<16}{row['count']:>7}{cells}")
    lines.append("")
    lines.append("close codes  " + _pairs(report["close_codes"]))
    if report["error_codes"]:
        lines.append("error codes  " + _pairs(report["error_codes"]))
    lines.extend(f"  {e}" for e in report["errors"])
    lines.append(
        f"load gen     {lg['cpu_s']:.1f} s CPU ({lg['cpu_percent']:.0f}% of one core),"
        f" {lg['max_rss_mib']:.0f} MiB peak RSS"
    )
    return "\n".join(lines) + "\n"


def _pairs(counts: dict[str, int]) -> str:
    return ", ".join(f"{k}: {v}" for k, v in counts.items()) or "-"
