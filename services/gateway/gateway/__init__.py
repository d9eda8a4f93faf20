"""Gateway: FastAPI WebSocket edge, session service, Redis store, Riva backends."""
