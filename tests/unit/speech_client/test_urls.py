from __future__ import annotations

import pytest

from speech_client.urls import session_url


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("ws://127.0.0.1:8080", "ws://127.0.0.1:8080/api/v1/transcribe/abcdefgh"),
        ("ws://127.0.0.1:8080/", "ws://127.0.0.1:8080/api/v1/transcribe/abcdefgh"),
        ("wss://h/speech/", "wss://h/speech/api/v1/transcribe/abcdefgh"),
        ("https://h?access_token=t", "wss://h/api/v1/transcribe/abcdefgh?access_token=t"),
        ("http://h:80", "ws://h:80/api/v1/transcribe/abcdefgh"),
    ],
)
def test_a_base_url_gets_the_transcribe_path(url: str, expected: str) -> None:
    assert session_url(url, "abcdefgh") == (expected, "abcdefgh")


def test_a_full_url_names_its_session() -> None:
    url = "ws://h/api/v1/transcribe/session-1"
    assert session_url(url, None) == (url, "session-1")
    assert session_url(url, "session-1") == (url, "session-1")


@pytest.mark.parametrize(
    ("url", "session_id"),
    [
        ("ws://h/api/v1/transcribe/session-1", "session-2"),  # two ids
        ("ws://h", "short"),
        ("ws://h", "bad id with spaces"),
        ("ws://h", None),
        ("ftp://h", "abcdefgh"),
        ("127.0.0.1:8080", "abcdefgh"),
    ],
)
def test_bad_urls_and_ids_are_refused(url: str, session_id: str | None) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - the message varies by case
        session_url(url, session_id)
