"""Riva's `RivaSpeechRecognition` service over whichever engine this server runs.

A thin edge: validate, admit, hand audio to the engine, map results to protobuf. Engines
that really decode run on the decode executor, never on the event loop.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import Executor, Future
from typing import Any, NoReturn, TypeVar

import grpc
from opentelemetry.trace import Span
from riva.client.proto import riva_asr_pb2 as asr
from riva.client.proto import riva_asr_pb2_grpc as asr_grpc

from asr_cpu import metrics, tracing
from asr_cpu.engines import Engine, StreamRecognizer
from asr_cpu.results import Result, to_batch_result, to_streaming_result
from asr_cpu.stream_config import (
    ConfigError,
    StreamSettings,
    check_audio_chunk,
    parse_recognition_config,
)

log = logging.getLogger("asr_cpu.streams")
T = TypeVar("T")


class StreamLimiter:
    """Counts streams and batch calls in flight; beyond the cap: RESOURCE_EXHAUSTED."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.active = 0

    def try_acquire(self) -> bool:
        if self.active >= self.limit:
            metrics.ERRORS.labels("RESOURCE_EXHAUSTED").inc()
            return False
        self.active += 1
        metrics.STREAMS_ACTIVE.set(self.active)
        return True

    def release(self) -> None:
        self.active -= 1
        metrics.STREAMS_ACTIVE.set(self.active)


class _EngineCalls:
    """Runs one stream's engine calls in order, on the executor when the engine blocks.

    A cancelled await does not stop a call already running on a thread, so `close`
    waits for that call to finish before the recognizer gives its decoders back.
    """

    def __init__(self, executor: Executor, blocking: bool) -> None:
        self._executor = executor
        self._blocking = blocking
        self._in_flight: Future[Any] | None = None

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        if not self._blocking:
            return fn(*args)
        future = self._executor.submit(fn, *args)
        self._in_flight = future
        return await asyncio.wrap_future(future)

    def close(self, recognizer: StreamRecognizer) -> None:
        in_flight = self._in_flight
        if in_flight is not None and not in_flight.done():
            in_flight.add_done_callback(lambda _: recognizer.close())
        else:
            recognizer.close()


async def _released_when_idle(
    requests: AsyncIterator[asr.StreamingRecognizeRequest], idle_s: float
) -> AsyncIterator[asr.StreamingRecognizeRequest]:
    """The requests, until none came for `idle_s` (0: no limit). Riva ends streams that
    get no audio for a while (60 s in NVIDIA's ASR NIM); this lets tests meet that."""
    if not idle_s:
        async for request in requests:
            yield request
        return
    iterator = aiter(requests)
    while True:
        try:
            request = await asyncio.wait_for(anext(iterator), idle_s)
        except StopAsyncIteration:
            return
        except TimeoutError:
            log.info("stream released: no request for %.1f s", idle_s)
            return
        yield request


async def _abort(
    context: grpc.aio.ServicerContext[Any, Any], code: grpc.StatusCode, msg: str
) -> NoReturn:
    await context.abort(code, msg)
    raise AssertionError("unreachable: abort raises")


class RivaAsrServicer(asr_grpc.RivaSpeechRecognitionServicer):  # type: ignore[misc]
    def __init__(
        self, engine: Engine, executor: Executor, max_streams: int, idle_release_s: float = 0.0
    ) -> None:
        self._engine = engine
        self._executor = executor
        self.limiter = StreamLimiter(max_streams)
        self._ids = itertools.count(1)
        self._idle_release_s = idle_release_s

    def _settings(self, config: asr.RecognitionConfig, interim: bool) -> StreamSettings:
        return parse_recognition_config(
            config, interim_results=interim, model_names=(self._engine.model_name,)
        )

    async def StreamingRecognize(
        self,
        request_iterator: AsyncIterator[asr.StreamingRecognizeRequest],
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> AsyncIterator[asr.StreamingRecognizeResponse]:
        if not self.limiter.try_acquire():
            await _abort(
                context,
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"server at capacity ({self.limiter.limit} concurrent streams)",
            )
        span = tracing.start_stream_span(context)
        try:
            async for response in self._stream(request_iterator, context, span):
                yield response
        finally:
            self.limiter.release()
            span.end()

    async def _stream(
        self,
        requests: AsyncIterator[asr.StreamingRecognizeRequest],
        context: grpc.aio.ServicerContext[Any, Any],
        span: Span,
    ) -> AsyncIterator[asr.StreamingRecognizeResponse]:
        invalid = grpc.StatusCode.INVALID_ARGUMENT
        first = await anext(aiter(requests), None)
        if first is None or not first.HasField("streaming_config"):
            await _abort(context, invalid, "the first request must carry streaming_config")
        streaming = first.streaming_config
        calls = _EngineCalls(self._executor, self._engine.blocking)
        try:
            settings = self._settings(streaming.config, streaming.interim_results)
            recognizer = await calls.run(self._engine.open_stream, settings)
        except ConfigError as exc:
            await _abort(context, invalid, str(exc))
        stream_id = next(self._ids)
        started = time.monotonic()
        received = finals = 0
        decode_s = 0.0
        outcome = "cancelled"
        log.info(
            "stream %d start peer=%s %s %d Hz x%d interim=%s",
            stream_id, context.peer(), settings.encoding.value, settings.sample_rate,
            settings.channels, settings.interim_results,
        )  # fmt: skip
        try:
            results: list[Result] = []
            async for request in _released_when_idle(requests, self._idle_release_s):
                if request.HasField("streaming_config"):
                    raise ConfigError("streaming_config may only be sent in the first request")
                chunk = request.audio_content
                if not chunk:
                    continue
                check_audio_chunk(settings, chunk)
                received += len(chunk)
                fed = time.perf_counter()
                results = await calls.run(recognizer.feed, chunk)
                decode_s += time.perf_counter() - fed
                if results:
                    finals += sum(r.is_final for r in results)
                    yield _response(results)
            fed = time.perf_counter()
            results = await calls.run(recognizer.finish)
            decode_s += time.perf_counter() - fed
            if results:
                finals += sum(r.is_final for r in results)
                yield _response(results)
            outcome = "ok"
        except ConfigError as exc:
            outcome = f"invalid: {exc}"
            metrics.ERRORS.labels("INVALID_ARGUMENT").inc()
            await _abort(context, invalid, str(exc))
        except Exception:
            outcome = "error"
            metrics.ERRORS.labels("INTERNAL").inc()
            log.exception("stream %d failed", stream_id)
            await _abort(context, grpc.StatusCode.INTERNAL, "recognition failed")
        finally:
            calls.close(recognizer)
            audio_s = received / settings.bytes_per_frame / settings.sample_rate
            metrics.stream_ended(outcome.partition(":")[0], audio_s, decode_s)
            tracing.end_stream_span(span, outcome.partition(":")[0], audio_s, finals)
            log.info(
                "stream %d end %s audio=%.2fs finals=%d wall=%.2fs",
                stream_id, outcome, audio_s, finals, time.monotonic() - started,
            )  # fmt: skip

    async def Recognize(
        self, request: asr.RecognizeRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> asr.RecognizeResponse:
        if not self.limiter.try_acquire():
            await _abort(
                context,
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"server at capacity ({self.limiter.limit} concurrent streams)",
            )
        try:
            settings = self._settings(request.config, interim=False)
            check_audio_chunk(settings, request.audio)
            calls = _EngineCalls(self._executor, self._engine.blocking)
            results = await calls.run(self._recognize_all, settings, request.audio)
        except ConfigError as exc:
            await _abort(context, grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        finally:
            self.limiter.release()
        return asr.RecognizeResponse(results=[to_batch_result(r) for r in results])

    def _recognize_all(self, settings: StreamSettings, audio: bytes) -> list[Result]:
        recognizer = self._engine.open_stream(settings)
        try:
            return [r for r in recognizer.feed(audio) + recognizer.finish() if r.is_final]
        finally:
            recognizer.close()

    async def GetRivaSpeechRecognitionConfig(
        self,
        request: asr.RivaSpeechRecognitionConfigRequest,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> asr.RivaSpeechRecognitionConfigResponse:
        name = self._engine.model_name
        if request.model_name and request.model_name != name:
            return asr.RivaSpeechRecognitionConfigResponse()
        config = asr.RivaSpeechRecognitionConfigResponse.Config(
            model_name=name, parameters=self._engine.describe()
        )
        return asr.RivaSpeechRecognitionConfigResponse(model_config=[config])


def _response(results: list[Result]) -> asr.StreamingRecognizeResponse:
    return asr.StreamingRecognizeResponse(results=[to_streaming_result(r) for r in results])
