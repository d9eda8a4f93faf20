"""Traces, with an in-memory exporter: the gateway (uvicorn in this process) and the
synthetic speech server (its gRPC servicer in this process) against a real Redis. A
session yields its span and the children, and the speech server continues the trace."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc
import pytest
import uvicorn
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from riva.client.proto import riva_asr_pb2_grpc as asr_grpc

from asr_cpu.engines import create_engine
from asr_cpu.servicer import RivaAsrServicer
from asr_cpu.settings import parse_settings
from gateway.config import AuthSettings, RedisSettings, RivaSettings, Settings
from gateway.main import create_app
from tests.support.audio import silence
from tests.support.processes import free_port
from tests.support.ws import collect, frames, next_event, open_ws, start, stream_session

pytestmark = pytest.mark.integration

EXPORTER = InMemorySpanExporter()


@pytest.fixture(scope="module", autouse=True)
def tracer_provider() -> None:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(EXPORTER))
    trace.set_tracer_provider(provider)


@pytest.fixture
async def gateway_url(redis_url: str) -> AsyncIterator[str]:
    asr_port, gateway_port = free_port(), free_port()
    engine = create_engine(parse_settings(["--engine", "synthetic"], env={}))
    server = grpc.aio.server()
    with ThreadPoolExecutor(1) as executor:
        asr_grpc.add_RivaSpeechRecognitionServicer_to_server(
            RivaAsrServicer(engine, executor, 10), server
        )
        server.add_insecure_port(f"127.0.0.1:{asr_port}")
        await server.start()
        settings = Settings(
            redis=RedisSettings(url=redis_url),
            riva=RivaSettings(targets=[f"127.0.0.1:{asr_port}"]),
            auth=AuthSettings(required=False),
        )
        config = uvicorn.Config(
            create_app(settings),
            host="127.0.0.1",
            port=gateway_port,
            ws="websockets-sansio",
            lifespan="on",
            log_level="warning",
        )
        gateway = uvicorn.Server(config)
        serving = asyncio.create_task(gateway.serve())
        try:
            await eventually(lambda: gateway.started, 20)
            yield f"ws://127.0.0.1:{gateway_port}"
        finally:
            gateway.should_exit = True
            await serving
            await server.stop(0)


async def eventually(check: Callable[[], bool], within_s: float) -> None:
    async with asyncio.timeout(within_s):
        while True:
            if check():
                return
            await asyncio.sleep(0.02)


def spans_of(trace_id: int) -> list[ReadableSpan]:
    return [s for s in EXPORTER.get_finished_spans() if s.context.trace_id == trace_id]


def session_span(session_id: str) -> ReadableSpan:
    found = [
        s
        for s in EXPORTER.get_finished_spans()
        if s.name == "session" and s.attributes and s.attributes.get("session.id") == session_id
    ]
    assert len(found) == 1, found
    return found[0]


def named(spans: Sequence[ReadableSpan], name: str) -> list[ReadableSpan]:
    return [s for s in spans if s.name == name]


async def wait_for_span(session_id: str) -> ReadableSpan:
    async with asyncio.timeout(10):
        while True:
            try:
                return session_span(session_id)
            except AssertionError:
                await asyncio.sleep(0.05)


async def test_a_session_is_one_trace_continued_by_the_speech_server(gateway_url: str) -> None:
    audio = frames(silence(4000), 3200)  # 40 frames: two finals from the synthetic engine
    run = await stream_session(gateway_url, "trace-session-0001", audio)
    assert len(run.finals) == 2

    span = await wait_for_span("trace-session-0001")
    attributes: dict[str, Any] = dict(span.attributes or {})
    assert attributes["session.outcome"] == "stopped"
    assert attributes["session.resume_count"] == 0
    assert attributes["session.audio_seconds"] == pytest.approx(4.0)

    spans = spans_of(span.context.trace_id)
    streams = named(spans, "backend.stream")
    assert len(streams) == 1
    assert streams[0].parent is not None
    assert streams[0].parent.span_id == span.context.span_id
    # The speech server continued the trace: its span is the backend stream's child.
    served = named(spans, "asr.stream")
    assert len(served) == 1
    assert served[0].parent is not None
    assert served[0].parent.span_id == streams[0].context.span_id
    assert dict(served[0].attributes or {})["asr.audio_seconds"] == pytest.approx(4.0)
    redis_ops = {s.name for s in spans if s.name.startswith("redis ")}
    assert {"redis create", "redis append_finals", "redis set_state"} <= redis_ops
    # Nothing per frame: 40 frames, a handful of spans.
    assert len(spans) < 12


async def test_resume_and_takeover_are_events_on_the_session_spans(gateway_url: str) -> None:
    first = await open_ws(gateway_url, "trace-session-0002")
    started = await start(first)
    await first.send(silence(200))
    second = await open_ws(gateway_url, "trace-session-0002")
    await second.send(
        json.dumps({"type": "resume_transcription", "resume_token": started["resume_token"]})
    )
    assert (await next_event(second))["event"] == "transcription_resumed"
    taken = await collect(first, 10)
    assert [e["code"] for e in taken.of("error")] == ["session_taken_over"]
    await second.send(json.dumps({"type": "stop_transcription"}))
    await collect(second, 10)

    await eventually(lambda: len(named(EXPORTER.get_finished_spans(), "session")) >= 3, 10)
    spans = [
        s
        for s in named(EXPORTER.get_finished_spans(), "session")
        if (s.attributes or {}).get("session.id") == "trace-session-0002"
    ]
    assert len(spans) == 2
    by_events = {tuple(e.name for e in s.events): s for s in spans}
    assert set(by_events) == {("takeover",), ("resume",)}
    assert dict(by_events[("resume",)].attributes or {})["session.resume_count"] == 1
