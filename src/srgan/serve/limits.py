"""Pure ASGI middleware that refuses requests before their bodies are held in memory.

`BodyLimitMiddleware` answers 413 from the Content-Length header without reading the body, and
counts the bytes of bodies that arrive without one (chunked), answering 413 as soon as the count
passes the limit: the application never sees more than `max_bytes`. It also times the body: one
that falls behind a minimum rate or runs past a deadline is cut with 408, and one still arriving
when the server's shutdown deadline passes with 503. Every cut answer closes the connection, so a
client that keeps trickling cannot keep it.
`HeadLimitMiddleware` answers 431 to a request whose line and headers are over `max_bytes`.
`BusyMiddleware` answers 503 to uploads while the worker pool is already full (or shutting
down), so that clients do not send a large body only to be refused after it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .errors import error_response
from .settings import MAX_HEAD_BYTES, describe_bytes

CLOSE = {"Connection": "close"}
# Retry-After of answers given while the server stops: about the time a supervisor takes to restart it.
RESTART_RETRY_AFTER_S = 5


class _BodyCut(Exception):
    """Raised from `receive` once the body breaks a limit, to stop the application reading."""


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return value.decode("latin-1")
    return None


def shutting_down_response() -> JSONResponse:
    """503 for a request the stopping server will not run (its connection closes)."""
    seconds = RESTART_RETRY_AFTER_S
    return error_response(503, "shutting_down", f"server shutting down; retry in {seconds} s",
                          {"Retry-After": str(seconds), **CLOSE})


class BodyLimitMiddleware:
    """413 for request bodies over `max_bytes`; 408 for bodies that arrive too slowly.

    timeout_s: the whole body must arrive within this many seconds of the request head.
    min_rate: after `grace_s`, the body must average at least this many bytes per second (0: off).
    stop_deadline: returns the server's shutdown deadline (time.monotonic()) once it has one.
    """

    def __init__(self, app: ASGIApp, max_bytes: int, file_limit: int | None = None, timeout_s: float | None = None,
                 min_rate: float = 0, grace_s: float = 0.0,
                 stop_deadline: Callable[[], float | None] = lambda: None) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.file_limit = file_limit if file_limit is not None else max_bytes
        self.timeout_s = timeout_s
        self.min_rate = min_rate
        self.grace_s = grace_s
        self.stop_deadline = stop_deadline

    def _too_large(self, size: str) -> JSONResponse:
        return error_response(
            413, "upload_too_large",
            f"upload: {size} is over the limit of {describe_bytes(self.file_limit)} per file "
            "(server option --max-upload-mb)", CLOSE,
        )

    def _deadline(self, start: float, received: int) -> tuple[float | None, str]:
        """When the body must be complete, given `received` bytes so far, and which limit that is."""
        deadline, which = None, ""
        if self.timeout_s is not None:
            deadline, which = start + self.timeout_s, "timeout"
        if self.min_rate > 0:
            by_rate = start + max(self.grace_s, received / self.min_rate)
            if deadline is None or by_rate < deadline:
                deadline, which = by_rate, "rate"
        stop = self.stop_deadline()
        if stop is not None and (deadline is None or stop < deadline):
            deadline, which = stop, "shutdown"
        return deadline, which

    def _cut(self, which: str, received: int, seconds: float) -> JSONResponse:
        if which == "shutdown":
            return shutting_down_response()
        if which == "rate":
            reason = (f"{received:,} bytes in {seconds:.1f} s is slower than the minimum of "
                      f"{self.min_rate / 1024:g} KiB/s (server option --min-upload-rate)")
        else:
            reason = f"not complete after {self.timeout_s:g} s (server option --upload-timeout)"
        return error_response(408, "request_timeout", f"upload: {reason}", CLOSE)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = _header(scope, b"content-length")
        if length is not None:
            if not length.strip().isdigit():
                await error_response(400, "bad_request", f"Content-Length header: not a number ({length!r})",
                                     CLOSE)(scope, receive, send)
                return
            if int(length) > self.max_bytes:
                await self._too_large(f"{int(length):,} bytes")(scope, receive, send)
                return

        start = time.monotonic()
        received = 0
        body_done = False
        cut: JSONResponse | None = None
        started = False

        async def limited_receive() -> Message:
            nonlocal received, body_done, cut
            if body_done:  # after the body, receive() only reports a disconnect: no clock on that
                return await receive()
            deadline, which = self._deadline(start, received)
            try:
                if deadline is None:
                    message = await receive()
                else:
                    message = await asyncio.wait_for(receive(), max(0.0, deadline - time.monotonic()))
            except asyncio.TimeoutError:
                cut = self._cut(which, received, time.monotonic() - start)
                raise _BodyCut from None
            if message["type"] != "http.request":
                body_done = True  # the client went away
                return message
            received += len(message.get("body", b""))
            if received > self.max_bytes:
                cut = self._too_large(f"more than {self.max_bytes:,} bytes")
                raise _BodyCut
            deadline, which = self._deadline(start, received)
            if message.get("more_body", False) and deadline is not None and time.monotonic() > deadline:
                cut = self._cut(which, received, time.monotonic() - start)
                raise _BodyCut
            body_done = not message.get("more_body", False)
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if cut is not None:  # whatever the application answers to the cut-off body is replaced
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except _BodyCut:
            pass
        except Exception:
            if cut is None:
                raise
        if cut is not None and not started:
            await cut(scope, receive, send)


class HeadLimitMiddleware:
    """431 for a request line plus headers over `max_bytes` (counted as sent, near enough)."""

    def __init__(self, app: ASGIApp, max_bytes: int = MAX_HEAD_BYTES) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            size = len(scope.get("raw_path") or b"") + len(scope.get("query_string", b"")) + sum(
                len(key) + len(value) + 4 for key, value in scope.get("headers", ()))  # 4: ": " and CRLF
            if size > self.max_bytes:
                message = (f"request head (request line and headers): {size:,} bytes is over the limit of "
                           f"{self.max_bytes:,}")
                await error_response(431, "request_header_fields_too_large", message, CLOSE)(scope, receive, send)
                return
        await self.app(scope, receive, send)


class BusyMiddleware:
    """503 with Retry-After for POSTs to `paths` while `is_full()` or `is_stopping()`; others pass."""

    def __init__(self, app: ASGIApp, is_full: Callable[[], bool], retry_after: Callable[[], int],
                 paths: tuple[str, ...], is_stopping: Callable[[], bool] = lambda: False) -> None:
        self.app = app
        self.is_full = is_full
        self.retry_after = retry_after
        self.paths = paths
        self.is_stopping = is_stopping

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and scope["path"] in self.paths:
            if self.is_stopping():
                await shutting_down_response()(scope, receive, send)
                return
            if self.is_full():
                seconds = self.retry_after()
                message = f"server busy: every worker and queue slot is taken; retry in {seconds} s"
                await error_response(503, "busy", message, {"Retry-After": str(seconds)})(scope, receive, send)
                return
        await self.app(scope, receive, send)
