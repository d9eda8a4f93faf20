"""OpenAI's realtime transcription WebSocket, as an adapter onto the session service."""
