"""Client SDK and CLI for the speech gateway's WebSocket protocol (PROTOCOL.md v1)."""
