from __future__ import annotations

from array import array

from speech_client.audio import AudioFormat
from speech_client.loadtest.report import build_report, format_table
from speech_client.loadtest.runner import LoadRun, LoadTestOptions
from speech_client.loadtest.sources import FramePlan
from speech_client.loadtest.stats import LoadStats, SessionResult


def ok_session(session_id: str, **counts: int) -> SessionResult:
    result = SessionResult(session_id, "noise", stopped=True, close_code=1000, finals=2)
    result.started_s, result.first_transcript_s = 0.005, 0.2
    for name, value in counts.items():
        setattr(result, name, value)
    return result


def a_run() -> LoadRun:
    stats = LoadStats(3)
    stats.final_latencies = array("d", [0.010, 0.030, 0.020, 0.040])
    stats.add(ok_session("lt-1", finals_reported=2, interims=9))
    stats.add(ok_session("lt-2", finals_reported=3, reconnects=2))
    stats.add(
        SessionResult(
            "lt-3", "noise", error_code="backend_error", error="backend_error: down",
            close_code=1011, started_s=0.004,
        )
    )  # fmt: skip
    plan = FramePlan("noise", AudioFormat(), 3200, (bytes(3200),) * 40)
    options = LoadTestOptions("ws://h:1", 3, ramp_up_s=1.5, run_id="r1")
    return LoadRun(options, [plan], stats, wall_s=10.0, cpu_s=0.5, max_rss_kib=40960)


def row(table: str, label: str) -> list[str]:
    (line,) = (line for line in table.splitlines() if line.startswith(label + " "))
    return line.split()


def test_report_counts_sessions_finals_codes_and_latencies_in_ms() -> None:
    report = build_report(a_run())
    assert report["sessions"] == {"requested": 3, "ok": 2, "failed": 1}
    assert report["audio"]["seconds_per_session"] == [4.0]
    assert report["finals"] == {
        "received": 4, "reported": 5, "sessions_mismatched": 1, "without_latency": 0,
    }  # fmt: skip
    assert report["latency_ms"]["final"] == {
        "count": 4, "p50": 20.0, "p90": 40.0, "p99": 40.0, "max": 40.0,
    }  # fmt: skip
    assert report["latency_ms"]["started"]["count"] == 3
    assert report["latency_ms"]["first_interim"]["count"] == 2
    assert report["resumes"] == {"total": 2, "sessions": 1}
    assert report["close_codes"] == {"1000": 2, "1011": 1}
    assert report["error_codes"] == {"backend_error": 1}
    assert report["errors"] == ["lt-3: backend_error: down"]
    assert report["loadgen"] == {"cpu_s": 0.5, "cpu_percent": 5.0, "max_rss_mib": 40.0}


def test_a_session_that_never_closed_has_close_code_none() -> None:
    run = a_run()
    run.stats.add(SessionResult("lt-4", "noise", error_code="connect_failed"))
    assert build_report(run)["close_codes"]["none"] == 1


def test_table_shows_the_percentiles_and_what_failed() -> None:
    table = format_table(build_report(a_run()))
    assert "sessions     2 ok, 1 failed (of 3) in 10.0 s" in table
    assert "finals       4 received, 5 reported by the server, 1 sessions differ" in table
    assert row(table, "final") == ["final", "4", "20.0", "40.0", "40.0", "40.0"]
    assert row(table, "first interim")[2:] == ["2", "200.0", "200.0", "200.0", "200.0"]
    assert "close codes  1000: 2, 1011: 1" in table
    assert "error codes  backend_error: 1" in table
    assert "  lt-3: backend_error: down" in table
    assert "5% of one core" in table


def test_table_shows_a_dash_for_latencies_never_measured() -> None:
    run = a_run()
    run.stats.final_latencies = array("d")
    assert row(format_table(build_report(run)), "final") == ["final", "0", "-", "-", "-", "-"]
