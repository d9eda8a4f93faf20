"""Bad input on the WebSocket protocol, against a live gateway (gunicorn, real Redis, the
CPU speech server): property-based fuzzing with hypothesis while a normal session streams
speech, and the floods that bad input must not cause in the logs.

The oracle for each fuzzed message is PROTOCOL.md: a bad message gets an `error` with one
of its codes (and, where the protocol ends the connection, its close code); every event
is checked against the published schema (tests/support/ws.py); the gateway stays up,
logs no error and no traceback, and the normal session ends with its exact transcript.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.typing import Subprotocol

from gateway.protocol import (
    ErrorCode,
    Finalize,
    Keepalive,
    ResumeTranscription,
    StartTranscription,
    StopTranscription,
    client_message_adapter,
)
from tests.support.audio import goforward
from tests.support.fixtures_gateway import GatewayFactory, http_get, start_gateway
from tests.support.metrics import metric_value
from tests.support.processes import Proc, free_port, poll_until
from tests.support.protocol_schema import checked_event
from tests.support.ws import collect, frames, open_ws, session_url, stream_session

pytestmark = pytest.mark.integration

GOFORWARD_TEXT = ["go forward ten meters"]
FRAME_100MS = 3200
MAX_TEXT = 8 * 1024  # LimitSettings.max_text_bytes
MAX_FRAME = 256 * 1024  # LimitSettings.max_frame_bytes
WS_MAX_SIZE = 4 * 1024 * 1024  # the worker's ws_max_size: uvicorn closes 1009 past it
CODES = {code.value for code in ErrorCode}
DOCUMENTED_CLOSES = {1000, 1008, 1009, 1011, 1012, 1013}
REPLY_WAIT_S = 15.0
IDLE_TIMEOUT_S = 8
# A stray byte, a bad sequence inside valid JSON, an encoded surrogate.
NOT_UTF8 = [b"\xff", b'{"type":"\xc3\x28"}', b"\xed\xa0\x80"]
GOOD_CONFIGS = [
    {},
    {"enable_interim_results": False},
    {"language": "en-US", "sample_rate_hz": 16000},
    {"enable_word_time_offsets": True, "max_alternatives": 2},
]


@pytest.fixture(scope="module")
def gateway(log_dir: Path, redis_url: str, asr_server: Proc) -> Iterator[Proc]:
    proc = start_gateway(
        log_dir,
        redis_url=redis_url,
        riva_targets=f"127.0.0.1:{asr_server.port}",
        name="gateway-fuzz",
        # The fuzz tests the protocol, not admission: two busy cores must not make the
        # worker refuse sessions as saturated.
        # A session whose client vanished unseen is ended by the idle timeout: shorter
        # here, so that the last test can wait for every fuzzed session's end.
        env={
            "LIMITS__MAX_LOOP_LAG_S": "10",
            "LIMITS__MAX_LOOP_BUSY": "1",
            "LIMITS__IDLE_TIMEOUT_S": str(IDLE_TIMEOUT_S),
        },
    )
    yield proc
    proc.stop()


@pytest.fixture
def base(gateway: Proc) -> str:
    return f"ws://127.0.0.1:{gateway.port}"


def log_since(proc: Proc, offset: int) -> str:
    with proc.log.open("rb") as f:
        f.seek(offset)
        return f.read().decode(errors="replace")


def error_lines(text: str) -> list[str]:
    """Log lines at ERROR (the gateway's JSON lines and gunicorn's/uvicorn's) and tracebacks."""
    return [
        line
        for line in text.splitlines()
        if '"level":"error"' in line or "[ERROR]" in line or line.startswith("Traceback")
    ]


def metric(proc: Proc, name: str) -> float:
    # /metrics moves to the pod's admin listener where there is one (`admin_port`).
    port = proc.extra.get("admin_port", proc.port)
    assert isinstance(port, int)
    return metric_value(port, name)


def bad_inputs(proc: Proc, reason: str) -> float:
    return metric(proc, f'gateway_bad_input_total{{reason="{reason}"}}')


def new_id() -> str:
    return f"fuzz-{uuid.uuid4().hex[:16]}"


# ---- the floods bad input used to cause --------------------------------------------


async def test_invalid_utf8_gets_invalid_message_a_count_and_one_warning(
    gateway: Proc, base: str
) -> None:
    offset, before = gateway.log.stat().st_size, bad_inputs(gateway, "invalid_utf8")
    connections = 20
    for i in range(connections):
        async with await open_ws(base, new_id()) as ws:
            if i % 2:  # after a start as well as before it
                await ws.send(json.dumps({"type": "start_transcription", "config": {}}))
                assert checked_event(json.loads(await ws.recv()))["event"] == (
                    "transcription_started"
                )
            await ws.send(b"\xff\xfe{", text=True)
            reply = checked_event(json.loads(await asyncio.wait_for(ws.recv(), REPLY_WAIT_S)))
            with pytest.raises(ConnectionClosed):
                await asyncio.wait_for(ws.recv(), REPLY_WAIT_S)
        assert (reply["event"], reply["code"], reply["retryable"]) == (
            "error", "invalid_message", False,
        )  # fmt: skip
        assert ws.close_code == 1008
    assert bad_inputs(gateway, "invalid_utf8") == before + connections
    logged = log_since(gateway, offset)
    assert error_lines(logged) == []
    warnings = [line for line in logged.splitlines() if "not valid UTF-8" in line]
    assert len(warnings) == connections  # one per connection, at WARNING
    assert all('"level":"warning"' in line for line in warnings)


async def test_a_socket_ended_before_its_start_is_answered_leaves_no_session_behind(
    gateway: Proc, base: str
) -> None:
    """A start and, at once, a frame that ends the socket: the session the start created
    is not left registered (and counted, and renewed) for the life of the worker."""
    for _ in range(5):
        async with await open_ws(base, new_id()) as ws:
            await ws.send(json.dumps({"type": "start_transcription", "config": {}}))
            await ws.send(b"\xff", text=True)
            run = await collect(ws, REPLY_WAIT_S)
        assert [e["code"] for e in run.of("error")] == ["invalid_message"]
        assert run.close_code == 1008
    poll_until(
        lambda: metric(gateway, "gateway_sessions_active") == 0.0,
        15,
        "the sessions of the ended sockets to be released",
    )


async def test_malformed_session_ids_are_counted_not_logged_as_errors(
    gateway: Proc, base: str
) -> None:
    offset, before = gateway.log.stat().st_size, bad_inputs(gateway, "bad_session_id")
    bad_ids = ["short", "x" * 65, "bad%20id!", "semi%3Bcolon-id", "%C3%A9t%C3%A9-session"]
    for bad in bad_ids:
        with pytest.raises(InvalidStatus) as info:
            await open_ws(base, bad)
        assert info.value.response.status_code == 400
        assert info.value.response.body.startswith(b"invalid_message: ")
        status, body = http_get(f"http://127.0.0.1:{gateway.port}/api/v1/sessions/{bad}")
        assert status == 400, body
    assert bad_inputs(gateway, "bad_session_id") == before + 2 * len(bad_ids)
    logged = log_since(gateway, offset)
    assert error_lines(logged) == []
    # uvicorn's one line per refused connection, nothing more.
    refused = [line for line in logged.splitlines() if "/api/v1/" in line]
    assert len(refused) <= len(bad_ids)


async def test_a_token_in_the_query_string_never_reaches_the_log(gateway: Proc) -> None:
    offset = gateway.log.stat().st_size
    url = f"ws://127.0.0.1:{gateway.port}/api/v1/transcribe/{new_id()}?access_token=sk-live-7"
    async with connect(url, compression=None) as ws:
        await ws.send(json.dumps({"type": "keepalive"}))
        assert checked_event(json.loads(await ws.recv()))["code"] == "invalid_message"
    logged = log_since(gateway, offset)
    assert "access_token=[redacted]" in logged
    assert "sk-live-7" not in logged


async def test_a_dead_backend_is_reported_without_its_address(
    gateway_factory: GatewayFactory, redis_url: str
) -> None:
    """gRPC's status details name the endpoint ("ipv4:10.0.3.4:50051: Connection
    refused"): the client gets the code and a fixed text; the details go to the log."""
    dead = free_port()
    proc = gateway_factory(redis_url=redis_url, riva_targets=f"127.0.0.1:{dead}")
    async with await open_ws(f"ws://127.0.0.1:{proc.port}", new_id()) as ws:
        await ws.send(json.dumps({"type": "start_transcription", "config": {}}))
        await ws.send(goforward()[:FRAME_100MS])
        run = await collect(ws, 60)
    (error,) = run.of("error")
    assert (error["code"], error["retryable"]) == ("backend_unavailable", True)
    assert run.close_code == 1013
    assert str(dead) not in json.dumps(run.events)
    poll_until(lambda: str(dead) in proc.log.read_text(), 10, "the details in the log")


@settings(
    max_examples=30,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    key=st.text(st.characters(min_codepoint=33, max_codepoint=126), max_size=30),
    version=st.sampled_from(["13", "8", "", "abc"]),
    upgrade=st.sampled_from(["websocket", "WebSocket", "h2c", ""]),
)
def test_malformed_handshakes_are_refused_quietly(
    gateway: Proc, key: str, version: str, upgrade: str
) -> None:
    offset = gateway.log.stat().st_size
    session_id = new_id()
    request = (
        f"GET /api/v1/transcribe/{session_id} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Connection: Upgrade\r\nUpgrade: {upgrade}\r\nSec-WebSocket-Key: {key}\r\n"
        f"Sec-WebSocket-Version: {version}\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=10) as conn:
        conn.sendall(request.encode())
        status_line = conn.makefile("rb").readline().decode()
    status = int(status_line.split()[1])
    assert status in (101, 400, 403, 404, 426), status_line
    logged = log_since(gateway, offset)
    assert error_lines(logged) == []
    # uvicorn's one line for the connection, at most (other lines may be other sessions').
    assert len([line for line in logged.splitlines() if session_id in line]) <= 1


async def test_no_credential_of_a_whole_session_reaches_the_log(gateway: Proc, base: str) -> None:
    """A session opened with credentials in every place a client may put them, left and
    resumed with its resume token: none of them in any log line."""
    offset = gateway.log.stat().st_size
    session_id = new_id()
    secrets = {"header": "sk-hdr-8c1f", "protocol": "sk-proto-5d2e", "query": "sk-query-9a7b"}
    url = f"{session_url(base, session_id)}?access_token={secrets['query']}"
    opened = connect(
        url,
        compression=None,
        additional_headers={"Authorization": f"Bearer {secrets['header']}"},
        subprotocols=[Subprotocol(f"bearer.{secrets['protocol']}")],
    )
    async with opened as ws:
        await ws.send(json.dumps({"type": "start_transcription", "config": {}}))
        token = checked_event(json.loads(await ws.recv()))["resume_token"]
        await ws.send(goforward()[: 10 * FRAME_100MS])
    async with await open_ws(base, session_id) as ws:
        await ws.send(json.dumps({"type": "resume_transcription", "resume_token": token}))
        assert (await next_reply(ws))["event"] == "transcription_resumed"
        await ws.send(json.dumps({"type": "stop_transcription"}))
        assert (await next_reply(ws))["event"] == "transcription_stopped"
    logged = log_since(gateway, offset)
    assert session_id in logged  # the session's lines are there
    for secret in [token, *secrets.values()]:
        assert secret not in logged


# ---- property-based fuzzing ----------------------------------------------------------

scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)
json_values = st.recursive(
    scalars | st.text(max_size=12),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)
message_types = st.sampled_from(
    ["start_transcription", "resume_transcription", "finalize", "keepalive",
     "stop_transcription", "dance", ""]
)  # fmt: skip
# JSON objects shaped like messages: known and unknown types, wrong field types, unknown
# fields (the gateway's own models decide, below, whether one is valid).
shaped = st.fixed_dictionaries(
    {"type": message_types},
    optional={
        "config": json_values | st.fixed_dictionaries({}, optional={
            "sample_rate_hz": json_values, "encoding": json_values, "channels": json_values,
            "language": json_values, "sample_rate": json_values,
        }),
        "resume_token": json_values, "last_seq": json_values, "extra": json_values,
    },
).map(json.dumps)  # fmt: skip

Message = tuple[str, Any]
messages: st.SearchStrategy[Message] = st.one_of(
    st.tuples(st.just("start"), st.sampled_from(GOOD_CONFIGS)),
    st.tuples(st.just("text"), shaped),
    st.tuples(st.just("text"), json_values.map(json.dumps)),
    st.tuples(st.just("text"), st.text(max_size=64)),
    st.tuples(st.just("audio"), st.binary(min_size=0, max_size=6400)),
    st.tuples(st.just("not_utf8"), st.sampled_from(NOT_UTF8)),
    st.tuples(st.just("big_text"), st.integers(MAX_TEXT + 1, 64 * 1024)),
    st.tuples(st.just("big_audio"), st.integers(MAX_FRAME + 1, MAX_FRAME + 4096)),
    st.tuples(st.just("huge"), st.sampled_from(["text", "binary"])),
    st.tuples(st.just("resume_garbage"), st.text(min_size=1, max_size=40)),
    st.tuples(st.just("stop"), st.none()),
)  # fmt: skip
# Whole connections that are not a message sequence: a resume with a garbage token of the
# normal session streaming meanwhile, a malformed id in the URL.
connections = st.one_of(
    st.tuples(st.just("sequence"), st.lists(messages, min_size=1, max_size=7)),
    # Half as often again: after a valid start, where the live session's rules apply.
    st.tuples(
        st.just("sequence"),
        st.lists(messages, min_size=1, max_size=6).map(lambda rest: [("start", {}), *rest]),
    ),
    st.tuples(st.just("hijack"), st.text(min_size=1, max_size=40)),
    st.tuples(st.just("bad_id"), st.sampled_from(["short", "x" * 65, "a%20b-cdefgh"])),
)


@dataclass
class Expect:
    """What a message must get: `codes` (an `error` with one of them), `close` (the
    socket closed with one of these codes), `started`/`stopped` (those events)."""

    codes: set[str] = field(default_factory=set)
    close: set[int] = field(default_factory=set)
    started: bool = False
    stopped: bool = False
    optional: bool = False  # a valid start whose config the backend may still refuse


def expectation(kind: str, payload: Any, started: bool) -> Expect | None:
    """PROTOCOL.md's answer to one message in the connection's state (None: no reply due)."""
    if kind == "start":
        return Expect(codes={"invalid_message"}) if started else Expect(started=True)
    if kind == "stop":
        return Expect(stopped=True, close={1000}) if started else Expect(codes={"invalid_message"})
    if kind == "audio":
        return None if started else Expect(codes={"invalid_message"}, close={1008})
    if kind == "not_utf8":
        return Expect(codes={"invalid_message"}, close={1008})
    if kind == "big_text":
        return Expect(codes={"frame_too_large"}, close={1009})
    if kind == "big_audio":
        code = "frame_too_large" if started else "invalid_message"
        return Expect(codes={code}, close={1009 if started else 1008})
    if kind == "huge":
        # uvicorn's own limit: the close alone. The server stops reading mid-frame, so its
        # close may reach the client as a reset (1006) while the client is still sending.
        return Expect(close={1009, 1006})
    if kind == "resume_garbage":
        if started:
            return Expect(codes={"invalid_message"})
        return Expect(codes={"session_not_found", "unauthorized"}, close={1008})
    assert kind == "text"
    try:
        parsed = client_message_adapter.validate_json(payload)
    except ValidationError:
        return Expect(codes={"invalid_message", "invalid_config"})
    if isinstance(parsed, StopTranscription) and started:
        return Expect(stopped=True, close={1000})
    if isinstance(parsed, Keepalive | Finalize) and started:
        return None
    if isinstance(parsed, StartTranscription) and not started:
        # Valid by the schema; the speech backend may still refuse the config.
        return Expect(started=True, optional=True)
    if isinstance(parsed, ResumeTranscription) and not started:
        return Expect(codes={"session_not_found", "unauthorized"}, close={1008})
    return Expect(codes={"invalid_message"})


def encode(kind: str, payload: Any) -> str | bytes:
    if kind == "start":
        return json.dumps({"type": "start_transcription", "config": payload})
    if kind == "stop":
        return json.dumps({"type": "stop_transcription"})
    if kind == "big_text":
        return json.dumps({"type": "keepalive", "pad": "x" * payload})
    if kind == "big_audio":
        return b"\x00" * payload
    if kind == "huge":
        return "x" * (WS_MAX_SIZE + 1) if payload == "text" else b"\x00" * (WS_MAX_SIZE + 1)
    if kind == "resume_garbage":
        return json.dumps({"type": "resume_transcription", "resume_token": payload})
    if kind == "audio":
        return payload[: len(payload) // 2 * 2]  # whole pcm16 samples
    return payload  # text, or not_utf8 bytes sent in a text frame


class Closed(Exception):
    pass


async def next_reply(ws: ClientConnection) -> dict[str, Any]:
    """The next event that answers a message (transcripts and commits flow meanwhile)."""
    while True:
        try:
            raw = await asyncio.wait_for(ws.recv(), REPLY_WAIT_S)
        except ConnectionClosed:
            raise Closed() from None
        event = checked_event(json.loads(raw))
        if event["event"] == "error":
            assert event["code"] in CODES, event
        if event["event"] not in ("transcript", "audio_committed"):
            return event


async def await_close(ws: ClientConnection) -> int | None:
    try:
        while True:
            await next_reply(ws)
    except Closed:
        return ws.close_code


async def check_reply(ws: ClientConnection, kind: str, payload: Any, expect: Expect) -> str:
    """Read the answer to one message and check it against `expect`: "open" (the
    connection goes on), "started", or "ended" (it closed as PROTOCOL.md says)."""
    if not expect.codes and not expect.started and not expect.stopped:
        assert await await_close(ws) in expect.close, kind  # a close alone is the answer
        return "ended"
    try:
        reply = await next_reply(ws)
    except Closed:
        assert ws.close_code in expect.close, (kind, ws.close_code)
        return "ended"
    if expect.optional:
        # A config valid by the schema that the speech backend may refuse (at once, or
        # just after transcription_started): either way this connection ends here.
        if reply["event"] == "error":
            assert reply["code"] in {"invalid_config", "backend_error"}, reply
            assert await await_close(ws) in DOCUMENTED_CLOSES
        else:
            assert reply["event"] == "transcription_started", reply
        return "ended"
    if expect.started:
        assert reply["event"] == "transcription_started", (payload, reply)
        return "started"
    if expect.stopped:
        assert reply["event"] == "transcription_stopped", reply
        assert await await_close(ws) == 1000
        return "ended"
    assert reply["event"] == "error", (kind, reply)
    assert reply["code"] in expect.codes, (kind, payload, reply)
    if expect.close:
        assert await await_close(ws) in expect.close, kind
        return "ended"
    return "open"


async def run_sequence(base: str, sequence: list[Message]) -> None:
    started = False
    async with await open_ws(base, new_id()) as ws:
        for kind, payload in sequence:
            expect = expectation(kind, payload, started)
            data = encode(kind, payload)
            try:
                await ws.send(data, text=True) if kind == "not_utf8" else await ws.send(data)
            except ConnectionClosed:
                # Closed while this frame was still going out (a frame over uvicorn's limit).
                assert expect is not None, kind
                assert ws.close_code in expect.close, (kind, ws.close_code)
                return
            if expect is None:
                continue
            outcome = await check_reply(ws, kind, payload, expect)
            if outcome == "ended":
                return
            started = started or outcome == "started"
        if started:
            await ws.send(json.dumps({"type": "stop_transcription"}))
            reply = await next_reply(ws)
            assert reply["event"] == "transcription_stopped", reply
            assert await await_close(ws) == 1000


async def run_hijack(base: str, session_id: str | None, token: str) -> None:
    """A resume of the normal session with a garbage token: refused, and the session
    streams on (its transcript is checked at the end)."""
    async with await open_ws(base, session_id or new_id()) as ws:
        await ws.send(json.dumps({"type": "resume_transcription", "resume_token": token}))
        reply = await next_reply(ws)
        assert reply["event"] == "error", reply
        assert reply["code"] in {"unauthorized", "session_not_found"}, reply
        assert await await_close(ws) == 1008


async def run_bad_id(base: str, bad: str) -> None:
    with pytest.raises(InvalidStatus) as info:
        await open_ws(base, bad)
    assert info.value.response.status_code == 400


class NormalSessions:
    """goforward streamed at real-time pace, session after session, in a thread of its own
    while the fuzz runs; each run's finals are kept for the end."""

    def __init__(self, base: str) -> None:
        self._base = base
        self._stop = threading.Event()
        self.current: str | None = None
        self.finals: list[list[str]] = []
        self.failure: BaseException | None = None
        self._thread = threading.Thread(target=lambda: asyncio.run(self._loop()), daemon=True)

    def __enter__(self) -> NormalSessions:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(120)

    async def _loop(self) -> None:
        try:
            while not self._stop.is_set():
                self.current = new_id()
                run = await stream_session(
                    self._base, self.current, frames(goforward(), FRAME_100MS),
                    frame_interval_s=0.1,
                )  # fmt: skip
                assert run.close_code == 1000, run.events[-3:]
                self.finals.append(run.final_texts)
        except BaseException as exc:  # reported by the test
            self.failure = exc


@settings(
    max_examples=300,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(connection=connections)
def _fuzz_one(base: str, normal: NormalSessions, connection: tuple[str, Any]) -> None:
    note(f"connection: {connection!r}")
    kind, payload = connection
    if kind == "sequence":
        asyncio.run(run_sequence(base, payload))
    elif kind == "hijack":
        asyncio.run(run_hijack(base, normal.current, payload))
    else:
        asyncio.run(run_bad_id(base, payload))


def test_fuzzed_protocol_while_a_normal_session_streams(gateway: Proc, base: str) -> None:
    offset = gateway.log.stat().st_size
    with NormalSessions(base) as normal:
        _fuzz_one(base, normal)
    assert normal.failure is None, repr(normal.failure)
    assert normal.finals, "no normal session completed during the fuzz"
    assert all(finals == GOFORWARD_TEXT for finals in normal.finals), normal.finals
    # Never crashed, still healthy, and no error logged for any of it.
    assert gateway.alive()
    assert http_get(f"http://127.0.0.1:{gateway.port}/api/v1/health/live")[0] == 200
    assert http_get(f"http://127.0.0.1:{gateway.port}/api/v1/health/ready")[0] == 200
    assert error_lines(log_since(gateway, offset)) == []


# ---- the OpenAI-compatible socket ------------------------------------------------------

openai_types = st.sampled_from(
    ["session.update", "transcription_session.update", "input_audio_buffer.append",
     "input_audio_buffer.commit", "input_audio_buffer.clear", "input_audio_buffer.done",
     "response.create", ""]
)  # fmt: skip
openai_events = st.one_of(
    st.fixed_dictionaries(
        {"type": openai_types},
        optional={"session": json_values, "audio": json_values, "runtime_config": json_values},
    ).map(json.dumps),
    json_values.map(json.dumps),
    st.text(max_size=40),
)


async def run_realtime(port: int, sequence: list[str], not_utf8: bool) -> None:
    url = f"ws://127.0.0.1:{port}/v1/realtime?intent=transcription"
    async with connect(url, compression=None, max_size=None, open_timeout=10) as ws:
        received = [json.loads(await asyncio.wait_for(ws.recv(), REPLY_WAIT_S))]
        for text in sequence:
            await ws.send(text)
        if not_utf8:
            await ws.send(b"\xff", text=True)
        else:
            await ws.send(json.dumps({"type": "input_audio_buffer.clear"}))
        try:
            async with asyncio.timeout(REPLY_WAIT_S):
                async for raw in ws:
                    received.append(json.loads(raw))
                    # The sequence may hold a clear of its own: with a bad frame at the
                    # end, read on until the close.
                    if not not_utf8 and received[-1]["type"] == "input_audio_buffer.cleared":
                        break
        except ConnectionClosed:
            pass
    errors = [e["error"] for e in received if e["type"] == "error"]
    # The client's mistakes are its own: never a server error (an exception in the
    # gateway), never a close for an internal error.
    assert all(e["type"] == "invalid_request_error" for e in errors), errors
    # Only an `input_audio_buffer.done` (the end of the audio) may end the socket first.
    done = any('"input_audio_buffer.done"' in text for text in sequence)
    if done and ws.close_code == 1000:
        return
    if not_utf8:
        assert [e["code"] for e in errors][-1:] == ["invalid_event"], errors
        assert ws.close_code == 1008
    else:
        assert received[-1]["type"] == "input_audio_buffer.cleared", received[-3:]


@settings(
    max_examples=60,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(sequence=st.lists(openai_events, max_size=6), not_utf8=st.booleans())
def test_fuzzed_realtime_events_are_client_errors_never_server_errors(
    gateway: Proc, sequence: list[str], not_utf8: bool
) -> None:
    note(f"sequence: {sequence!r}, not_utf8: {not_utf8}")
    offset = gateway.log.stat().st_size
    asyncio.run(run_realtime(gateway.port, sequence, not_utf8))
    assert error_lines(log_since(gateway, offset)) == []


def test_no_session_left_running_after_the_fuzz(gateway: Proc) -> None:
    poll_until(
        lambda: metric(gateway, "gateway_sessions_active") == 0.0,
        IDLE_TIMEOUT_S + 10,
        "every fuzzed session to end",
    )
