"""The published protocol documents: generated from the models, complete, and current."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from jsonschema import Draft202012Validator

from gateway.protocol import (
    AudioCommitted,
    ErrorCode,
    ErrorEvent,
    StartTranscription,
    TranscriptionConfig,
    TranscriptionStarted,
)
from gateway.published.asyncapi import asyncapi_document
from gateway.published.schema import protocol_schema
from tests.support.protocol_schema import direction_validator

REPO = Path(__file__).resolve().parents[3]
CLIENT_TYPES = {
    "start_transcription",
    "resume_transcription",
    "finalize",
    "keepalive",
    "stop_transcription",
}
SERVER_EVENTS = {
    "transcription_started",
    "transcription_resumed",
    "transcript",
    "audio_committed",
    "reconnect",
    "error",
    "transcription_stopped",
}


def test_schema_is_valid_draft_2020_12_and_names_every_message() -> None:
    schema = protocol_schema()
    Draft202012Validator.check_schema(schema)
    client = schema["$defs"]["ClientMessage"]["discriminator"]["mapping"]
    server = schema["$defs"]["ServerEvent"]["discriminator"]["mapping"]
    assert set(client) == CLIENT_TYPES
    assert set(server) == SERVER_EVENTS


def test_schema_accepts_what_the_models_produce() -> None:
    server = direction_validator(protocol_schema(), "ServerEvent")
    client = direction_validator(protocol_schema(), "ClientMessage")
    started = TranscriptionStarted(
        session_id="abcdefgh", resume_token="t", config=TranscriptionConfig()
    )
    server.validate(json.loads(started.model_dump_json()))
    server.validate(AudioCommitted(committed_ms=120).model_dump())
    client.validate(StartTranscription(type="start_transcription").model_dump(mode="json"))


@pytest.mark.parametrize(
    ("direction", "message"),
    [
        ("ClientMessage", {"type": "start_transcription", "config": {"sample_rate": 16000}}),
        ("ClientMessage", {"type": "dance"}),
        ("ClientMessage", {"type": "resume_transcription", "last_seq": 1}),
        ("ServerEvent", {"committed_ms": 5}),
        ("ServerEvent", {"event": "transcript", "seq": 0, "is_final": True}),
        ("ServerEvent", {"event": "error", "code": "oops", "message": "", "retryable": False}),
    ],
)
def test_schema_rejects_what_the_protocol_forbids(direction: str, message: dict[str, Any]) -> None:
    with pytest.raises(jsonschema.ValidationError):
        direction_validator(protocol_schema(), direction).validate(message)


def test_error_codes_in_the_schema_are_the_models() -> None:
    codes = protocol_schema()["$defs"]["ErrorCode"]["enum"]
    assert codes == [c.value for c in ErrorCode]
    direction_validator(protocol_schema(), "ServerEvent").validate(
        ErrorEvent(code=ErrorCode.RATE_LIMITED, message="m", retryable=True).model_dump(
            mode="json", exclude_none=True
        )
    )


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [r for v in node.values() for r in _refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in _refs(v)]
    return []


def _resolve(document: dict[str, Any], ref: str) -> Any:
    node: Any = document
    for part in ref.removeprefix("#/").split("/"):
        node = node[part]
    return node


def test_asyncapi_describes_every_message_and_every_ref_resolves() -> None:
    doc = asyncapi_document()
    assert doc["asyncapi"] == "3.0.0"
    channel = doc["channels"]["transcribe"]
    assert channel["address"] == "/api/v1/transcribe/{session_id}"
    assert set(channel["messages"]) == CLIENT_TYPES | SERVER_EVENTS | {"audio"}
    ops = doc["operations"]
    received = {r["$ref"].rsplit("/", 1)[1] for r in ops["receiveClientMessage"]["messages"]}
    sent = {r["$ref"].rsplit("/", 1)[1] for r in ops["sendServerEvent"]["messages"]}
    assert (received, sent) == (CLIENT_TYPES | {"audio"}, SERVER_EVENTS)
    refs = _refs(doc)
    assert refs
    for ref in refs:
        assert _resolve(doc, ref) is not None, ref
    # The payload schemas are the same as the published JSON Schema's.
    assert doc["components"]["schemas"]["TranscriptEvent"]["required"][0] == "event"


def test_committed_asyncapi_document_is_current() -> None:
    committed = json.loads((REPO / "docs" / "asyncapi.json").read_text())
    assert committed == asyncapi_document(), (
        "docs/asyncapi.json is stale: regenerate it with"
        " `.venv/bin/python -m gateway.published > docs/asyncapi.json`"
    )
