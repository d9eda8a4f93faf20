"""Why a caller is turned away, as the HTTP status and text it gets before any upgrade."""

from __future__ import annotations

from gateway.protocol import ErrorCode


class AuthRefused(Exception):
    """401: no credential, or one that does not check out (unknown, expired, wrong issuer
    or audience); 403: a valid credential that may not do this (a session token for
    another session id). The message names the reason, never the credential."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason

    @property
    def body(self) -> str:
        # PROTOCOL.md's code first, as every refusal before the upgrade does.
        return f"{ErrorCode.UNAUTHORIZED.value}: {self.reason}"


class AuthConfigError(Exception):
    """The settings cannot authenticate anyone: the gateway refuses to start."""


def unauthorized(reason: str) -> AuthRefused:
    return AuthRefused(401, reason)


def forbidden(reason: str) -> AuthRefused:
    return AuthRefused(403, reason)
