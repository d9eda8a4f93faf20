"""One JSON Schema document (draft 2020-12) for every message of protocol version 1,
generated from the Pydantic models in `gateway.protocol`, never written by hand.

`$defs.ClientMessage` is any text frame a client sends, `$defs.ServerEvent` any text
frame the gateway sends; the document itself accepts either. Each message type is also
a `$defs` entry of its own (`StartTranscription`, `TranscriptEvent`, ...).
"""

from __future__ import annotations

import copy
import functools
from typing import Any

from pydantic import TypeAdapter

from gateway.protocol import client_message_adapter, server_event_adapter

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
SCHEMA_ID = "urn:speech-fleet:protocol:v1"


def union_schema(
    adapter: TypeAdapter[Any], ref_prefix: str, *, tag_required: str | None = None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the union's own schema, the definitions it refers to), refs under `ref_prefix`.

    With `tag_required`, that field is made required in every member: the gateway always
    sends `event`, while the models give it a default so that code can omit it.
    """
    generated = adapter.json_schema(ref_template=ref_prefix + "{model}")
    defs: dict[str, Any] = generated.pop("$defs")
    if tag_required is not None:
        for ref in generated["discriminator"]["mapping"].values():
            member = defs[ref.removeprefix(ref_prefix)]
            required = member.setdefault("required", [])
            if tag_required not in required:
                required.insert(0, tag_required)
    return generated, defs


def merge_defs(*groups: dict[str, Any]) -> dict[str, Any]:
    """Union of definition groups; a name defined twice must mean the same thing."""
    merged: dict[str, Any] = {}
    for group in groups:
        for name, schema in group.items():
            if name in merged and merged[name] != schema:
                raise ValueError(f"two different schemas are both named {name}")
            merged[name] = schema
    return merged


def message_types(union: dict[str, Any], ref_prefix: str) -> dict[str, str]:
    """`type` or `event` value -> the definition name of its model."""
    mapping: dict[str, str] = union["discriminator"]["mapping"]
    return {tag: ref.removeprefix(ref_prefix) for tag, ref in mapping.items()}


@functools.cache
def _protocol_schema() -> dict[str, Any]:
    prefix = "#/$defs/"
    client, client_defs = union_schema(client_message_adapter, prefix)
    server, server_defs = union_schema(server_event_adapter, prefix, tag_required="event")
    defs = merge_defs(client_defs, server_defs)
    defs["ClientMessage"] = {"title": "ClientMessage", **client}
    defs["ServerEvent"] = {"title": "ServerEvent", **server}
    return {
        "$schema": SCHEMA_DIALECT,
        "$id": SCHEMA_ID,
        "title": "Speech streaming protocol, version 1",
        "description": (
            "Text frames of GET /api/v1/transcribe/{session_id}: ClientMessage from the"
            " client, ServerEvent from the gateway (docs/protocol.md). Audio travels in"
            " binary frames, outside this schema."
        ),
        "anyOf": [{"$ref": "#/$defs/ClientMessage"}, {"$ref": "#/$defs/ServerEvent"}],
        "$defs": defs,
    }


def protocol_schema() -> dict[str, Any]:
    """The JSON Schema document of protocol version 1 (a fresh copy: callers may edit)."""
    return copy.deepcopy(_protocol_schema())
