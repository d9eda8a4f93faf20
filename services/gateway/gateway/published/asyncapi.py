"""An AsyncAPI 3.0 description of the WebSocket, the companion of FastAPI's OpenAPI one.

It describes the gateway: it receives the client's messages (and binary audio frames) and
sends events. Payload schemas are generated from `gateway.protocol`, as in `schema.py`.
"""

from __future__ import annotations

import copy
import functools
from typing import Any

from gateway.protocol import client_message_adapter, server_event_adapter
from gateway.published.schema import merge_defs, message_types, union_schema

ASYNCAPI_VERSION = "3.0.0"
_PREFIX = "#/components/schemas/"

_AUDIO_MESSAGE = {
    "name": "audio",
    "title": "Audio (binary frame)",
    "summary": "Raw audio in the session's configured encoding, in order; any frame size"
    " up to the gateway's limit (LIMITS__MAX_FRAME_BYTES).",
    "contentType": "application/octet-stream",
    "payload": {"type": "string", "format": "binary"},
}


def _messages(
    union: dict[str, Any], summaries: dict[str, str]
) -> tuple[dict[str, Any], list[dict[str, str]]]:
    messages: dict[str, Any] = {}
    refs: list[dict[str, str]] = []
    for tag, model in message_types(union, _PREFIX).items():
        messages[tag] = {
            "name": tag,
            "title": model,
            "summary": summaries.get(tag, ""),
            "contentType": "application/json",
            "payload": {"$ref": _PREFIX + model},
        }
        refs.append({"$ref": f"#/channels/transcribe/messages/{tag}"})
    return messages, refs


_CLIENT_SUMMARIES = {
    "start_transcription": "Begin a new session under this id.",
    "resume_transcription": "Re-attach to an existing session after a disconnect.",
    "finalize": "Force an endpoint now: the current utterance becomes final.",
    "keepalive": "No audio for a while, but keep the session.",
    "stop_transcription": "No more audio: flush, send the last finals, then transcription_stopped.",
}
_SERVER_SUMMARIES = {
    "transcription_started": "After a valid start_transcription.",
    "transcription_resumed": "After a valid resume_transcription.",
    "transcript": "Each interim and final result.",
    "audio_committed": "Audio up to committed_ms is covered by persisted finals.",
    "reconnect": "The pod is draining or the session must move: reconnect and resume.",
    "error": "A problem the client can act on.",
    "transcription_stopped": "After stop_transcription, once every final was sent.",
}


@functools.cache
def _asyncapi() -> dict[str, Any]:
    client, client_defs = union_schema(client_message_adapter, _PREFIX)
    server, server_defs = union_schema(server_event_adapter, _PREFIX, tag_required="event")
    client_messages, client_refs = _messages(client, _CLIENT_SUMMARIES)
    server_messages, server_refs = _messages(server, _SERVER_SUMMARIES)
    return {
        "asyncapi": ASYNCAPI_VERSION,
        "info": {
            "title": "Speech gateway streaming protocol",
            "version": "1",
            "description": "Live audio in over one WebSocket, interim and final transcripts"
            " out. The reference is docs/protocol.md; the JSON Schema of every text"
            " frame is served at /api/v1/protocol/schema.json.",
        },
        "servers": {
            "local": {
                "host": "127.0.0.1:8080",
                "protocol": "ws",
                "description": "The local fleet's NGINX (make up).",
            }
        },
        "defaultContentType": "application/json",
        "channels": {
            "transcribe": {
                "address": "/api/v1/transcribe/{session_id}",
                "title": "One transcription session",
                "parameters": {
                    "session_id": {
                        "description": "8 to 64 of [A-Za-z0-9_-], chosen by the client;"
                        " the key NGINX hashes for affinity and the session's key in Redis."
                    }
                },
                "messages": {**client_messages, "audio": _AUDIO_MESSAGE, **server_messages},
                "bindings": {
                    "ws": {
                        "method": "GET",
                        "query": {
                            "type": "object",
                            "properties": {
                                "access_token": {
                                    "type": "string",
                                    "description": "For browsers, which cannot set headers.",
                                }
                            },
                        },
                        "headers": {
                            "type": "object",
                            "properties": {
                                "Authorization": {"type": "string"},
                                "Origin": {"type": "string"},
                            },
                        },
                    }
                },
            }
        },
        "operations": {
            "receiveClientMessage": {
                "action": "receive",
                "channel": {"$ref": "#/channels/transcribe"},
                "summary": "Messages and audio the client sends.",
                "messages": [
                    *client_refs,
                    {"$ref": "#/channels/transcribe/messages/audio"},
                ],
            },
            "sendServerEvent": {
                "action": "send",
                "channel": {"$ref": "#/channels/transcribe"},
                "summary": "Events the gateway sends.",
                "messages": server_refs,
            },
        },
        "components": {"schemas": merge_defs(client_defs, server_defs)},
    }


def asyncapi_document() -> dict[str, Any]:
    """The AsyncAPI 3.0 document of the WebSocket (a fresh copy: callers may edit)."""
    return copy.deepcopy(_asyncapi())
