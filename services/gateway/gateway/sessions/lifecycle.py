"""A session's life, written once: its states, the transitions between them, and who may
make each. The Redis scripts (`store/scripts.py`) enforce it; this module names it.

    (none) --start-------------------> ACTIVE     by any pod: creates the record, epoch 1
    ACTIVE --start (retry)-----------> ACTIVE     by any pod: same config, no final yet;
                                                  new epoch and token (a lost reply)
    ACTIVE --connection ends---------> DETACHED   by the driver (its epoch), finals saved
    ACTIVE|DETACHED --resume---------> ACTIVE     by any pod with the token, within the
                                                  resume window: epoch + 1, the previous
                                                  driver is fenced and told (takeover)
    ACTIVE --stop, finals flushed----> STOPPED    by the driver
    STOPPED --resume-----------------> STOPPED    replays finals only; nothing to drive
    any --TTL passes-----------------> (none)     by Redis

Every write of a driver is fenced by its epoch: once a resume bumped the epoch, the old
driver's writes are refused and it ends with `session_taken_over`. The record's time
fields use Redis's clock (`TIME` in the scripts), never a pod's.
"""

from __future__ import annotations

from enum import StrEnum


class SessionState(StrEnum):
    ACTIVE = "active"  # a driver streams it (or did until a crash its lease will show)
    DETACHED = "detached"  # its connection ended without a stop: resumable
    STOPPED = "stopped"  # stopped and flushed: a resume only replays its finals


class Actor(StrEnum):
    ANY_POD = "any pod"
    DRIVER = "the driver (fenced by epoch)"
    REDIS = "Redis (TTL)"


# (from, to) -> who may make the transition; None is "no record".
TRANSITIONS: dict[tuple[SessionState | None, SessionState | None], Actor] = {
    (None, SessionState.ACTIVE): Actor.ANY_POD,
    (SessionState.ACTIVE, SessionState.ACTIVE): Actor.ANY_POD,
    (SessionState.ACTIVE, SessionState.DETACHED): Actor.DRIVER,
    (SessionState.DETACHED, SessionState.ACTIVE): Actor.ANY_POD,
    (SessionState.ACTIVE, SessionState.STOPPED): Actor.DRIVER,
    (SessionState.STOPPED, SessionState.STOPPED): Actor.ANY_POD,
    (SessionState.ACTIVE, None): Actor.REDIS,
    (SessionState.DETACHED, None): Actor.REDIS,
    (SessionState.STOPPED, None): Actor.REDIS,
}


def allowed(before: SessionState | None, after: SessionState | None, actor: Actor) -> bool:
    """Whether `actor` may move a session from `before` to `after`."""
    return TRANSITIONS.get((before, after)) == actor


def resumable(state: SessionState) -> bool:
    """A resume continues ACTIVE and DETACHED sessions; a STOPPED one only replays."""
    return state is not SessionState.STOPPED
