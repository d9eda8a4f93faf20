"""The OpenAI audio API's shapes: language codes in, JSON bodies and errors out."""

from __future__ import annotations

from typing import Any

from fastapi.responses import JSONResponse

from gateway.files.transcript import FileTranscript

# OpenAI takes ISO 639-1 codes ("en"); Riva takes BCP-47 with a region ("en-US").
_REGIONS = {
    "ar": "ar-AR", "de": "de-DE", "en": "en-US", "es": "es-US", "fr": "fr-FR",
    "hi": "hi-IN", "it": "it-IT", "ja": "ja-JP", "ko": "ko-KR", "nl": "nl-NL",
    "pt": "pt-BR", "ru": "ru-RU", "zh": "zh-CN",
}  # fmt: skip
_NAMES = {
    "ar": "arabic", "de": "german", "en": "english", "es": "spanish", "fr": "french",
    "hi": "hindi", "it": "italian", "ja": "japanese", "ko": "korean", "nl": "dutch",
    "pt": "portuguese", "ru": "russian", "zh": "chinese",
}  # fmt: skip
# OpenAI's model names mean "the backend's default model" here.
_OPENAI_MODELS = ("whisper-", "gpt-")


def riva_language(language: str | None) -> str:
    if not language:
        return "en-US"
    return _REGIONS.get(language.lower(), language)


def language_name(riva_code: str) -> str:
    """verbose_json names the language in English words, as OpenAI does."""
    return _NAMES.get(riva_code.split("-")[0].lower(), riva_code)


def riva_model(model: str) -> str:
    return "" if model.startswith(_OPENAI_MODELS) else model


def openai_error(status: int, message: str, *, param: str | None, code: str) -> JSONResponse:
    kind = "server_error" if status >= 500 else "invalid_request_error"
    body = {"error": {"message": message, "type": kind, "param": param, "code": code}}
    return JSONResponse(body, status_code=status)


def usage(transcript: FileTranscript) -> dict[str, Any]:
    return {"type": "duration", "seconds": round(transcript.duration, 3)}


def json_body(transcript: FileTranscript) -> dict[str, Any]:
    return {"text": transcript.text, "usage": usage(transcript)}


def verbose_json_body(transcript: FileTranscript, granularities: set[str]) -> dict[str, Any]:
    body: dict[str, Any] = {
        "task": "transcribe",
        "language": language_name(transcript.language),
        "duration": round(transcript.duration, 3),
        "text": transcript.text,
        "usage": usage(transcript),
    }
    # As OpenAI: segments unless only words were asked for.
    if "segment" in granularities or not granularities:
        body["segments"] = [
            {
                "id": s.id,
                "seek": 0,
                "start": round(s.start, 3),
                "end": round(s.end, 3),
                "text": s.text,
                "tokens": [],
                "temperature": 0.0,
                "avg_logprob": 0.0,
                "compression_ratio": 1.0,
                "no_speech_prob": 0.0,
            }
            for s in transcript.segments
        ]
    if "word" in granularities:
        body["words"] = [
            {"word": w.word, "start": round(w.start, 3), "end": round(w.end, 3)}
            for w in transcript.words
        ]
    return body
