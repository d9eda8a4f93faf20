"""Fixtures for fixtures_asr (filled in by its owner)."""
