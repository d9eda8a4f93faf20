"""The pure parts of `make bench`: percentiles, /proc arithmetic, Redis counts, the
WebSocket frames and finals bookkeeping of the load generator (the JSON summary, the knee
search and the plan: test_summary.py and test_knee.py)."""

from __future__ import annotations

import pytest

from bench import frames, procstat, session, stats

# /proc/PID/stat of a gunicorn worker: a command name with a space and a parenthesis.
STAT = (
    "4242 (gunicorn: wo)rker) S 4241 4241 4241 0 -1 4194560 52000 0 12 0 "
    "1500 250 0 0 20 0 9 0 7000 900000000 31000 18446744073709551615 1 1 0 0 0 0 0 "
    "16781312 17642 0 0 0 17 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n"
)

STATUS = """Name:\tgunicorn
Umask:\t0022
State:\tS (sleeping)
VmPeak:\t  900000 kB
VmSize:\t  880000 kB
VmHWM:\t  130000 kB
VmRSS:\t  124000 kB
RssAnon:\t   90000 kB
Threads:\t9
"""

PROC_STAT_BEFORE = """cpu  300 0 100 1000 0 0 0 0 0 0
cpu0 100 0 50 500 0 0 0 0 0 0
cpu1 200 0 50 500 0 0 0 0 0 0
intr 12345
"""
PROC_STAT_AFTER = """cpu  600 0 200 1200 0 0 0 0 0 0
cpu0 250 0 100 550 0 0 0 0 0 0
cpu1 350 0 100 650 0 0 0 0 0 0
"""


def test_percentile_interpolates_between_ranks_like_numpy() -> None:
    values = [float(v) for v in range(1, 101)]
    assert stats.percentile(values, 50) == pytest.approx(50.5)
    assert stats.percentile(values, 99) == pytest.approx(99.01)
    assert stats.percentile([3.0, 1.0, 2.0], 0) == 1.0
    assert stats.percentile([3.0, 1.0, 2.0], 100) == 3.0


def test_percentile_of_nothing_is_none_and_of_one_value_is_it() -> None:
    assert stats.percentile([], 99) is None
    assert stats.percentile([7.5], 99) == 7.5


def test_cpu_ticks_are_utime_plus_stime_even_with_parens_in_the_name() -> None:
    assert procstat.cpu_ticks_from_stat(STAT) == 1750
    assert procstat.ppid_from_stat(STAT) == 4241


def test_cpu_percent_of_one_core_from_a_ticks_delta() -> None:
    # 1500 ticks at 100 Hz over 20 s: 15 s of CPU in 20 s.
    assert procstat.cpu_percent(1500, 20.0, clk_tck=100) == pytest.approx(75.0)
    assert procstat.cpu_percent(10, 0.0, clk_tck=100) == 0.0


def test_rss_comes_from_vmrss_and_per_session_is_the_delta_over_n() -> None:
    idle = procstat.rss_kb_from_status(STATUS)
    loaded = procstat.rss_kb_from_status(STATUS.replace("124000", "174000"))
    assert idle == 124000
    assert (loaded - idle) / 400 == 125.0
    assert procstat.rss_kb_from_status("Name:\tkthreadd\n") == 0


def test_core_busy_counts_everything_but_idle_and_iowait() -> None:
    before = procstat.core_times_from_proc_stat(PROC_STAT_BEFORE)
    after = procstat.core_times_from_proc_stat(PROC_STAT_AFTER)
    assert before == {0: (150, 650), 1: (250, 750)}
    busy = procstat.core_busy_percent(before, after)
    assert busy[0] == pytest.approx(100 * 200 / 250)
    assert busy[1] == pytest.approx(100 * 200 / 350)


def test_redis_calls_include_script_internal_commands() -> None:
    info = {
        "cmdstat_evalsha": {"calls": 10, "usec": 300},
        "cmdstat_hset": {"calls": 10, "usec": 20},
        "cmdstat_expire": {"calls": 20, "usec": 20},
        "cmdstat_info": {"calls": 2, "usec": 100},
    }
    assert stats.redis_total_calls(info) == 42
    assert stats.redis_script_calls(info) == 10


def test_client_frames_are_masked_with_a_zero_key() -> None:
    small = frames.client_frame(0x1, b"hi")
    assert small == b"\x81\x82\x00\x00\x00\x00hi"
    audio = frames.client_frame(0x2, b"\x01" * frames.FRAME_BYTES)
    assert audio[:4] == b"\x82\xfe" + frames.FRAME_BYTES.to_bytes(2, "big")
    assert audio[4:8] == b"\x00\x00\x00\x00"
    assert len(audio) == 8 + frames.FRAME_BYTES


def test_noise_frames_are_100_ms_of_pcm16_and_all_differ() -> None:
    noise = frames.noise_frames(4)
    assert {len(f) for f in noise} == {3200}
    assert len(set(noise)) == 4
    assert noise == frames.noise_frames(4)


def test_expected_finals_count_the_partial_window_flushed_by_stop() -> None:
    assert frames.expected_finals(0) == 0
    assert frames.expected_finals(20) == 1
    assert frames.expected_finals(21) == 2
    assert frames.expected_finals(200) == 10


def test_final_latency_is_measured_from_the_frame_that_completed_its_audio() -> None:
    assert frames.frame_index_for(2000) == 19
    assert frames.frame_index_for(2050) == 20  # a partial frame still needs frame 20
    sess = session.Session.__new__(session.Session)
    sess.sent_at = [10.0 + 0.1 * i for i in range(45)]
    sess.stop_at = 14.6
    # Finals at 2 s and 4 s, and the stop's flush of the last half-second.
    sess.finals = [(11.925, 2000), (13.905, 4000), (14.62, 4500)]
    in_window = sess.latencies(10.0, 20.0)
    assert in_window == pytest.approx([25.0, 5.0])
    assert sess.latencies(12.0, 20.0) == pytest.approx([5.0])


def test_cpu_info_names_the_model_and_its_clock() -> None:
    text = (
        "processor\t: 0\nmodel name\t: AMD EPYC 7B13\ncpu MHz\t\t: 2450.000\n"
        "bogomips\t: 4900.00\n\nprocessor\t: 1\nmodel name\t: AMD EPYC 7B13\n"
        "cpu MHz\t\t: 3100.000\n"
    )
    assert procstat.cpu_info_from_text(text) == {
        "model": "AMD EPYC 7B13",
        "mhz": 2450.0,
        "bogomips": 4900.0,
    }
    assert procstat.cpu_info_from_text("") == {"model": None, "mhz": None, "bogomips": None}


def test_the_commands_the_gateways_scripts_run_are_found() -> None:
    # Without them every command would count as a round trip of its own.
    from bench.level import SCRIPT_COMMANDS

    assert {"xadd", "hset", "expire", "hmget"} <= SCRIPT_COMMANDS
    assert "evalsha" not in SCRIPT_COMMANDS
    calls = {"evalsha": 10, "xadd": 10, "hset": 10, "expire": 20, "ping": 1}
    assert stats.redis_top_level_calls(calls, SCRIPT_COMMANDS) == 11
