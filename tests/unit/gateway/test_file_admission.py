"""File transcription slots: taken and always given back, also by a stream dropped
before it started."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator

import pytest

from gateway.files.admission import JobSlots, ReleasingStream


async def body(fail: bool = False) -> AsyncIterator[bytes]:
    yield b"a"
    if fail:
        raise RuntimeError("backend gone")
    yield b"b"


def test_slots_bound_the_jobs() -> None:
    slots = JobSlots(2)
    assert slots.try_acquire()
    assert slots.try_acquire()
    assert not slots.try_acquire()
    slots.release()
    assert slots.try_acquire()


async def test_a_stream_releases_once_when_it_ends_or_fails() -> None:
    slots = JobSlots(1)
    assert slots.try_acquire()
    stream = ReleasingStream(body(), slots)
    assert [chunk async for chunk in stream] == [b"a", b"b"]
    assert slots.active == 0
    del stream
    gc.collect()
    assert slots.active == 0  # not twice

    assert slots.try_acquire()
    with pytest.raises(RuntimeError):
        _ = [chunk async for chunk in ReleasingStream(body(fail=True), slots)]
    assert slots.active == 0


def test_a_stream_dropped_unstarted_releases() -> None:
    slots = JobSlots(1)
    assert slots.try_acquire()
    stream = ReleasingStream(body(), slots)
    del stream
    gc.collect()
    assert slots.active == 0
