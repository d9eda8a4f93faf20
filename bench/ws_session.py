"""A load-generator session over PROTOCOL.md's WebSocket: a bare `asyncio.Protocol`
(uvloop's transports), so that the generator stays far from saturating its core. The
upgrade is written by hand, server frames are parsed in place, interims are recognised by
their bytes and not parsed; audio frames come prebuilt from the generator."""

from __future__ import annotations

import asyncio
import base64
import os
import time
from typing import TYPE_CHECKING, Any

import orjson

from bench.frames import client_frame
from bench.session import (
    CAPACITY_EXHAUSTED,
    REFUSED_CLOSE_CODE,
    REFUSED_HTTP_STATUS,
    Session,
)

if TYPE_CHECKING:
    from bench.loadgen import LoadGen

START = orjson.dumps(
    {"type": "start_transcription", "config": {"encoding": "pcm16", "sample_rate_hz": 16000}}
)
STOP = orjson.dumps({"type": "stop_transcription"})


def http_status(status_line: bytes) -> int | None:
    """The status code of an HTTP/1.1 status line (`HTTP/1.1 503 Service Unavailable`)."""
    parts = status_line.split(b" ", 2)
    if len(parts) < 2 or not parts[1].isdigit():
        return None
    return int(parts[1])


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
            line_end = buf.find(b"\r\n")
            if line_end < 0:
                return
            status = bytes(buf[:line_end])
            code = http_status(status)
            if code == REFUSED_HTTP_STATUS:
                self.refuse()  # answered at the status line: the body does not matter
                self._close()
                return
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            if code != 101:
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
            if code == REFUSED_CLOSE_CODE and not self.started:
                self.refuse()  # no error event before it: the close is the answer
            elif not self.stopped:
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
            code = event.get("code")
            if code == CAPACITY_EXHAUSTED and not self.started:
                self.refuse()
            else:
                self.error(f"error {code}")

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
