"""The load generator: N sessions of generated noise, 16 kHz PCM16 mono in 100 ms frames
(`--frame-ms` for others) at real-time pace, over PROTOCOL.md's WebSocket (`--mode ws`:
the gateway, the relay, NGINX) or straight to the speech server over gRPC (`--mode grpc`).

    python -m bench.loadgen --mode ws --port 8000 --streams 300 [--frame-ms 50]

It must stay far from saturating its core at 500 streams, so the WebSocket client is a
bare `asyncio.Protocol` on uvloop: the frames are built once (header, an all-zero mask
key, so the payload needs no XOR, and the audio), and every 10 ms one timer callback
writes the frames due for a tenth of the streams, one `transport.write` each, and stores
one timestamp per frame. Interim transcripts are counted from their bytes, unparsed.
Whatever the frame size, every session sends the same audio (the same cycle of noise,
cut into smaller or larger frames), so the speech server gives the same finals.

Talks to its caller in JSON lines: prints `ready` once every session streams (or failed),
waits for `{"cmd": "stop", "window": [start, end]}` on stdin, stops every session, and
prints one `result` with the final latencies of the audio sent inside the window
(time.monotonic(), which every process on the machine shares).
"""

from __future__ import annotations

import argparse
import array
import asyncio
import base64
import contextlib
import os
import random
import sys
import time
from collections.abc import Sequence
from typing import Any

import orjson
import uvloop

SAMPLE_RATE = 16000
FRAME_MS = 100
FRAME_BYTES = SAMPLE_RATE * 2 * FRAME_MS // 1000
FRAME_S = FRAME_MS / 1000
SLOTS = 10  # timer ticks per frame: each session sends on one of them
# Distinct 100 ms frames of noise; each session starts at its own place in the cycle.
NOISE_FRAMES = 64
FINAL_EVERY_MS = 2000  # the synthetic engine's, as bench starts it
STOP_TIMEOUT_S = 20.0

START = orjson.dumps(
    {"type": "start_transcription", "config": {"encoding": "pcm16", "sample_rate_hz": 16000}}
)
STOP = orjson.dumps({"type": "stop_transcription"})


def noise_frames(count: int, seed: int = 1) -> list[bytes]:
    """`count` 100 ms frames of Gaussian noise (PCM16 LE, sigma ~ -30 dBFS): the synthetic
    engine derives its words from the audio bytes, so every frame differs."""
    rng = random.Random(seed)
    frames = []
    for _ in range(count):
        samples = array.array(
            "h", (max(-32768, min(32767, int(rng.gauss(0, 1000)))) for _ in range(FRAME_BYTES // 2))
        )
        if sys.byteorder != "little":
            samples.byteswap()
        frames.append(samples.tobytes())
    return frames


def cut_frames(frames: Sequence[bytes], frame_ms: int) -> list[bytes]:
    """The same audio as `frames` (100 ms each, in a cycle) cut into `frame_ms` frames;
    `frame_ms` must divide the whole cycle."""
    audio = b"".join(frames)
    size = SAMPLE_RATE * 2 * frame_ms // 1000
    if size <= 0 or len(audio) % size:
        raise ValueError(f"{frame_ms} ms frames do not divide {len(frames) * FRAME_MS} ms")
    return [audio[i : i + size] for i in range(0, len(audio), size)]


def client_frame(opcode: int, payload: bytes) -> bytes:
    """One final client frame with the masking bit set and an all-zero key (so the masked
    payload is the payload itself)."""
    size = len(payload)
    if size < 126:
        header = bytes((0x80 | opcode, 0x80 | size))
    elif size < 65536:
        header = bytes((0x80 | opcode, 0x80 | 126)) + size.to_bytes(2, "big")
    else:
        header = bytes((0x80 | opcode, 0x80 | 127)) + size.to_bytes(8, "big")
    return header + b"\x00\x00\x00\x00" + payload


def expected_finals(frames_sent: int, frames_per_final: int = FINAL_EVERY_MS // FRAME_MS) -> int:
    """A final per whole window of the synthetic engine, and one for the partial window
    that the stop flushes."""
    return -(-frames_sent // frames_per_final)


def frame_index_for(end_ms: int, frame_ms: int = FRAME_MS) -> int:
    """The frame whose sending completed the audio up to `end_ms`."""
    return -(-end_ms // frame_ms) - 1


class Session:
    """What one session sent and received; the transport-specific parts subclass it."""

    def __init__(self, gen: LoadGen, index: int) -> None:
        self.gen = gen
        self.index = index
        # In frames of the run's size: the same place in the audio whatever the size.
        self.offset = (index * 7) % NOISE_FRAMES * FRAME_MS // gen.frame_ms
        self.sent_at: list[float] = []
        self.finals: list[tuple[float, int]] = []
        self.errors: list[str] = []
        self.streaming = False
        self.started = False
        self.stopped = False  # transcription_stopped (or, over gRPC, the call's end) seen
        self.stop_at = 0.0
        self.next_due = 0.0

    def error(self, what: str) -> None:
        if not self.errors:  # the first cause; later ones follow from it
            self.errors.append(what)
        self.gen.session_settled(self)

    def final(self, seq: int | None, end_ms: int) -> None:
        self.finals.append((time.monotonic(), end_ms))
        if seq is not None and seq != len(self.finals):
            self.error(f"seq {seq} after {len(self.finals) - 1} finals")

    def stop(self) -> None:
        self.streaming = False
        self.stop_at = time.monotonic()

    def latencies(self, start: float, end: float, frame_ms: int = FRAME_MS) -> list[float]:
        sent_at = self.sent_at
        out = []
        for arrival, end_ms in self.finals:
            idx = frame_index_for(end_ms, frame_ms)
            if 0 <= idx < len(sent_at) and start <= sent_at[idx] <= end:
                if arrival >= self.stop_at > 0 and idx == len(sent_at) - 1:
                    continue  # the stop's flush of a partial window, not a steady final
                out.append((arrival - sent_at[idx]) * 1000.0)
        return out


class WsSession(Session, asyncio.Protocol):
    def __init__(self, gen: LoadGen, index: int, path: str) -> None:
        super().__init__(gen, index)
        self.path = path
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.upgraded = False
        self.fragments: list[bytes] = []
        self._fragment_opcode = 0x1
        self.closed = False

    # ---- asyncio.Protocol ----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not subclasses of asyncio.Transport.
        self.transport = transport  # type: ignore[assignment]
        key = base64.b64encode(os.urandom(16)).decode()
        transport.write(  # type: ignore[attr-defined]
            f"GET {self.path} HTTP/1.1\r\nHost: {self.gen.host}:{self.gen.port}\r\n"
            "Upgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
        )

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.streaming = False
        if not self.stopped:
            self.error(f"connection lost: {exc!r}" if exc else "connection closed")

    def data_received(self, data: bytes) -> None:
        buf = self.buf
        buf += data
        if not self.upgraded:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            status = bytes(buf[: buf.find(b"\r\n")])
            if b" 101 " not in status:
                self.error("handshake: " + status.decode(errors="replace"))
                self._close()
                return
            del buf[: end + 4]
            self.upgraded = True
            self._write(client_frame(0x1, START))
        # Server frames are unmasked: FIN/opcode, length (7, 16 or 64 bits), payload.
        while len(buf) >= 2:
            size = buf[1] & 0x7F
            head = 2
            if size == 126:
                if len(buf) < 4:
                    return
                size = int.from_bytes(buf[2:4], "big")
                head = 4
            elif size == 127:
                if len(buf) < 10:
                    return
                size = int.from_bytes(buf[2:10], "big")
                head = 10
            if len(buf) < head + size:
                return
            first = buf[0]
            payload = bytes(buf[head : head + size])
            del buf[: head + size]
            self._on_frame(first & 0x80, first & 0x0F, payload)

    # ---- WebSocket frames and PROTOCOL.md events -----------------------------------------

    def _on_frame(self, fin: int, opcode: int, payload: bytes) -> None:
        if opcode == 0x0 or not fin:  # a fragmented message
            self.fragments.append(payload)
            if not fin:
                self._fragment_opcode = opcode or self._fragment_opcode
                return
            payload, opcode = b"".join(self.fragments), self._fragment_opcode
            self.fragments = []
        if opcode == 0x1:
            self._on_event(payload)
        elif opcode == 0x8:
            code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else 1005
            if not self.stopped:
                self.error(f"closed {code} before transcription_stopped")
            self._write(client_frame(0x8, payload[:2]))
            self._close()
        elif opcode == 0x9:
            self._write(client_frame(0xA, payload))

    def _on_event(self, payload: bytes) -> None:
        if b'"is_final":false' in payload:
            return  # an interim: nothing to measure
        event: dict[str, Any] = orjson.loads(payload)
        kind = event.get("event")
        if kind == "transcript":
            self.final(event.get("seq"), event["end_ms"])
        elif kind == "transcription_started":
            self.gen.session_streaming(self)
        elif kind == "transcription_stopped":
            self.stopped = True
            if event.get("finals") != len(self.finals):
                self.error(f"stopped after {event.get('finals')} finals, got {len(self.finals)}")
            self.gen.session_settled(self)
        elif kind == "error":
            self.error(f"error {event.get('code')}")

    def send_due(self, now: float) -> None:
        frames = self.gen.frames
        count = len(frames)
        step = self.gen.frame_s
        write = self.transport.write  # type: ignore[union-attr]
        sent_at = self.sent_at
        while self.next_due <= now + 0.002:
            write(frames[(self.offset + len(sent_at)) % count])
            sent_at.append(now)
            self.next_due += step

    def stop(self) -> None:
        self.streaming = False
        self.stop_at = time.monotonic()
        if self.upgraded and not self.closed:
            self._write(client_frame(0x1, STOP))

    def _write(self, data: bytes) -> None:
        if self.transport is not None and not self.closed:
            self.transport.write(data)

    def _close(self) -> None:
        self.streaming = False
        if self.transport is not None:
            self.transport.close()


class GrpcSession(Session):
    """One Riva StreamingRecognize call: latency without the gateway."""

    async def run(self, stub: Any, config: Any, requests: Sequence[Any]) -> None:
        import grpc

        count = len(requests)
        step = self.gen.frame_s
        call = stub.StreamingRecognize()
        reader = asyncio.create_task(self._read(call))
        try:
            await call.write(config)
            self.gen.session_streaming(self)
            next_due = time.monotonic()
            sent_at = self.sent_at
            while self.streaming:
                delay = next_due - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                    if not self.streaming:
                        break
                now = time.monotonic()
                await call.write(requests[(self.offset + len(sent_at)) % count])
                sent_at.append(now)
                next_due += step
            await call.done_writing()
        except grpc.aio.AioRpcError as exc:
            self.error(f"grpc {exc.code().name}")
        except asyncio.InvalidStateError:
            pass  # the call ended; the reader says how
        await reader

    async def _read(self, call: Any) -> None:
        import grpc

        try:
            async for response in call:
                for result in response.results:
                    if result.is_final and result.alternatives[0].transcript.strip():
                        self.final(None, round(result.audio_processed * 1000))
            self.stopped = True
        except grpc.aio.AioRpcError as exc:
            self.error(f"grpc {exc.code().name}")
        self.gen.session_settled(self)


class LoadGen:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.host: str = args.host
        self.port: int = args.port
        self.frame_ms: int = args.frame_ms
        self.frame_s = args.frame_ms / 1000
        self.frames: list[bytes] = []
        self.sessions: list[Session] = []
        self.slots: list[list[WsSession]] = [[] for _ in range(SLOTS)]
        self._next_slot = 0
        self._streaming = 0
        self._settled = 0
        self._all_streaming = asyncio.Event()
        self._all_settled = asyncio.Event()
        self._loop = asyncio.get_running_loop()

    # ---- session callbacks ---------------------------------------------------------------

    def session_streaming(self, session: Session) -> None:
        if session.started:
            return
        session.started = True
        session.streaming = True
        session.next_due = time.monotonic()
        if isinstance(session, WsSession):
            self.slots[self._next_slot % SLOTS].append(session)
            self._next_slot += 1
        self._streaming += 1
        self._check_all_streaming()

    def session_settled(self, session: Session) -> None:
        """The session ended (stopped, failed or closed): counted once."""
        if getattr(session, "_settled", False):
            return
        session._settled = True  # type: ignore[attr-defined]
        self._settled += 1
        if not session.started:
            self._check_all_streaming()
        if self._settled == len(self.sessions):
            self._all_settled.set()

    def _check_all_streaming(self) -> None:
        failed = sum(1 for s in self.sessions if not s.started and s.errors)
        if self._streaming + failed >= self.args.streams:
            self._all_streaming.set()

    # ---- pacing: one timer for every WebSocket session -----------------------------------

    def _start_ticker(self) -> None:
        self._tick_base = self._loop.time()
        self._ticks = 0
        self._loop.call_at(self._tick_base, self._tick)

    def _tick(self) -> None:
        slot = self.slots[self._ticks % SLOTS]
        self._ticks += 1
        self._loop.call_at(self._tick_base + self._ticks * self.frame_s / SLOTS, self._tick)
        now = time.monotonic()
        for session in slot:
            if session.streaming:
                session.send_due(now)

    # ---- the run -------------------------------------------------------------------------

    async def run(self) -> dict[str, Any]:
        args = self.args
        noise = cut_frames(noise_frames(NOISE_FRAMES, seed=args.seed), args.frame_ms)
        if args.mode == "ws":
            self.frames = [client_frame(0x2, f) for f in noise]
            self._start_ticker()
            opener = self._open_ws
        else:
            opener = await self._grpc_opener(noise)
        tasks = []
        t0 = time.monotonic()
        for i in range(args.streams):
            delay = t0 + i / args.ramp_rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.ensure_future(opener(i)))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._all_streaming.wait(), args.ready_timeout)
        _emit(
            {
                "event": "ready",
                "streaming": self._streaming,
                "failed": sum(1 for s in self.sessions if s.errors),
                "ramp_s": round(time.monotonic() - t0, 3),
            }
        )
        command = await self._loop.run_in_executor(None, sys.stdin.readline)
        window = orjson.loads(command)["window"] if command.strip() else [0.0, 0.0]
        # Stopped at the ramp's pace: a real fleet's sessions do not all end in the same
        # millisecond (--stop-rate 0 stops them at once, a burst worth testing apart).
        for i, session in enumerate(self.sessions):
            if args.stop_rate > 0:
                self._loop.call_later(i / args.stop_rate, session.stop)
            else:
                session.stop()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(
                self._all_settled.wait(),
                STOP_TIMEOUT_S + len(self.sessions) / max(args.stop_rate, 1),
            )
        for task in tasks:
            task.cancel()
        return self._result(window[0], window[1])

    async def _open_ws(self, index: int) -> None:
        session = WsSession(self, index, f"{self.args.path}/{self.args.id_prefix}{index:05d}")
        self.sessions.append(session)
        try:
            await self._loop.create_connection(lambda: session, self.host, self.port)
        except OSError as exc:
            session.error(f"connect: {exc.__class__.__name__}")

    async def _grpc_opener(self, noise: list[bytes]) -> Any:
        import grpc
        from riva.client.proto import riva_asr_pb2 as asr
        from riva.client.proto import riva_asr_pb2_grpc as asr_grpc

        from gateway.backends.riva_config import streaming_config
        from gateway.protocol import TranscriptionConfig

        channel = grpc.aio.insecure_channel(f"{self.host}:{self.port}")
        await asyncio.wait_for(channel.channel_ready(), 10)
        stub = asr_grpc.RivaSpeechRecognitionStub(channel)
        config = asr.StreamingRecognizeRequest(
            streaming_config=streaming_config(TranscriptionConfig(sample_rate_hz=SAMPLE_RATE))
        )
        requests = [asr.StreamingRecognizeRequest(audio_content=f) for f in noise]

        async def open_grpc(index: int) -> None:
            session = GrpcSession(self, index)
            self.sessions.append(session)
            await session.run(stub, config, requests)

        return open_grpc

    def _result(self, start: float, end: float) -> dict[str, Any]:
        latencies: list[float] = []
        errors: dict[str, int] = {}
        frames_in_window = finals = expected = unfinished = 0
        for s in self.sessions:
            latencies.extend(s.latencies(start, end, self.frame_ms))
            frames_in_window += sum(1 for t in s.sent_at if start <= t <= end)
            finals += len(s.finals)
            expected += expected_finals(len(s.sent_at), FINAL_EVERY_MS // self.frame_ms)
            if not s.stopped and not s.errors:
                s.errors.append("no transcription_stopped in time")
                unfinished += 1
            for e in s.errors:
                errors[e] = errors.get(e, 0) + 1
        return {
            "event": "result",
            "streams": self.args.streams,
            "streams_started": sum(1 for s in self.sessions if s.started),
            "frames_sent": sum(len(s.sent_at) for s in self.sessions),
            "frames_in_window": frames_in_window,
            "finals_received": finals,
            "finals_expected": expected,
            "errors": sum(errors.values()),
            "error_kinds": errors,
            "latencies_ms": [round(x, 3) for x in latencies],
        }


def _emit(obj: dict[str, Any]) -> None:
    sys.stdout.write(orjson.dumps(obj).decode() + "\n")
    sys.stdout.flush()


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.loadgen", description=__doc__.split("\n")[0])
    p.add_argument("--mode", choices=("ws", "grpc"), default="ws")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--path", default="/api/v1/transcribe", help="WebSocket path before the id")
    p.add_argument("--streams", type=int, required=True)
    p.add_argument(
        "--frame-ms",
        type=int,
        default=FRAME_MS,
        help="audio per frame (must divide 2000 ms, the final's window, and the noise cycle)",
    )
    p.add_argument("--ramp-rate", type=float, default=250.0, help="sessions opened per second")
    p.add_argument(
        "--stop-rate",
        type=float,
        default=250.0,
        help="sessions stopped per second (0: all at once)",
    )
    p.add_argument("--ready-timeout", type=float, default=30.0)
    p.add_argument("--id-prefix", default="bench-")
    p.add_argument("--seed", type=int, default=1)
    return p.parse_args(argv)


async def _main(args: argparse.Namespace) -> None:
    _emit(await LoadGen(args).run())


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    if FINAL_EVERY_MS % args.frame_ms:
        raise SystemExit(f"--frame-ms {args.frame_ms} does not divide {FINAL_EVERY_MS} ms")
    uvloop.run(_main(args))


if __name__ == "__main__":
    main()
