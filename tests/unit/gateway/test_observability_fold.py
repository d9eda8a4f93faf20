"""Folding the sessions' plain counters into metrics, and dating finals for latency."""

from __future__ import annotations

import asyncio

import pytest
from prometheus_client import REGISTRY
from redis.exceptions import BusyLoadingError, OutOfMemoryError, ReadOnlyError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from gateway.observability.fold import SessionFolder, arrival_time
from gateway.observability.loop_lag import LoopLag
from gateway.observability.redis_ops import RedisOp, error_kind


class FakeSession:
    """Stand-in for a LiveSession: only the counters the folder reads."""

    def __init__(self, started_at: float = 0.0, session_start_ms: int = 0) -> None:
        self.rx_messages = 0
        self.rx_bytes = 0
        self.started_at = started_at
        self.session_start_ms = session_start_ms
        self.audio_ms = session_start_ms
        self.pending_count = 0


def value(name: str, labels: dict[str, str] | None = None) -> float:
    return REGISTRY.get_sample_value(name, labels or {}) or 0.0


def test_arrival_time_interpolates_between_samples() -> None:
    samples = [(10.0, 0), (11.0, 1000), (12.0, 2000)]
    assert arrival_time(samples, 1500, now=13.0) == pytest.approx(11.5)
    assert arrival_time(samples, 1000, now=13.0) == pytest.approx(11.0)


def test_audio_completed_by_the_latest_frame_is_dated_at_real_time_pace() -> None:
    # A real-time client: 400 ms after the last tick, the frame ending at 1300 ms lands;
    # the final it completes goes out 30 ms later. An even spread would say "just now".
    samples = [(10.0, 1000), (10.43, 1300)]
    assert arrival_time(samples, 1300, now=10.43) == pytest.approx(10.3)


def test_audio_sent_faster_than_real_time_is_dated_by_the_spread() -> None:
    # A resume re-sends 5 s of audio in half a second.
    samples = [(10.0, 0), (10.5, 5000)]
    assert arrival_time(samples, 2500, now=11.0) == pytest.approx(10.25)


def test_arrival_time_before_the_oldest_sample_is_the_oldest_sample() -> None:
    assert arrival_time([(10.0, 5000), (11.0, 6000)], 1000, now=12.0) == 10.0


def test_arrival_time_of_audio_not_received_is_now() -> None:
    assert arrival_time([(10.0, 0), (11.0, 1000)], 5000, now=12.0) == 12.0


def test_fold_adds_only_what_changed_since_the_last_tick() -> None:
    folder = SessionFolder()
    one, two = FakeSession(), FakeSession()
    before = (
        value("gateway_ws_received_messages_total"),
        value("gateway_ws_received_bytes_total"),
        value("gateway_audio_received_seconds_total"),
    )
    one.rx_messages, one.rx_bytes, one.audio_ms = 10, 32_000, 1000
    two.rx_messages, two.rx_bytes, two.audio_ms = 5, 16_000, 500
    two.pending_count = 2
    folder.fold([one, two], now=1.0)
    one.rx_messages, one.rx_bytes, one.audio_ms = 20, 64_000, 2000
    folder.fold([one, two], now=2.0)
    after = (
        value("gateway_ws_received_messages_total"),
        value("gateway_ws_received_bytes_total"),
        value("gateway_audio_received_seconds_total"),
    )
    assert after[0] - before[0] == 25
    assert after[1] - before[1] == 80_000
    assert after[2] - before[2] == pytest.approx(2.5)
    assert value("gateway_redis_pending_finals") == 2


def test_close_folds_what_the_last_tick_did_not_see() -> None:
    folder = SessionFolder()
    session = FakeSession(session_start_ms=4000)  # a resumed session: audio from 4 s
    session.audio_ms = 4000
    folder.fold([session], now=1.0)
    before = (
        value("gateway_ws_received_messages_total"),
        value("gateway_audio_received_seconds_total"),
    )
    session.rx_messages, session.audio_ms = 7, 4700
    folder.close(session)
    assert value("gateway_ws_received_messages_total") - before[0] == 7
    assert value("gateway_audio_received_seconds_total") - before[1] == pytest.approx(0.7)


async def test_final_latency_is_dated_from_the_audio_that_ends_the_utterance() -> None:
    folder = SessionFolder()
    loop = asyncio.get_running_loop()
    now = loop.time()
    # Audio arrived in real time: 2 s of it by `now - 1.0`, 3 s by now.
    session = FakeSession(started_at=now - 3.0)
    session.audio_ms = 2000
    folder.fold([session], now=now - 1.0)
    session.audio_ms = 3000
    count = value("gateway_final_latency_seconds_count")
    total = value("gateway_final_latency_seconds_sum")
    folder.final_sent(session, received_at=0.0, end_ms=2000, size=10)
    assert value("gateway_final_latency_seconds_count") == count + 1
    latency = value("gateway_final_latency_seconds_sum") - total
    assert 0.99 <= latency < 1.2


async def test_first_transcript_is_timed_once_per_connection() -> None:
    folder = SessionFolder()
    session = FakeSession(started_at=asyncio.get_running_loop().time())
    count = value("gateway_first_interim_latency_seconds_count")
    sent = value("gateway_ws_sent_messages_total")
    folder.interim_sent(session, received_at=0.0, size=100)
    folder.interim_sent(session, received_at=0.0, size=100)
    assert value("gateway_first_interim_latency_seconds_count") == count + 1
    folder.fold([], now=0.0)
    assert value("gateway_ws_sent_messages_total") == sent + 2


def test_loop_lag_is_never_negative_and_is_exported() -> None:
    lag = LoopLag()
    lag.record(-0.001)
    assert lag.seconds == 0.0
    lag.record(0.25)
    assert lag.seconds == 0.25
    assert value("gateway_event_loop_lag_seconds") == 0.25


@pytest.mark.parametrize(
    ("exc", "kind"),
    [
        (RedisTimeoutError("t"), "timeout"),
        (RedisConnectionError("c"), "connection"),
        (BusyLoadingError("l"), "loading"),
        (ReadOnlyError("r"), "readonly"),
        (OutOfMemoryError("OOM command not allowed"), "oom"),
    ],
)
def test_redis_errors_are_counted_by_kind(exc: Exception, kind: str) -> None:
    assert error_kind(exc) == kind
    before = value("gateway_redis_errors_total", {"kind": kind})
    ops = value("gateway_redis_op_duration_seconds_count", {"op": "test"})
    with pytest.raises(type(exc)), RedisOp("test"):
        raise exc
    assert value("gateway_redis_errors_total", {"kind": kind}) == before + 1
    assert value("gateway_redis_op_duration_seconds_count", {"op": "test"}) == ops + 1


def test_a_cancelled_redis_call_is_not_an_error() -> None:
    before = sum(
        value("gateway_redis_errors_total", {"kind": k})
        for k in ("timeout", "connection", "client", "other")
    )
    with pytest.raises(asyncio.CancelledError), RedisOp("test"):
        raise asyncio.CancelledError
    after = sum(
        value("gateway_redis_errors_total", {"kind": k})
        for k in ("timeout", "connection", "client", "other")
    )
    assert after == before


def test_a_session_closed_before_any_tick_is_folded_from_its_start() -> None:
    folder = SessionFolder()
    session = FakeSession()
    before = value("gateway_ws_received_bytes_total")
    session.rx_bytes = 3200
    folder.close(session)
    assert value("gateway_ws_received_bytes_total") - before == 3200
