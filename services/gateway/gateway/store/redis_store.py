"""The session's state in Redis: its record, its finals log, and fencing by epoch.

Keys of one session share a hash tag (`{session_id}`) so they live on one Redis Cluster
slot. Writes that must be atomic are Lua scripts (`store/scripts.py`): one round trip
each, and none per audio frame.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import redis.asyncio as aioredis
from redis.exceptions import (
    ClusterDownError,
    NoScriptError,
    OutOfMemoryError,
    ReadOnlyError,
    ResponseError,
    TryAgainError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from gateway.config import RedisSettings
from gateway.errors import Fenced, LogGap, RecordLost, StoreUnavailable
from gateway.observability.redis_ops import RedisOp
from gateway.sessions.lifecycle import SessionState
from gateway.store import scripts

T = TypeVar("T")

# Error replies that mean the store cannot take writes now (a replica after a failover,
# maxmemory, a failed RDB save, a restart still loading, a script cache emptied by a
# restart, a Cluster resharding): faults of the store, like an unreachable Redis.
_STORE_FAULTS = (
    "READONLY",
    "OOM",
    "MISCONF",
    "LOADING",
    "NOSCRIPT",
    "MASTERDOWN",
    "CLUSTERDOWN",
    "TRYAGAIN",
    "NOREPLICAS",
    "BUSY",
)
_FAULT_CLASSES = (ReadOnlyError, OutOfMemoryError, NoScriptError, ClusterDownError, TryAgainError)


class ResumeRefused(Exception):
    """`reason` is one of not_found, bad_token, bad_last_seq, expired."""

    def __init__(self, reason: str, seq: int = 0) -> None:
        super().__init__(reason)
        self.reason = reason
        self.seq = seq  # the session's last seq, for bad_last_seq


@dataclass(frozen=True, slots=True)
class Resumed:
    epoch: int
    state: SessionState  # the state before the resume
    seq: int
    committed_ms: int
    audio_ms: int
    config_json: str
    channel_ends: str  # the driver's per-channel commit state (opaque to the store)


@dataclass(frozen=True, slots=True)
class SessionSnapshot:
    """What a live driver holds of its session: enough to rebuild its record."""

    epoch: int
    state: SessionState
    config_json: str
    token_hash: str
    owner: str
    committed_ms: int
    audio_ms: int
    channel_ends: str


def _check_fence(session_id: str, result: int) -> None:
    if result == scripts.FENCED:
        raise Fenced(session_id)
    if result == scripts.LOST:
        raise RecordLost(session_id)
    if result == scripts.GAP:
        raise LogGap(session_id)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class SessionRecord:
    session_id: str
    state: str
    config_json: str
    token_hash: str
    owner: str
    epoch: int
    seq: int
    committed_ms: int
    audio_ms: int
    created_ms: int
    updated_ms: int


class SessionStore:
    """Reads and writes sessions in Redis; every call is bounded by the client timeouts."""

    def __init__(self, client: aioredis.Redis, settings: RedisSettings) -> None:
        self._redis = client
        self._prefix = settings.key_prefix
        self._create = client.register_script(scripts.CREATE)
        self._append = client.register_script(scripts.APPEND_FINALS)
        self._set_state = client.register_script(scripts.SET_STATE)
        self._renew = client.register_script(scripts.RENEW)
        self._rebuild = client.register_script(scripts.REBUILD)
        self._resume = client.register_script(scripts.RESUME)
        self.takeover_channel = f"{self._prefix}:takeover"

    @classmethod
    def from_settings(cls, settings: RedisSettings) -> SessionStore:
        # Calls beyond the pool's size wait for a connection (bounded by the socket
        # timeout) rather than fail: finals of many sessions can land at once.
        pool = aioredis.BlockingConnectionPool.from_url(
            settings.url,
            max_connections=settings.max_connections,
            timeout=settings.socket_timeout_s,
            socket_timeout=settings.socket_timeout_s,
            socket_connect_timeout=settings.connect_timeout_s,
            decode_responses=True,
        )
        return cls(aioredis.Redis(connection_pool=pool), settings)

    async def close(self) -> None:
        await self._redis.aclose()

    def keys(self, session_id: str) -> list[str]:
        tag = f"{self._prefix}:{{{session_id}}}"
        return [f"{tag}:meta", f"{tag}:finals"]

    async def ping(self) -> bool:
        return bool(await self._call("ping", self._redis.ping))

    async def writable(self, probe_key: str) -> bool:
        """Whether Redis takes a write now (PING answers on a read-only replica, under
        maxmemory, or with a failed RDB save; a write does not)."""
        return bool(
            await self._call(
                "writable", self._redis.set, f"{self._prefix}:probe:{probe_key}", 1, px=5000
            )
        )

    async def create(
        self,
        session_id: str,
        *,
        config_json: str,
        token: str,
        owner: str,
        ttl_s: int,
        retry_window_s: float,
    ) -> int:
        """Record a new session; returns its epoch (1, or more for the retry of a start
        whose reply was lost), or 0 if the id is taken."""
        epoch = await self._call(
            "create",
            self._create,
            keys=self.keys(session_id),
            args=[
                ttl_s,
                config_json,
                hash_token(token),
                owner,
                int(retry_window_s * 1000),
                self.takeover_channel,
                session_id,
            ],
        )
        return int(epoch)

    async def append_finals(
        self,
        session_id: str,
        *,
        epoch: int,
        finals: Sequence[tuple[int, str]],
        committed_ms: int,
        audio_ms: int,
        channel_ends: str,
        ttl_s: int,
    ) -> int:
        """Append `(seq, payload)` finals in order; returns the highest stored seq.
        Raises Fenced, RecordLost or LogGap (see `store/scripts.py`)."""
        args: list[Any] = [epoch, ttl_s, committed_ms, audio_ms, channel_ends]
        for seq, payload in finals:
            args.append(seq)
            args.append(payload)
        stored = int(
            await self._call("append_finals", self._append, keys=self.keys(session_id), args=args)
        )
        _check_fence(session_id, stored)
        return stored

    async def rebuild(
        self,
        session_id: str,
        snapshot: SessionSnapshot,
        finals: Sequence[tuple[int, str]],
        *,
        ttl_s: int,
    ) -> int:
        """Restore the record from a live driver's `snapshot` and the log from `finals`
        (the ones it still holds); returns the log's last seq. Raises Fenced, or LogGap
        when `finals` do not reach back to what the log lost."""
        args: list[Any] = [
            snapshot.epoch,
            ttl_s,
            snapshot.state.value,
            snapshot.config_json,
            snapshot.token_hash,
            snapshot.owner,
            snapshot.committed_ms,
            snapshot.audio_ms,
            snapshot.channel_ends,
        ]
        for seq, payload in finals:
            args.append(seq)
            args.append(payload)
        stored = int(
            await self._call("rebuild", self._rebuild, keys=self.keys(session_id), args=args)
        )
        _check_fence(session_id, stored)
        return stored

    async def set_state(
        self,
        session_id: str,
        *,
        epoch: int,
        seq: int,
        state: SessionState,
        audio_ms: int,
        ttl_s: int,
    ) -> None:
        result = await self._call(
            "set_state",
            self._set_state,
            keys=self.keys(session_id),
            args=[epoch, ttl_s, audio_ms, seq, state.value],
        )
        _check_fence(session_id, int(result))

    async def renew(self, leases: Sequence[tuple[str, int, int, int]], *, ttl_s: int) -> list[int]:
        """Refresh the records of `(session_id, epoch, audio_ms, seq)` in one round trip;
        per session 1, or a fence code of `store/scripts.py`."""
        if not leases:
            return []

        async def run() -> list[int]:
            async with self._redis.pipeline(transaction=False) as pipe:
                for session_id, epoch, audio_ms, seq in leases:
                    await self._renew(
                        keys=self.keys(session_id),
                        args=[epoch, ttl_s, audio_ms, seq],
                        client=pipe,
                    )
                return [int(r) for r in await pipe.execute()]

        return await self._call("renew", run)

    async def resume(
        self,
        session_id: str,
        *,
        token: str,
        owner: str,
        last_seq: int,
        resume_window_s: float,
        ttl_s: int,
    ) -> Resumed:
        """Take the session over (and tell its previous driver, in the same step)."""
        reply = await self._call(
            "resume",
            self._resume,
            keys=self.keys(session_id),
            args=[
                hash_token(token),
                owner,
                int(resume_window_s * 1000),
                ttl_s,
                last_seq,
                self.takeover_channel,
                session_id,
            ],
        )
        if reply[0] != "ok":
            raise ResumeRefused(str(reply[0]), int(reply[1]) if len(reply) > 1 else 0)
        return Resumed(
            epoch=int(reply[1]),
            state=SessionState(reply[2]),
            seq=int(reply[3]),
            committed_ms=int(reply[4]),
            audio_ms=int(reply[5]),
            config_json=str(reply[6]),
            channel_ends=str(reply[7]),
        )

    async def epoch(self, session_id: str) -> int:
        """The session's current epoch (0 if it has no record)."""
        value = await self._call("epoch", self._hget, self.keys(session_id)[0], "epoch")
        return int(value or 0)

    async def _hget(self, key: str, field: str) -> str | None:
        return await self._redis.hget(key, field)  # type: ignore[return-value]

    def pubsub(self) -> aioredis.client.PubSub:
        return self._redis.pubsub(ignore_subscribe_messages=True)

    async def get(self, session_id: str) -> SessionRecord | None:
        raw: dict[str, str] = await self._call("get", self._hgetall, self.keys(session_id)[0])
        if not raw:
            return None
        return SessionRecord(
            session_id=session_id,
            state=raw.get("state", ""),
            config_json=raw.get("config", "{}"),
            token_hash=raw.get("token_hash", ""),
            owner=raw.get("owner", ""),
            epoch=int(raw.get("epoch", 0)),
            seq=int(raw.get("seq", 0)),
            committed_ms=int(raw.get("committed_ms", 0)),
            audio_ms=int(raw.get("audio_ms", 0)),
            created_ms=int(raw.get("created_ms", 0)),
            updated_ms=int(raw.get("updated_ms", 0)),
        )

    async def finals_after(self, session_id: str, last_seq: int) -> list[tuple[int, str]]:
        """The stored finals with seq > last_seq, in order, as (seq, payload)."""
        entries: list[tuple[str, dict[str, str]]] = await self._call(
            "finals_after", self._xrange, self.keys(session_id)[1], f"{last_seq + 1}-0"
        )
        return [(int(entry_id.split("-", 1)[0]), fields["f"]) for entry_id, fields in entries]

    async def _hgetall(self, key: str) -> dict[str, str]:
        return await self._redis.hgetall(key)  # type: ignore[return-value]

    async def _xrange(self, key: str, start: str) -> list[tuple[str, dict[str, str]]]:
        return await self._redis.xrange(key, min=start, max="+")  # type: ignore[return-value]

    async def _call(self, op: str, fn: Callable[..., Awaitable[T]], *args: Any, **kwargs: Any) -> T:
        try:
            with RedisOp(op):
                return await fn(*args, **kwargs)
        except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
            raise StoreUnavailable(str(exc)) from exc
        except ResponseError as exc:
            if is_store_fault(exc):
                raise StoreUnavailable(str(exc)) from exc
            raise


def is_store_fault(exc: ResponseError) -> bool:
    """An error reply that says the store cannot serve now, not that the call was wrong.
    Inside a script Redis 7 keeps the original error's code at the start of the message."""
    if isinstance(exc, _FAULT_CLASSES):  # redis-py drops the code from these messages
        return True
    message = str(exc).lstrip("-").upper()
    if message.startswith(_STORE_FAULTS):
        return True
    # Older servers wrap an error raised inside a script: look for its code within.
    return message.startswith("ERR ERROR RUNNING SCRIPT") and any(
        f" {code} " in message or f"-{code} " in message for code in _STORE_FAULTS
    )
