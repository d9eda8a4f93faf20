"""The protocol as published documents: its JSON Schema and an AsyncAPI description."""
