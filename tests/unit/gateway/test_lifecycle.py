"""The session state machine and the store's view of Redis error replies."""

from __future__ import annotations

import pytest
from redis.exceptions import OutOfMemoryError, ReadOnlyError, ResponseError

from gateway.sessions.lifecycle import Actor, SessionState, allowed, resumable
from gateway.store import scripts
from gateway.store.faults import is_store_fault


def test_only_the_driver_detaches_or_stops_a_session() -> None:
    assert allowed(SessionState.ACTIVE, SessionState.STOPPED, Actor.DRIVER)
    assert not allowed(SessionState.ACTIVE, SessionState.STOPPED, Actor.ANY_POD)
    assert allowed(SessionState.ACTIVE, SessionState.DETACHED, Actor.DRIVER)
    assert allowed(SessionState.DETACHED, SessionState.ACTIVE, Actor.ANY_POD)
    assert not allowed(SessionState.STOPPED, SessionState.ACTIVE, Actor.ANY_POD)
    assert resumable(SessionState.DETACHED)
    assert not resumable(SessionState.STOPPED)


def test_the_scripts_name_the_states_of_the_enum() -> None:
    for state in (SessionState.ACTIVE, SessionState.STOPPED):
        assert f"'{state.value}'" in scripts.CREATE + scripts.RESUME
    assert "redis.call('TIME')" in scripts.APPEND_FINALS


@pytest.mark.parametrize(
    "exc",
    [
        OutOfMemoryError("command not allowed when used memory > 'maxmemory'."),
        ReadOnlyError("You can't write against a read only replica."),
        ResponseError("MISCONF Redis is configured to save RDB snapshots, but it's failing"),
        ResponseError("NOREPLICAS Not enough good replicas to write."),
        ResponseError("ERR Error running script (call to f_1): @user_script:1: OOM command"),
    ],
)
def test_error_replies_that_are_store_faults(exc: ResponseError) -> None:
    assert is_store_fault(exc)


def test_error_replies_of_a_wrong_call_are_not_store_faults() -> None:
    assert not is_store_fault(ResponseError("WRONGTYPE Operation against a key"))
    assert not is_store_fault(ResponseError("ERR wrong number of arguments"))
