"""How the load generator files a session's answer, from the bytes a server sends (no
server: the bytes are handed to the session's protocol object as its transport would):
HTTP 503 before the upgrade, or `capacity_exhausted` then close 1013, is a refusal with
its waiting time, not an error; anything else that ends a session early is an error, and
an admitted session that misses finals has lost them."""

from __future__ import annotations

import orjson

from bench import loadgen
from bench.ws_session import WsSession, http_status

SWITCHING = (
    b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Accept: x\r\n\r\n"
)


def server_text(obj: dict[str, object]) -> bytes:
    payload = orjson.dumps(obj)
    assert len(payload) < 126
    return bytes((0x81, len(payload))) + payload


def server_close(code: int) -> bytes:
    return bytes((0x88, 2)) + code.to_bytes(2, "big")


def _gen(streams: int = 1) -> loadgen.LoadGen:
    return loadgen.LoadGen(loadgen.parse_args(["--port", "9", "--streams", str(streams)]))


async def test_http_503_before_the_upgrade_is_a_refusal_with_its_wait() -> None:
    gen = _gen()
    session = WsSession(gen, 0, "/api/v1/transcribe/a")
    gen.sessions.append(session)
    session.data_received(b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\n")
    assert session.refused
    assert session.errors == []
    wait = session.refusal_ms()
    assert wait is not None
    assert wait >= 0
    session.connection_lost(None)  # the server closes: still a refusal, not an error
    assert session.errors == []
    result = gen.result(0.0, 1e12)
    assert result["refused"] == 1
    assert result["errors"] == 0
    assert result["streams_started"] == 0
    assert len(result["refusal_latencies_ms"]) == 1


async def test_capacity_exhausted_then_1013_is_a_refusal() -> None:
    gen = _gen()
    session = WsSession(gen, 0, "/api/v1/transcribe/b")
    gen.sessions.append(session)
    error = {"event": "error", "code": "capacity_exhausted", "retryable": True}
    session.data_received(SWITCHING + server_text({**error, "retry_after_s": 1.0}))
    session.data_received(server_close(1013))
    assert session.refused
    assert session.errors == []
    assert gen.result(0.0, 1e12)["refused"] == 1


async def test_a_bare_1013_before_the_start_is_a_refusal_too() -> None:
    gen = _gen()
    session = WsSession(gen, 0, "/api/v1/transcribe/c")
    gen.sessions.append(session)
    session.data_received(SWITCHING + server_close(1013))
    assert session.refused


async def test_other_answers_are_errors_not_refusals() -> None:
    gen = _gen(3)
    forbidden, other_error, reset = (WsSession(gen, i, f"/x/{i}") for i in range(3))
    gen.sessions.extend([forbidden, other_error, reset])
    forbidden.data_received(b"HTTP/1.1 403 Forbidden\r\n\r\n")
    other_error.data_received(SWITCHING + server_text({"event": "error", "code": "x"}))
    reset.data_received(SWITCHING)
    reset.connection_lost(ConnectionResetError())
    assert not any(s.refused for s in (forbidden, other_error, reset))
    assert forbidden.errors == ["handshake: HTTP/1.1 403 Forbidden"]
    assert other_error.errors == ["error x"]
    assert reset.errors[0].startswith("connection lost")
    result = gen.result(0.0, 1e12)
    assert (result["refused"], result["errors"]) == (0, 3)


async def test_an_admitted_session_that_misses_finals_has_lost_them() -> None:
    gen = _gen()
    session = WsSession(gen, 0, "/api/v1/transcribe/d")
    gen.sessions.append(session)
    session.data_received(SWITCHING + server_text({"event": "transcription_started"}))
    assert session.started
    session.sent_at = [float(i) / 10 for i in range(60)]  # 6 s of audio: 3 finals owed
    final = {"event": "transcript", "seq": 1, "is_final": True, "end_ms": 2000}
    session.data_received(server_text(final))
    # A capacity error after the start is no refusal: the session was admitted.
    session.data_received(server_text({"event": "error", "code": "capacity_exhausted"}))
    assert not session.refused
    result = gen.result(0.0, 1e12)
    assert result["finals_lost"] == 2
    assert result["errors"] == 1


def test_http_status_of_a_status_line() -> None:
    assert http_status(b"HTTP/1.1 503 Service Unavailable") == 503
    assert http_status(b"HTTP/1.1 101 Switching Protocols") == 101
    assert http_status(b"garbage") is None
