"""The session's state in Redis: its record, its finals log, and fencing by epoch.

Keys of one session share a hash tag (`{session_id}`) so they live on one Redis Cluster
slot. Writes that must be atomic (create, append finals, end) are Lua scripts: one round
trip each, and none per audio frame.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from gateway.config import RedisSettings
from gateway.errors import Fenced, RecordLost, StoreUnavailable
from gateway.observability.redis_ops import RedisOp

T = TypeVar("T")

_CREATE = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1],
  'state', 'active', 'config', ARGV[2], 'token_hash', ARGV[3], 'owner', ARGV[4],
  'epoch', 1, 'seq', 0, 'committed_ms', 0, 'audio_ms', 0,
  'created_ms', ARGV[5], 'updated_ms', ARGV[5])
redis.call('EXPIRE', KEYS[1], ARGV[1])
return 1
"""

# Fenced writes answer -1 when another connection took the session over (a newer epoch)
# and -2 when the record is gone (expired, or Redis lost its data).

# ARGV: epoch, ttl, committed_ms, audio_ms, now_ms, then (seq, payload) pairs in order.
# A seq at or below the stored one was written before (a retry after a lost reply) and
# is skipped, so appending is idempotent.
_APPEND_FINALS = """
local meta = redis.call('HMGET', KEYS[1], 'epoch', 'seq')
if not meta[1] then return -2 end
if meta[1] ~= ARGV[1] then return -1 end
local last = tonumber(meta[2])
for i = 6, #ARGV, 2 do
  local seq = tonumber(ARGV[i])
  if seq > last then
    redis.call('XADD', KEYS[2], seq .. '-0', 'f', ARGV[i + 1])
    last = seq
  end
end
redis.call('HSET', KEYS[1], 'seq', last, 'committed_ms', ARGV[3], 'audio_ms', ARGV[4],
  'updated_ms', ARGV[5])
redis.call('EXPIRE', KEYS[1], ARGV[2])
redis.call('EXPIRE', KEYS[2], ARGV[2])
return last
"""

# ARGV: epoch, ttl, state, audio_ms, now_ms.
_SET_STATE = """
local epoch = redis.call('HGET', KEYS[1], 'epoch')
if not epoch then return -2 end
if epoch ~= ARGV[1] then return -1 end
redis.call('HSET', KEYS[1], 'state', ARGV[3], 'audio_ms', ARGV[4], 'updated_ms', ARGV[5])
redis.call('EXPIRE', KEYS[1], ARGV[2])
if redis.call('EXISTS', KEYS[2]) == 1 then redis.call('EXPIRE', KEYS[2], ARGV[2]) end
return 1
"""

# The lease: the live owner refreshes its sessions' records, and how much audio each
# has received. ARGV: epoch, ttl, now_ms, audio_ms.
_RENEW = """
local epoch = redis.call('HGET', KEYS[1], 'epoch')
if not epoch then return -2 end
if epoch ~= ARGV[1] then return -1 end
redis.call('HSET', KEYS[1], 'updated_ms', ARGV[3], 'audio_ms', ARGV[4])
redis.call('EXPIRE', KEYS[1], ARGV[2])
if redis.call('EXISTS', KEYS[2]) == 1 then redis.call('EXPIRE', KEYS[2], ARGV[2]) end
return 1
"""

# Take a session over for a resume: check the token and the resume window, then bump
# the epoch so that every write of the previous owner is refused from now on.
# ARGV: token_hash, owner, now_ms, resume_window_ms, ttl.
_RESUME = """
local m = redis.call('HMGET', KEYS[1], 'token_hash', 'state', 'epoch', 'seq',
  'committed_ms', 'audio_ms', 'config', 'updated_ms')
if not m[1] then return {'not_found'} end
if m[1] ~= ARGV[1] then return {'bad_token'} end
if m[2] ~= 'stopped' and tonumber(ARGV[3]) - tonumber(m[8]) > tonumber(ARGV[4]) then
  return {'expired'}
end
local epoch = m[3]
if m[2] ~= 'stopped' then
  epoch = redis.call('HINCRBY', KEYS[1], 'epoch', 1)
  redis.call('HSET', KEYS[1], 'owner', ARGV[2], 'state', 'active', 'updated_ms', ARGV[3])
  redis.call('EXPIRE', KEYS[1], ARGV[5])
  if redis.call('EXISTS', KEYS[2]) == 1 then redis.call('EXPIRE', KEYS[2], ARGV[5]) end
end
return {'ok', tostring(epoch), m[2], m[4], m[5], m[6], m[7]}
"""


class ResumeRefused(Exception):
    """`reason` is one of not_found, bad_token, expired."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Resumed:
    epoch: int
    state: str  # the state before the resume: active, detached or stopped
    seq: int
    committed_ms: int
    audio_ms: int
    config_json: str


def _check_fence(session_id: str, result: int) -> None:
    if result == -1:
        raise Fenced(session_id)
    if result == -2:
        raise RecordLost(session_id)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def now_ms() -> int:
    return int(time.time() * 1000)


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
        self._create = client.register_script(_CREATE)
        self._append = client.register_script(_APPEND_FINALS)
        self._set_state = client.register_script(_SET_STATE)
        self._renew = client.register_script(_RENEW)
        self._resume = client.register_script(_RESUME)
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

    async def create(
        self, session_id: str, *, config_json: str, token: str, owner: str, ttl_s: int
    ) -> bool:
        """Record a new session; False if one with this id exists."""
        created = await self._call(
            "create",
            self._create,
            keys=self.keys(session_id),
            args=[ttl_s, config_json, hash_token(token), owner, now_ms()],
        )
        return bool(created)

    async def append_finals(
        self,
        session_id: str,
        *,
        epoch: int,
        finals: Sequence[tuple[int, str]],
        committed_ms: int,
        audio_ms: int,
        ttl_s: int,
    ) -> int:
        """Append `(seq, payload)` finals in order; returns the highest stored seq."""
        args: list[Any] = [epoch, ttl_s, committed_ms, audio_ms, now_ms()]
        for seq, payload in finals:
            args.append(seq)
            args.append(payload)
        stored = int(
            await self._call("append_finals", self._append, keys=self.keys(session_id), args=args)
        )
        _check_fence(session_id, stored)
        return stored

    async def set_state(
        self, session_id: str, *, epoch: int, state: str, audio_ms: int, ttl_s: int
    ) -> None:
        result = await self._call(
            "set_state",
            self._set_state,
            keys=self.keys(session_id),
            args=[epoch, ttl_s, state, audio_ms, now_ms()],
        )
        _check_fence(session_id, int(result))

    async def renew(self, leases: Sequence[tuple[str, int, int]], *, ttl_s: int) -> list[int]:
        """Refresh the records of `(session_id, epoch, audio_ms)` in one round trip; per
        session 1, or -1 if it was taken over, -2 if its record is gone."""
        if not leases:
            return []
        now = now_ms()

        async def run() -> list[int]:
            async with self._redis.pipeline(transaction=False) as pipe:
                for session_id, epoch, audio_ms in leases:
                    await self._renew(
                        keys=self.keys(session_id),
                        args=[epoch, ttl_s, now, audio_ms],
                        client=pipe,
                    )
                return [int(r) for r in await pipe.execute()]

        return await self._call("renew", run)

    async def resume(
        self, session_id: str, *, token: str, owner: str, resume_window_s: float, ttl_s: int
    ) -> Resumed:
        reply = await self._call(
            "resume",
            self._resume,
            keys=self.keys(session_id),
            args=[hash_token(token), owner, now_ms(), int(resume_window_s * 1000), ttl_s],
        )
        if reply[0] != "ok":
            raise ResumeRefused(str(reply[0]))
        return Resumed(
            epoch=int(reply[1]),
            state=str(reply[2]),
            seq=int(reply[3]),
            committed_ms=int(reply[4]),
            audio_ms=int(reply[5]),
            config_json=str(reply[6]),
        )

    async def epoch(self, session_id: str) -> int:
        """The session's current epoch (0 if it has no record)."""
        value = await self._call("epoch", self._hget, self.keys(session_id)[0], "epoch")
        return int(value or 0)

    async def _hget(self, key: str, field: str) -> str | None:
        return await self._redis.hget(key, field)  # type: ignore[return-value]

    async def publish_takeover(self, session_id: str, epoch: int) -> None:
        """Tell every pod that `session_id` now runs at `epoch` (its old driver must stop)."""
        await self._call(
            "publish_takeover", self._redis.publish, self.takeover_channel, f"{epoch} {session_id}"
        )

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
