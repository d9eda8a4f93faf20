"""`make bench-redis`'s client processes (bench/redis_capacity.py starts them): a few
simulated gateway pods of 500 sessions each, driving Redis as fast as it answers with
the gateway's own scripts and call mix (SessionStore's calls, or in `raw` mode the same
EVALSHA bytes written in pipelines on bare sockets)."""

from __future__ import annotations

import argparse
import asyncio
import random
import secrets
import sys
from typing import Any

import orjson
import redis.asyncio as aioredis

from gateway.config import RedisSettings
from gateway.sessions.lifecycle import SessionState
from gateway.store.redis_store import SessionStore

POD_SESSIONS = 500  # a gateway pod's sessions: one renewal pipeline
FINAL_EVERY_S = 2.0  # the synthetic engine's, as `make bench` runs it
RENEW_EVERY_S = 10.0  # the gateway's housekeeping: leases every 10 ticks of 1 s
TTL_S = 3600  # LIMITS__SESSION_TTL_S's default


def final_payload(seq: int, size: int) -> str:
    """A `transcript` final as the gateway stores it, padded to about `size` bytes."""
    event: dict[str, Any] = {
        "event": "transcript",
        "seq": seq,
        "is_final": True,
        "channel": 0,
        "start_ms": (seq - 1) * 2000,
        "end_ms": seq * 2000,
        "stability": 0.0,
        "alternatives": [{"transcript": "", "confidence": 0.9}],
    }
    base = len(orjson.dumps(event))
    words = "alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima " * 8
    event["alternatives"][0]["transcript"] = words[: max(0, size - base)].strip()
    return orjson.dumps(event).decode()


class Pod:
    """500 sessions of one simulated gateway pod, driven as fast as Redis answers."""

    def __init__(self, store: SessionStore, args: argparse.Namespace, name: str) -> None:
        self.store = store
        self.args = args
        self.name = name
        self.rng = random.Random(name)
        self.config = '{"language":"en-US","encoding":"pcm16","sample_rate_hz":16000}'
        self.config = self.config.ljust(316)  # TranscriptionConfig's JSON is ~316 bytes
        # session id -> finals so far (seq); epoch is 1 (no resumes in this mix)
        self.sessions: dict[str, int] = {}
        self.serial = 0
        # An ending session per final: a session of L seconds makes L/2 finals.
        self.end_p = FINAL_EVERY_S / (args.session_minutes * 60.0)
        self.counts = {"append": 0, "renew": 0, "create": 0, "set_state": 0}
        self.payloads = [final_payload(s, args.final_bytes) for s in range(1, 200)]
        self.raw: RawConn | None = None

    async def new_session(self) -> None:
        self.serial += 1
        sid = f"cap-{self.name}-{self.serial:07d}"
        await self.store.create(
            sid, config_json=self.config, token=secrets.token_urlsafe(32), owner=self.name,
            ttl_s=TTL_S, retry_window_s=3600,
        )  # fmt: skip
        self.counts["create"] += 1
        self.sessions[sid] = 0

    async def end_session(self, sid: str) -> None:
        seq = self.sessions.pop(sid)
        await self.store.set_state(
            sid, epoch=1, seq=seq, state=SessionState.STOPPED, audio_ms=seq * 2000, ttl_s=TTL_S
        )
        self.counts["set_state"] += 1
        await self.new_session()

    def _next_final(self, sid: str) -> tuple[int, str, int]:
        seq = self.sessions[sid] + 1
        self.sessions[sid] = seq
        return seq, self.payloads[(seq - 1) % len(self.payloads)], seq * 2000

    async def run(self, stop: asyncio.Event) -> None:
        for _ in range(POD_SESSIONS):
            await self.new_session()
        rounds_per_renewal = round(RENEW_EVERY_S / FINAL_EVERY_S)
        rounds = 0
        while not stop.is_set():
            # One final per session: 2 s of every session's time.
            if self.args.mode == "raw":
                await self._append_raw()
            else:
                for sid in list(self.sessions):
                    seq, payload, end_ms = self._next_final(sid)
                    await self.store.append_finals(
                        sid, epoch=1, finals=[(seq, payload)], committed_ms=end_ms,
                        audio_ms=end_ms + 40, channel_ends=str(end_ms), ttl_s=TTL_S,
                    )  # fmt: skip
                    self.counts["append"] += 1
            for sid in [s for s in self.sessions if self.rng.random() < self.end_p]:
                await self.end_session(sid)
            rounds += 1
            if rounds % rounds_per_renewal == 0:
                await self.store.renew(
                    [(sid, 1, seq * 2000 + 40, seq) for sid, seq in self.sessions.items()],
                    ttl_s=TTL_S,
                )
                self.counts["renew"] += len(self.sessions)

    async def _append_raw(self) -> None:
        """The bytes redis-py sends for SessionStore.append_finals (EVALSHA of the store's
        own script object, the same keys and arguments), encoded here and sent in
        pipelines of `--pipeline` on a bare socket: so that the client core, not Python's
        Redis client, is no longer the limit."""
        if self.raw is None:
            self.raw = await RawConn.open(self.args.port)
        sha = self.store._append.sha.encode()
        ids = list(self.sessions)
        for i in range(0, len(ids), self.args.pipeline):
            chunk = []
            for sid in ids[i : i + self.args.pipeline]:
                seq, payload, end_ms = self._next_final(sid)
                meta, finals = self.store.keys(sid)
                chunk.append(
                    resp(b"EVALSHA", sha, b"2", meta.encode(), finals.encode(), b"1",
                         b"%d" % TTL_S, b"%d" % end_ms, b"%d" % (end_ms + 40),
                         b"%d" % end_ms, b"%d" % seq, payload.encode())
                )  # fmt: skip
            errors = await self.raw.call(b"".join(chunk), len(chunk))
            if errors:
                raise RuntimeError(f"append refused: {errors}")
            self.counts["append"] += len(chunk)


def resp(*parts: bytes) -> bytes:
    """One command in RESP, as redis-py writes it."""
    out = [b"*%d\r\n" % len(parts)]
    for p in parts:
        out.append(b"$%d\r\n%s\r\n" % (len(p), p))
    return b"".join(out)


class RawConn(asyncio.Protocol):
    """A bare connection for replies that are one line each (integers, errors)."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.waiting = 0
        self.errors: list[bytes] = []
        self.tail = b""
        self.done: asyncio.Future[None] | None = None

    @classmethod
    async def open(cls, port: int) -> RawConn:
        loop = asyncio.get_running_loop()
        _, conn = await loop.create_connection(cls, "127.0.0.1", port)
        return conn

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        data = self.tail + data
        end = data.rfind(b"\n") + 1
        self.tail = data[end:]
        self.waiting -= data.count(b"\n", 0, end)
        if b"-" in data[:end]:
            self.errors += [ln for ln in data[:end].split(b"\r\n") if ln.startswith(b"-")]
        if self.waiting <= 0 and self.done is not None and not self.done.done():
            self.done.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.done is not None and not self.done.done():
            self.done.set_exception(exc or ConnectionError("redis closed the connection"))

    async def call(self, commands: bytes, count: int) -> list[bytes]:
        assert self.transport is not None
        self.waiting = count
        self.done = asyncio.get_running_loop().create_future()
        self.transport.write(commands)
        await self.done
        errors, self.errors = self.errors, []
        return errors


async def worker_main(args: argparse.Namespace) -> None:
    settings = RedisSettings(url=f"redis://127.0.0.1:{args.port}/0", socket_timeout_s=10.0)
    pool = aioredis.BlockingConnectionPool.from_url(
        settings.url,
        max_connections=args.pods + 2,
        timeout=10.0,
        socket_timeout=10.0,
        decode_responses=True,
    )
    store = SessionStore(aioredis.Redis(connection_pool=pool), settings)
    if args.cluster_nodes:
        await store.close()
        settings = RedisSettings(
            mode="cluster",
            cluster_nodes=args.cluster_nodes.split(","),
            wait_replicas=0,
            socket_timeout_s=10.0,
            max_connections=args.pods + 2,
        )
        store = SessionStore.from_settings(settings)
    pods = [Pod(store, args, f"w{args.worker}p{i}") for i in range(args.pods)]
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    if args.mode == "raw":  # the script, loaded through the store (its first final)
        await pods[0].new_session()
        sid = next(iter(pods[0].sessions))
        await store.append_finals(
            sid, epoch=1, finals=[(1, final_payload(1, args.final_bytes))], committed_ms=2000,
            audio_ms=2000, channel_ends="2000", ttl_s=TTL_S,
        )  # fmt: skip
        pods[0].sessions[sid] = 1
    tasks = [asyncio.create_task(p.run(stop)) for p in pods]
    _emit({"event": "ready"})
    await loop.run_in_executor(None, sys.stdin.readline)
    stop.set()
    await asyncio.gather(*tasks)
    await store.close()
    counts = {k: sum(p.counts[k] for p in pods) for k in pods[0].counts}
    _emit({"event": "result", **counts})


def _emit(obj: dict[str, Any]) -> None:
    sys.stdout.write(orjson.dumps(obj).decode() + "\n")
    sys.stdout.flush()
