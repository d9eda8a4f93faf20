"""Shared fixtures. Each fixture module under tests/support owns one kind of process."""

pytest_plugins = [
    "tests.support.fixtures_redis",
    "tests.support.fixtures_asr",
    "tests.support.fixtures_fleet",
    "tests.support.fixtures_gateway",
]
