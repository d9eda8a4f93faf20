"""The WebSocket URL of a session."""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

SESSION_ID_RE = re.compile(r"[A-Za-z0-9_-]{8,64}")
DEFAULT_URL = "ws://127.0.0.1:8080"
TRANSCRIBE_PATH = "/api/v1/transcribe/"
_SCHEMES = {"ws": "ws", "wss": "wss", "http": "ws", "https": "wss"}


def check_session_id(session_id: str) -> str:
    if not SESSION_ID_RE.fullmatch(session_id):
        raise ValueError(f"invalid session id {session_id!r}: 8 to 64 characters of [A-Za-z0-9_-]")
    return session_id


def session_url(url: str, session_id: str | None) -> tuple[str, str]:
    """The full URL and the session id for `url`, a base or a full transcribe URL.

    A base (`ws://host:8080`, or with a path prefix behind a proxy) gets
    `/api/v1/transcribe/{session_id}` appended; a full URL names its own session, which
    `session_id` must then match or omit. http(s) is accepted for ws(s). Any query string
    (e.g. `access_token`) is kept.
    """
    parts = urlsplit(url)
    scheme = _SCHEMES.get(parts.scheme.lower())
    if scheme is None or not parts.netloc:
        raise ValueError(f"not a WebSocket URL: {url!r} (expected ws://host:port or wss://...)")
    path = parts.path
    if TRANSCRIBE_PATH in path:
        url_id = path.rsplit("/", 1)[-1]
        if session_id is not None and session_id != url_id:
            raise ValueError(f"session id {session_id!r} differs from the URL's {url_id!r}")
        session_id = url_id
    elif session_id is None:
        raise ValueError("a session id is needed with a base URL")
    else:
        path = path.rstrip("/") + TRANSCRIBE_PATH + session_id
    check_session_id(session_id)
    return urlunsplit((scheme, parts.netloc, path, parts.query, "")), session_id
