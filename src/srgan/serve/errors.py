"""Errors as JSON with one stable shape: {"error": {"code": ..., "message": ...}}.

`code` is a fixed machine-readable word (below); `message` is one human-readable line naming
the file or field and the reason. Validation errors add "fields": [{"field", "reason"}].
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse

log = logging.getLogger(__name__)

# status -> code for errors raised by the framework itself (unknown path, wrong method...).
_STATUS_CODES = {400: "bad_request", 404: "not_found", 405: "method_not_allowed", 408: "request_timeout",
                 413: "upload_too_large",
                 415: "unsupported_media_type", 422: "invalid_parameter", 431: "request_header_fields_too_large",
                 500: "internal_error",
                 503: "busy"}


# A body of another type than these never reaches a form field: 415 rather than "field required".
FORM_TYPES = ("multipart/form-data", "application/x-www-form-urlencoded")


class ApiError(Exception):
    """An error answer: HTTP status, stable code, one-line message, optional headers."""

    def __init__(self, status: int, code: str, message: str, headers: Mapping[str, str] | None = None,
                 **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})
        self.extra = extra


def error_response(status: int, code: str, message: str, headers: Mapping[str, str] | None = None,
                   **extra: Any) -> JSONResponse:
    """The JSON error answer every failure path uses."""
    return JSONResponse({"error": {"code": code, "message": message, **extra}}, status_code=status,
                        headers=dict(headers or {}))


def _field_name(loc: tuple | list) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header", "cookie")]
    return ".".join(parts) or "request"


async def _api_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return error_response(exc.status, exc.code, exc.message, exc.headers, **exc.extra)


async def _http_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    status = exc.status_code
    phrase = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "error"
    message = exc.detail if isinstance(exc.detail, str) and exc.detail else phrase
    return error_response(status, _STATUS_CODES.get(status, phrase.lower().replace(" ", "_")), message,
                          getattr(exc, "headers", None))


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    ctype = request.headers.get("content-type", "")
    if request.method == "POST" and not ctype.lower().startswith(FORM_TYPES) and any(
            err.get("loc", ())[:1] == ("body",) for err in exc.errors()):
        return error_response(415, "unsupported_media_type", "request body: expected multipart/form-data, got "
                              + (f"Content-Type {ctype[:100]!r}" if ctype else "no Content-Type"))
    fields = [{"field": _field_name(err.get("loc", ())), "reason": str(err.get("msg", "invalid"))}
              for err in exc.errors()]
    message = "; ".join(f"{f['field']}: {f['reason']}" for f in fields) or "invalid request"
    return error_response(422, "invalid_parameter", message, fields=fields)


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unexpected error answering %s %s", request.method, request.url.path)
    return error_response(500, "internal_error", f"internal error ({type(exc).__name__}); the server logged it")


def install_error_handlers(app: FastAPI) -> None:
    """Route every failure through `error_response`."""
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(Exception, _unexpected)
