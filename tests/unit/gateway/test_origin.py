"""The origin check before the upgrade: the fleet's own page by default, a listed set when
configured, any page only with "*", and non-browser clients (no Origin) always."""

from __future__ import annotations

import pytest

from gateway.api.routes.transcribe import origin_allowed
from gateway.config import Settings


def test_the_default_is_the_fleets_own_page_only() -> None:
    assert Settings().server.allowed_origins == []


@pytest.mark.parametrize(
    ("origin", "host"),
    [
        ("http://127.0.0.1:8080", "127.0.0.1:8080"),
        ("http://localhost:8080", "LOCALHOST:8080"),
        # TLS ended by a proxy: the page is https, the gateway sees plain http.
        ("https://speech.example.com", "speech.example.com"),
    ],
)
def test_own_page_is_allowed_by_default(origin: str, host: str) -> None:
    assert origin_allowed(origin, [], host)


@pytest.mark.parametrize(
    ("origin", "host"),
    [
        ("https://evil.example", "speech.example.com"),
        ("http://127.0.0.1:9999", "127.0.0.1:8080"),  # another port is another origin
        ("http://speech.example.com.evil.example", "speech.example.com"),
        ("null", "speech.example.com"),  # sandboxed frames, file:// pages
        ("file://speech.example.com", "speech.example.com"),
        ("http://user@speech.example.com", "speech.example.com"),
        ("http://speech.example.com", None),
        ("", "speech.example.com"),
    ],
)
def test_foreign_pages_are_refused_by_default(origin: str, host: str | None) -> None:
    assert not origin_allowed(origin, [], host)


def test_a_configured_list_is_exact_and_replaces_the_own_page() -> None:
    allowed = ["https://app.example"]
    assert origin_allowed("https://app.example", allowed, "speech.example.com")
    assert not origin_allowed("https://evil.example", allowed, "speech.example.com")
    # With a list the Host does not count: a name rebound to the fleet's address
    # (DNS rebinding) gets no more than any foreign page.
    assert not origin_allowed("http://rebound.example:8080", allowed, "rebound.example:8080")


def test_star_is_the_explicit_opt_in_for_every_page() -> None:
    assert origin_allowed("https://anything.example", ["*"], "speech.example.com")


@pytest.mark.parametrize("allowed", [[], ["https://app.example"]])
def test_clients_without_origin_are_not_concerned(allowed: list[str]) -> None:
    assert origin_allowed(None, allowed, "speech.example.com")
