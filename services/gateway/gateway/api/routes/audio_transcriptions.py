"""`POST /v1/audio/transcriptions` in the shape of OpenAI's audio API, so that its SDKs
work with `base_url` set to the fleet; backed by Riva's offline `Recognize`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Literal

import grpc
import orjson
from fastapi import APIRouter, Depends, File, Form, UploadFile
from fastapi.responses import PlainTextResponse, Response, StreamingResponse

from gateway.api.authn import get_principal
from gateway.api.deps import ServiceDep, SettingsDep
from gateway.backends.riva import auth_metadata
from gateway.config import Settings
from gateway.files.admission import JobSlots, ReleasingStream, get_job_slots
from gateway.files.decode import AudioTooLong, UnsupportedAudio
from gateway.files.openai_format import (
    json_body,
    openai_error,
    riva_language,
    riva_model,
    verbose_json_body,
)
from gateway.files.pipeline import FileTranscription
from gateway.files.recognize import ChunkRecognizer, RecognizeFailed, recognition_config
from gateway.files.subtitles import to_srt, to_vtt
from gateway.sessions.service import SessionService

router = APIRouter(prefix="/v1/audio", tags=["openai"])

ResponseFormat = Literal["json", "text", "srt", "vtt", "verbose_json"]


def _sse(event: dict[str, object]) -> bytes:
    return b"data: " + orjson.dumps(event) + b"\n\n"


@router.post("/transcriptions", response_model=None, dependencies=[Depends(get_principal)])
async def create_transcription(
    service: ServiceDep,
    settings: SettingsDep,
    file: Annotated[UploadFile, File(description="WAV, FLAC, MP3 or Ogg audio")],
    model: Annotated[str, Form(description="a Riva model, or an OpenAI name: the default")],
    slots: Annotated[JobSlots, Depends(get_job_slots)],
    language: Annotated[str | None, Form()] = None,
    prompt: Annotated[str | None, Form(description="accepted and ignored")] = None,
    response_format: Annotated[ResponseFormat, Form()] = "json",
    temperature: Annotated[float | None, Form(description="accepted and ignored")] = None,
    timestamp_granularities: Annotated[
        list[Literal["word", "segment"]] | None, Form(alias="timestamp_granularities[]")
    ] = None,
    stream: Annotated[bool, Form()] = False,
) -> Response:
    """Transcribe an audio file: JSON, text, SRT, WebVTT or verbose JSON (segment and
    word times), or with `stream=true` server-sent `transcript.text.delta` events and a
    final `transcript.text.done`."""
    limits = settings.files
    if file.size is not None and file.size > limits.max_bytes:
        return openai_error(
            413,
            f"the file is {file.size} bytes; the limit is {limits.max_bytes}",
            param="file",
            code="file_too_large",
        )
    if stream and response_format not in ("json", "text"):
        return openai_error(
            400,
            "stream=true gives transcript.text events: use response_format json or text",
            param="stream",
            code="unsupported_value",
        )
    if not slots.try_acquire():
        return openai_error(
            429,
            f"{slots.limit} file transcriptions are running here: try again shortly",
            param=None,
            code="too_many_requests",
        )
    streaming = False
    try:
        response = await _transcribe(
            file,
            model,
            language,
            response_format,
            timestamp_granularities,
            stream,
            service,
            settings,
            slots,
        )
        streaming = isinstance(response, StreamingResponse)
        return response
    finally:
        if not streaming:  # a stream releases its slot when it ends
            slots.release()


async def _transcribe(
    file: UploadFile,
    model: str,
    language: str | None,
    response_format: ResponseFormat,
    timestamp_granularities: list[Literal["word", "segment"]] | None,
    stream: bool,
    service: SessionService,
    settings: Settings,
    slots: JobSlots,
) -> Response:
    limits = settings.files
    riva_code = riva_language(language)
    recognizer = ChunkRecognizer(
        service.backend,
        recognition_config(riva_code, riva_model(model)),
        auth_metadata(settings.riva),
        timeout_s=limits.recognize_timeout_s,
    )
    job = FileTranscription(file.file, recognizer, limits, riva_code)
    try:
        await job.open()
        if stream:
            events = ReleasingStream(_stream_events(job), slots)
            return StreamingResponse(events, media_type="text/event-stream")
        transcript = await job.run()
    except UnsupportedAudio as exc:
        return openai_error(400, str(exc), param="file", code="invalid_audio")
    except AudioTooLong as exc:
        return openai_error(400, str(exc), param="file", code="audio_too_long")
    except RecognizeFailed as exc:
        if exc.status == grpc.StatusCode.INVALID_ARGUMENT:
            # The model or language the client named: its mistake, with the backend's reason.
            message = f"the speech backend rejected the request: {exc.detail[:200]}"
            return openai_error(400, message, param=None, code="unsupported_value")
        return openai_error(502, str(exc), param=None, code="backend_error")
    granularities: set[str] = set(timestamp_granularities or ())
    if response_format == "text":
        return PlainTextResponse(transcript.text + "\n")
    if response_format == "srt":
        return PlainTextResponse(to_srt(transcript))
    if response_format == "vtt":
        return PlainTextResponse(to_vtt(transcript), media_type="text/vtt")
    if response_format == "verbose_json":
        body = verbose_json_body(transcript, granularities)
        return Response(orjson.dumps(body), media_type="application/json")
    return Response(orjson.dumps(json_body(transcript)), media_type="application/json")


async def _stream_events(job: FileTranscription) -> AsyncIterator[bytes]:
    first = True
    try:
        async for segment in job.segments():
            delta = segment.text if first else " " + segment.text
            yield _sse({"type": "transcript.text.delta", "delta": delta})
            first = False
    except (AudioTooLong, UnsupportedAudio, RecognizeFailed) as exc:
        yield _sse({"type": "error", "error": {"message": str(exc), "type": "server_error"}})
        return
    yield _sse({"type": "transcript.text.done", "text": job.transcript.text})
