"""Errors that help and leak nothing: fixed texts for clients, credentials never in a log
line, a PROTOCOL.md code on an unexpected 500 (no server needed)."""

from __future__ import annotations

import json
import logging
from typing import Any

import grpc
import pytest
from fastapi import FastAPI

from gateway.api.errors import install_error_handlers
from gateway.api.ws_protocol import NOT_UTF8, invalid_text_reply
from gateway.config import Settings
from gateway.observability.logs import JsonFormatter, RedactSecrets, redact
from gateway.protocol import CloseCode
from gateway.sessions.failures import backend_error

INTERNAL = "ipv4:10.12.0.7:50051: Failed to connect to remote host: Connection refused"


def rpc_error(code: grpc.StatusCode, details: str) -> grpc.aio.AioRpcError:
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(), details)


@pytest.mark.parametrize(
    "text",
    [
        '127.0.0.1:5 - "WebSocket /api/v1/transcribe/abcdefgh?access_token=eyJhbGc.eyJz.sig" 101',
        "GET /v1/realtime?intent=transcription&access_token=sk-live-123 HTTP/1.1",
        "authorization: Bearer sk-live-123",
        "Sec-WebSocket-Protocol: realtime, realtime-token.sk-live-123",
        "Sec-WebSocket-Protocol: bearer.sk-live-123",
        '{"resume_token": "sk-live-123"}',
        "api_key=sk-live-123",
    ],
)
def test_credentials_are_redacted(text: str) -> None:
    cleaned = redact(text)
    assert "sk-live-123" not in cleaned
    assert "eyJz" not in cleaned
    assert "[redacted]" in cleaned


def test_text_without_credentials_is_left_alone() -> None:
    line = '127.0.0.1:5 - "WebSocket /api/v1/transcribe/abcdefgh?intent=x" [accepted]'
    assert redact(line) == line


def test_the_filter_rewrites_a_record_before_any_handler_formats_it() -> None:
    record = logging.LogRecord(
        "uvicorn.error", logging.INFO, __file__, 1,
        '%s - "WebSocket %s" [accepted]', ("127.0.0.1:5", "/x?access_token=sk-live-123"), None,
    )  # fmt: skip
    assert RedactSecrets().filter(record)
    line = JsonFormatter(pod="p").format(record)
    assert "sk-live-123" not in line
    assert json.loads(line)["message"].endswith('access_token=[redacted]" [accepted]')


def test_the_riva_api_key_is_never_printed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RIVA__API_KEY", "nvapi-secret-42")
    settings = Settings()
    assert settings.riva.api_key is not None
    assert "nvapi-secret-42" not in repr(settings)
    assert "nvapi-secret-42" not in str(settings.model_dump())


def test_backend_failures_give_fixed_texts_and_log_the_details(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="gateway.sessions.failures"):
        unavailable = backend_error(rpc_error(grpc.StatusCode.UNAVAILABLE, INTERNAL))
        internal = backend_error(rpc_error(grpc.StatusCode.INTERNAL, INTERNAL))
    assert unavailable.code.value == "backend_unavailable"
    assert unavailable.close_code is CloseCode.TRY_AGAIN_LATER
    assert internal.code.value == "backend_error"
    for error in (unavailable, internal):
        assert "10.12.0.7" not in json.dumps(error.event())
    assert sum(INTERNAL in r.getMessage() for r in caplog.records) == 2


def test_a_rejected_configuration_keeps_the_backends_reason_bounded() -> None:
    error = backend_error(rpc_error(grpc.StatusCode.INVALID_ARGUMENT, "flac not supported" * 50))
    assert error.code.value == "invalid_config"
    assert "flac not supported" in error.message
    assert len(error.message) < 300


def test_the_invalid_utf8_reply_speaks_each_endpoints_protocol() -> None:
    native = json.loads(invalid_text_reply("/api/v1/transcribe/abcdefgh"))
    assert native == {
        "event": "error", "code": "invalid_message", "message": NOT_UTF8, "retryable": False,
    }  # fmt: skip
    openai = json.loads(invalid_text_reply("/v1/realtime"))
    assert openai["type"] == "error"
    assert openai["error"]["code"] == "invalid_event"


async def _call(app: FastAPI, path: str) -> tuple[int, bytes]:
    scope: dict[str, Any] = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
        "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"",
        "root_path": "", "headers": [], "client": ("127.0.0.1", 5), "server": ("127.0.0.1", 80),
    }  # fmt: skip
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    # Starlette answers, then re-raises for the server to log (once, with its traceback).
    with pytest.raises(RuntimeError, match=r"10\.12\.0\.7"):
        await app(scope, receive, send)
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return sent[0]["status"], body


async def test_an_unexpected_exception_is_a_500_with_a_code_and_no_details() -> None:
    app = FastAPI()

    async def boom() -> None:
        raise RuntimeError(f"redis at {INTERNAL}")

    app.add_api_route("/boom", boom)
    install_error_handlers(app)
    status, body = await _call(app, "/boom")
    assert status == 500
    assert json.loads(body) == {"code": "internal_error", "detail": "internal error"}
