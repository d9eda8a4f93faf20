"""Validating protocol messages against the published JSON Schema (with `jsonschema`)."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any

from jsonschema import Draft202012Validator


def direction_validator(schema: dict[str, Any], direction: str) -> Draft202012Validator:
    """A validator for one `$defs` entry of the document (`ClientMessage`, `ServerEvent`)."""
    document = {k: v for k, v in schema.items() if k != "anyOf"}
    document["$ref"] = f"#/$defs/{direction}"
    Draft202012Validator.check_schema(document)
    return Draft202012Validator(document)


@dataclass
class SchemaCheck:
    """Validates every text message a test sends and receives, and remembers their kinds."""

    schema: dict[str, Any]
    sent_types: set[str] = field(default_factory=set)
    received_events: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.client = direction_validator(self.schema, "ClientMessage")
        self.server = direction_validator(self.schema, "ServerEvent")

    def sent(self, message: dict[str, Any]) -> None:
        self.client.validate(message)
        self.sent_types.add(message["type"])

    def received(self, event: dict[str, Any]) -> None:
        self.server.validate(event)
        self.received_events.add(event["event"])


@functools.cache
def server_event_validator() -> Draft202012Validator:
    """The published schema's ServerEvent, as generated in this process (the gateway
    serves the same document: tests/integration/test_protocol_schema.py)."""
    from gateway.published.schema import protocol_schema

    return direction_validator(protocol_schema(), "ServerEvent")


def checked_event(event: dict[str, Any]) -> dict[str, Any]:
    """`event`, after checking it against the published schema."""
    server_event_validator().validate(event)
    return event
