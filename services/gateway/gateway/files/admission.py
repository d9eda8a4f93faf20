"""How many file transcriptions one process runs at once: each holds a decoding thread and
a backend call, so past the limit a request gets 429 and the client retries later."""

from __future__ import annotations

from collections.abc import AsyncIterator

from starlette.requests import HTTPConnection

from gateway.config import Settings


class JobSlots:
    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.active = 0

    def try_acquire(self) -> bool:
        if self.active >= self.limit:
            return False
        self.active += 1
        return True

    def release(self) -> None:
        self.active -= 1


def get_job_slots(conn: HTTPConnection) -> JobSlots:
    """The process's slots, made on first use from its settings."""
    slots: JobSlots | None = getattr(conn.app.state, "file_jobs", None)
    if slots is None:
        settings: Settings = conn.app.state.settings
        slots = JobSlots(settings.files.max_concurrent)
        conn.app.state.file_jobs = slots
    return slots


class ReleasingStream:
    """A response body that gives its slot back when it ends, fails, or is dropped
    unstarted (a client gone before the first byte): a slot is never lost."""

    def __init__(self, body: AsyncIterator[bytes], slots: JobSlots) -> None:
        self._body = body
        self._slots: JobSlots | None = slots

    def __aiter__(self) -> ReleasingStream:
        return self

    async def __anext__(self) -> bytes:
        try:
            return await anext(self._body)
        except BaseException:
            self.release()
            raise

    def release(self) -> None:
        if self._slots is not None:
            self._slots.release()
            self._slots = None

    def __del__(self) -> None:
        self.release()
