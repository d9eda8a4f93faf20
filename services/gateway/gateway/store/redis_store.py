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

from redis.asyncio.cluster import RedisCluster
from redis.commands.core import AsyncScript
from redis.crc import key_slot

from gateway.config import RedisSettings
from gateway.errors import Fenced, LogGap, RecordLost, StoreUnavailable
from gateway.sessions.lifecycle import SessionState
from gateway.store import scripts
from gateway.store.connection import RedisClient, connect
from gateway.store.faults import GuardedCalls
from gateway.store.pipeline import pipelined
from gateway.store.takeovers import TakeoverSubscription, slot_channel, slot_tags

T = TypeVar("T")


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
    """Reads and writes sessions in Redis (one server, Sentinel's primary, or a Cluster:
    `store/connection.py`); every call is bounded by the client timeouts."""

    def __init__(self, client: RedisClient, settings: RedisSettings) -> None:
        self._redis = client
        self._prefix = settings.key_prefix
        self._cluster = isinstance(client, RedisCluster)
        # Every call through here (and the quotas' and deletions', on the same client).
        self.call = GuardedCalls(
            client, limit=settings.max_connections, timeout_s=settings.socket_timeout_s
        )
        # Finals are committed once this many replicas hold them (0: no WAIT).
        self._wait_replicas = settings.replicas_to_wait
        self._wait_timeout_ms = settings.wait_timeout_ms
        self._create = client.register_script(scripts.CREATE)
        self._append = client.register_script(scripts.APPEND_FINALS)
        self._set_state = client.register_script(scripts.SET_STATE)
        self._renew = client.register_script(scripts.RENEW)
        self._rebuild = client.register_script(scripts.REBUILD)
        self._resume = client.register_script(scripts.RESUME)
        self._scripts = (
            self._create,
            self._append,
            self._set_state,
            self._renew,
            self._rebuild,
            self._resume,
        )
        # Cluster: sharded pub/sub on the channel of the session's slot (takeovers.py).
        self._publish = "SPUBLISH" if self._cluster else "PUBLISH"
        if self._cluster:
            slot_tags()  # computed now (~0.2 s), not in the first session's start
        self.takeover_channel = f"{self._prefix}:takeover"

    @classmethod
    def from_settings(cls, settings: RedisSettings) -> SessionStore:
        return cls(connect(settings), settings)

    @property
    def client(self) -> RedisClient:
        """The Redis client, for what else keeps state beside the sessions (quotas,
        deletions): one pool per process. Call it through `call`."""
        return self._redis

    def takeover_channel_for(self, session_id: str) -> str:
        """Where a takeover of `session_id` is published (see `store/takeovers.py`)."""
        if self._cluster:
            return slot_channel(self._prefix, key_slot(self.keys(session_id)[0].encode()))
        return self.takeover_channel

    def takeovers(self) -> TakeoverSubscription:
        """A new subscription to every takeover notice this pod may need."""
        return TakeoverSubscription(self._redis, self._prefix)

    async def close(self) -> None:
        await self._redis.aclose()

    def keys(self, session_id: str) -> list[str]:
        tag = f"{self._prefix}:{{{session_id}}}"
        return [f"{tag}:meta", f"{tag}:finals"]

    async def ping(self) -> bool:
        return bool(await self.call("ping", self._redis.ping))

    async def writable(self, probe_key: str) -> bool:
        """Whether Redis takes a write now (PING answers on a read-only replica, under
        maxmemory, or with a failed RDB save; a write does not)."""
        return bool(
            await self.call(
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
        epoch = await self.call(
            "create",
            self._create,
            keys=self.keys(session_id),
            args=[
                ttl_s,
                config_json,
                hash_token(token),
                owner,
                int(retry_window_s * 1000),
                self.takeover_channel_for(session_id),
                session_id,
                self._publish,
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
        Raises Fenced, RecordLost or LogGap (see `store/scripts.py`), and StoreUnavailable
        when replicas are expected and not enough of them acknowledged the append in
        time: the finals are then not committed (a promoted replica might lack them),
        and appending them again later is harmless (stored seqs are skipped)."""
        args: list[Any] = [epoch, ttl_s, committed_ms, audio_ms, channel_ends]
        for seq, payload in finals:
            args.append(seq)
            args.append(payload)
        keys = self.keys(session_id)
        if not self._wait_replicas:
            stored = int(await self.call("append_finals", self._append, keys=keys, args=args))
            _check_fence(session_id, stored)
            return stored
        stored, acked = await self.call("append_finals", self._append_and_wait, keys, args)
        _check_fence(session_id, stored)
        if acked < self._wait_replicas:
            raise StoreUnavailable(
                f"finals up to seq {stored} held by {acked} of {self._wait_replicas} "
                f"replicas after {self._wait_timeout_ms} ms: not committed yet"
            )
        return stored

    async def _append_and_wait(self, keys: list[str], args: list[Any]) -> tuple[int, int]:
        """The append, then `WAIT` on the same connection (WAIT counts the replicas
        that hold this connection's writes), in one round trip."""
        wait = ("WAIT", self._wait_replicas, self._wait_timeout_ms)
        client = self._redis
        # In a Cluster the WAIT goes to the node that holds the session's slot, on the
        # connection the pipeline uses for the append.
        node = client.get_node_from_key(keys[0]) if isinstance(client, RedisCluster) else None
        target = {} if node is None else {"target_nodes": node}

        async def queue(pipe: Any) -> None:
            _queue_script(pipe, self._append, keys, args)
            pipe.execute_command(*wait, **target)

        replies = await self._pipelined(queue)
        if isinstance(client, RedisCluster) and client.get_node_from_key(keys[0]) is not node:
            # Redirected (the slot moved while we wrote): the WAIT went to the old node.
            return int(replies[0]), 0
        return int(replies[0]), int(replies[1])

    async def _pipelined(self, queue: Callable[[Any], Awaitable[None]]) -> list[Any]:
        return await pipelined(self._redis, queue, self._scripts)

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
            await self.call("rebuild", self._rebuild, keys=self.keys(session_id), args=args)
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
        result = await self.call(
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

        async def queue(pipe: Any) -> None:
            for session_id, epoch, audio_ms, seq in leases:
                _queue_script(
                    pipe, self._renew, self.keys(session_id), [epoch, ttl_s, audio_ms, seq]
                )

        async def run() -> list[int]:
            return [int(r) for r in await self._pipelined(queue)]

        return await self.call("renew", run)

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
        reply = await self.call(
            "resume",
            self._resume,
            keys=self.keys(session_id),
            args=[
                hash_token(token),
                owner,
                int(resume_window_s * 1000),
                ttl_s,
                last_seq,
                self.takeover_channel_for(session_id),
                session_id,
                self._publish,
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
        value = await self.call("epoch", self._hget, self.keys(session_id)[0], "epoch")
        return int(value or 0)

    async def _hget(self, key: str, field: str) -> str | None:
        return await self._redis.hget(key, field)  # type: ignore[return-value]

    async def get(self, session_id: str) -> SessionRecord | None:
        raw: dict[str, str] = await self.call("get", self._hgetall, self.keys(session_id)[0])
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
        entries: list[tuple[str, dict[str, str]]] = await self.call(
            "finals_after", self._xrange, self.keys(session_id)[1], f"{last_seq + 1}-0"
        )
        return [(int(entry_id.split("-", 1)[0]), fields["f"]) for entry_id, fields in entries]

    async def _hgetall(self, key: str) -> dict[str, str]:
        return await self._redis.hgetall(key)  # type: ignore[return-value]

    async def _xrange(self, key: str, start: str) -> list[tuple[str, dict[str, str]]]:
        return await self._redis.xrange(key, min=start, max="+")  # type: ignore[return-value]


def _queue_script(pipe: Any, script: AsyncScript, keys: list[str], args: list[Any]) -> None:
    # EVALSHA by name: a Cluster pipeline refuses its `evalsha` method but routes the raw
    # command by its keys. A server without the script answers NOSCRIPT, and
    # `SessionStore._pipelined` loads the scripts and runs the pipeline again.
    pipe.execute_command("EVALSHA", script.sha, len(keys), *keys, *args)
