"""Pure ASGI middleware that refuses requests before their bodies are held in memory.

`BodyLimitMiddleware` answers 413 from the Content-Length header without reading the body, and
counts the bytes of bodies that arrive without one (chunked), answering 413 as soon as the count
passes the limit: the application never sees more than `max_bytes`.
`BusyMiddleware` answers 503 to uploads while the worker pool is already full, so that clients
do not send a large body only to be refused after it.
"""

from __future__ import annotations

from collections.abc import Callable

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .errors import error_response
from .settings import describe_bytes


class _BodyTooLarge(Exception):
    """Raised from `receive` once the body passes the limit, to stop the application reading."""


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return value.decode("latin-1")
    return None


class BodyLimitMiddleware:
    """413 for request bodies over `max_bytes`, from the header or while streaming."""

    def __init__(self, app: ASGIApp, max_bytes: int, file_limit: int | None = None) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.file_limit = file_limit if file_limit is not None else max_bytes

    def _too_large(self, size: str) -> JSONResponse:
        return error_response(
            413, "upload_too_large",
            f"upload: {size} is over the limit of {describe_bytes(self.file_limit)} per file "
            "(server option --max-upload-mb)",
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = _header(scope, b"content-length")
        if length is not None:
            if not length.strip().isdigit():
                await error_response(400, "bad_request", f"Content-Length header: not a number ({length!r})")(
                    scope, receive, send)
                return
            if int(length) > self.max_bytes:
                await self._too_large(f"{int(length):,} bytes")(scope, receive, send)
                return

        received = 0
        exceeded = False
        started = False

        async def limited_receive() -> Message:
            nonlocal received, exceeded
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    exceeded = True
                    raise _BodyTooLarge
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if exceeded:  # whatever the application answers to the cut-off body is replaced
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except _BodyTooLarge:
            pass
        except Exception:
            if not exceeded:
                raise
        if exceeded and not started:
            await self._too_large(f"more than {self.max_bytes:,} bytes")(scope, receive, send)


class BusyMiddleware:
    """503 with Retry-After for POSTs to `paths` while `is_full()`; other requests pass."""

    def __init__(self, app: ASGIApp, is_full: Callable[[], bool], retry_after: Callable[[], int],
                 paths: tuple[str, ...]) -> None:
        self.app = app
        self.is_full = is_full
        self.retry_after = retry_after
        self.paths = paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and scope["path"] in self.paths and self.is_full():
            seconds = self.retry_after()
            message = f"server busy: every worker and queue slot is taken; retry in {seconds} s"
            await error_response(503, "busy", message, {"Retry-After": str(seconds)})(scope, receive, send)
            return
        await self.app(scope, receive, send)
