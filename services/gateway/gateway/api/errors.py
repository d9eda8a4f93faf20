"""What an HTTP client sees when a request fails: a PROTOCOL.md code and a fixed text,
never a traceback, an internal address or a Redis or gRPC error text (those go to the
log, once per request, through uvicorn's "Exception in ASGI application")."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exception_handlers import request_validation_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response

from gateway.observability import events
from gateway.protocol import ErrorCode


async def _internal_error(request: Request, exc: Exception) -> Response:
    return JSONResponse(
        {"code": ErrorCode.INTERNAL_ERROR.value, "detail": "internal error"}, status_code=500
    )


async def _invalid_request(request: Request, exc: Exception) -> Response:
    # Counted, not logged: FastAPI's 422 names the offending fields of the client's input.
    events.bad_input("bad_request")
    assert isinstance(exc, RequestValidationError)
    return await request_validation_exception_handler(request, exc)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(Exception, _internal_error)
    app.add_exception_handler(RequestValidationError, _invalid_request)
