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

Talks to its caller in JSON lines: prints `ready` once every session streams (or failed,
or was refused), waits for `{"cmd": "stop", "window": [start, end]}` on stdin, stops every
session, and prints one `result` with the final latencies of the audio sent inside the
window (time.monotonic(), which every process on the machine shares), the refusals and
how long each waited for its answer, and the finals the admitted sessions lost.

The pieces: bench/frames.py (what is sent), bench/session.py (one session's outcome),
bench/ws_session.py and bench/grpc_session.py (the two transports).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import time
from collections.abc import Sequence
from typing import Any

import orjson
import uvloop

from bench.frames import (
    FINAL_EVERY_MS,
    FRAME_MS,
    NOISE_FRAMES,
    SAMPLE_RATE,
    client_frame,
    cut_frames,
    noise_frames,
)
from bench.grpc_session import GrpcSession
from bench.session import Session
from bench.ws_session import WsSession

SLOTS = 10  # timer ticks per frame: each session sends on one of them
STOP_TIMEOUT_S = 20.0


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
        self._unstarted_settled = 0  # refused or failed before transcription_started
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
        """The session ended (stopped, failed, refused or closed): counted once."""
        if session.settled:
            return
        session.settled = True
        self._settled += 1
        if not session.started:
            self._unstarted_settled += 1
            self._check_all_streaming()
        if self._settled == len(self.sessions):
            self._all_settled.set()

    def _check_all_streaming(self) -> None:
        if self._streaming + self._unstarted_settled >= self.args.streams:
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
                "refused": sum(1 for s in self.sessions if s.refused),
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
        return self.result(window[0], window[1])

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

    def result(self, start: float, end: float) -> dict[str, Any]:
        """What the sessions did: latencies of the finals whose audio was sent inside
        [start, end], refusals and their waits, errors, and the finals admitted sessions
        lost."""
        latencies: list[float] = []
        refusals: list[float] = []
        errors: dict[str, int] = {}
        frames_in_window = finals = expected = lost = 0
        for s in self.sessions:
            refusal = s.refusal_ms()
            if refusal is not None:
                refusals.append(refusal)
                continue
            latencies.extend(s.latencies(start, end, self.frame_ms))
            frames_in_window += sum(1 for t in s.sent_at if start <= t <= end)
            finals += len(s.finals)
            expected += s.expected_finals(self.frame_ms)
            lost += s.finals_lost(self.frame_ms)
            if not s.stopped and not s.errors:
                s.errors.append("no transcription_stopped in time")
            for e in s.errors:
                errors[e] = errors.get(e, 0) + 1
        return {
            "event": "result",
            "streams": self.args.streams,
            "streams_started": sum(1 for s in self.sessions if s.started),
            "refused": len(refusals),
            "frames_sent": sum(len(s.sent_at) for s in self.sessions),
            "frames_in_window": frames_in_window,
            "finals_received": finals,
            "finals_expected": expected,
            "finals_lost": lost,
            "errors": sum(errors.values()),
            "error_kinds": errors,
            "latencies_ms": [round(x, 3) for x in latencies],
            "refusal_latencies_ms": [round(x, 3) for x in refusals],
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
