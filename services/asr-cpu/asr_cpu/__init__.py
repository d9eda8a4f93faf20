"""A CPU speech server speaking Riva's gRPC ASR API."""
