"""Fixtures for fixtures_fleet (filled in by its owner)."""
