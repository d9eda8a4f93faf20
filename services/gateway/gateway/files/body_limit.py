"""Refusing an upload past the size limit while it arrives, before it is spooled whole to
disk: by its Content-Length at once, or by counting a chunked body."""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.files.openai_format import openai_error

# Room for the multipart envelope and the form's other fields around the file.
ENVELOPE_BYTES = 64 * 1024


class BodyTooLarge(HTTPException):
    """Raised from inside the body's parsing, which lets an HTTPException through as is."""

    def __init__(self, max_bytes: int) -> None:
        super().__init__(413, f"file_too_large: the upload is larger than {max_bytes} bytes")


class UploadLimit:
    """ASGI middleware for HTTP requests under `path_prefix`; everything else (the
    WebSockets included) passes through untouched, with no per-message cost."""

    def __init__(self, app: ASGIApp, *, path_prefix: str, max_bytes: int) -> None:
        self.app = app
        self.path_prefix = path_prefix
        self.limit = max_bytes + ENVELOPE_BYTES
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(self.path_prefix):
            await self.app(scope, receive, send)
            return
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.limit:
            await self._refuse(scope, receive, send)
            return
        received = 0
        started = False

        async def counted_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise BodyTooLarge(self.max_bytes)
            return message

        async def tracked_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted_receive, tracked_send)
        except BodyTooLarge:
            if not started:
                await self._refuse(scope, receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = openai_error(
            413,
            f"the upload is larger than the limit of {self.max_bytes} bytes",
            param="file",
            code="file_too_large",
        )
        await response(scope, receive, send)
