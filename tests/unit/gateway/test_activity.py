"""The clocks the housekeeping tick moves: idle expiry and the backend watch, with
explicit times."""

from __future__ import annotations

from gateway.sessions.activity import BackendWatch, IdleClock


def test_idle_expires_timeout_after_the_last_message_seen() -> None:
    clock = IdleClock(30.0, now=0.0)
    assert not clock.expired(1.0, messages=5)  # audio until the tick at 1 s
    assert not clock.expired(29.0, messages=5)
    assert not clock.expired(30.9, messages=5)
    assert clock.expired(31.0, messages=5)


def test_a_keepalive_more_often_than_the_timeout_keeps_the_session() -> None:
    clock = IdleClock(30.0, now=0.0)
    messages = 100
    for second in range(1, 200):
        if second % 20 == 0:
            messages += 1  # a keepalive every 20 s
        assert not clock.expired(float(second), messages)


def test_idle_after_29_s_of_audio_expires_30_s_after_it() -> None:
    """The case that used to expire 16 s after the last frame."""
    clock = IdleClock(30.0, now=0.0)
    for second in range(1, 30):
        assert not clock.expired(float(second), messages=second * 10)
    expiry = next(t for t in range(30, 100) if clock.expired(float(t), messages=290))
    assert expiry == 59


def test_a_backend_that_answers_is_not_hung() -> None:
    watch = BackendWatch(5.0, now=0.0)
    for second in range(1, 60):
        assert not watch.hung(float(second), fed=second * 3200, answered=second)


def test_a_backend_fed_and_silent_is_hung_after_the_timeout() -> None:
    watch = BackendWatch(5.0, now=0.0)
    assert not watch.hung(1.0, fed=3200, answered=1)
    assert not watch.hung(2.0, fed=6400, answered=1)  # silent from here, fed
    assert not watch.hung(6.0, fed=19200, answered=1)
    assert watch.hung(7.0, fed=22400, answered=1)


def test_a_quiet_session_does_not_make_its_backend_look_hung() -> None:
    watch = BackendWatch(5.0, now=0.0)
    assert not watch.hung(1.0, fed=3200, answered=1)
    for second in range(2, 60):  # no audio (keepalives only): nothing to answer
        assert not watch.hung(float(second), fed=3200, answered=1)
    assert watch.fed_at == 1.0


def test_a_new_stream_waits_afresh_for_its_first_answer() -> None:
    watch = BackendWatch(5.0, now=0.0)
    assert not watch.hung(1.0, fed=3200, answered=0)
    assert not watch.hung(5.0, fed=9600, answered=0)
    watch.restarted()
    assert not watch.hung(6.0, fed=12800, answered=0)
    assert not watch.hung(10.0, fed=16000, answered=0)
    assert watch.hung(11.0, fed=19200, answered=0)
