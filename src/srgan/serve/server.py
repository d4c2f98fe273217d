"""Running the app under uvicorn: a deadline on request heads, JSON for every error, bounded shutdown.

uvicorn alone waits forever for a request head that trickles in (or never comes), answers a
malformed or oversized head in plain text, and re-raises SIGTERM after its shutdown (so the
process dies of the signal). Here:
- `GuardedH11Protocol` gives each request head `head_timeout_s` to arrive (else 408), and answers
  a malformed request, or a head still incomplete after MAX_HEAD_BYTES, with a JSON 400; the
  connection closes. (A complete head over the limit reaches the app, which answers 431.)
- `GracefulServer`: the first SIGTERM or Ctrl-C stops accepting connections and gives the jobs in
  flight `shutdown_timeout_s` to finish (those still waiting or running then get 503
  `shutting_down`), then the app's lifespan removes the upload spool folder and `serve` returns 0.
  A second signal exits at once (status 1), removing the spool folder first.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import os
import shutil
import signal
import threading
from collections.abc import Generator
from types import FrameType

import h11
import uvicorn
from fastapi import FastAPI
from uvicorn.protocols.http.h11_impl import H11Protocol

from .settings import MAX_HEAD_BYTES

log = logging.getLogger(__name__)

HEAD_TIMEOUT_S = 10.0  # a request line and headers must arrive within this, from connect or the last answer
# Seconds uvicorn waits beyond the shutdown deadline for the 503s to be written before it cancels.
FLUSH_S = 2
FORCED_EXIT = 1
# Entries in oneDNN's primitive cache and PyTorch's ideep cache (both 1024 by default). Every new
# image shape adds entries to both: with the defaults, a service seeing photos of all sizes grew
# ~0.15 MiB per new shape, still rising after 2,000 requests; with 32 its memory stays flat
# (docs/robustness.md). Set the variables yourself to choose another size.
KERNEL_CACHE_ENTRIES = "32"


def raw_json_error(status: int, reason: str, code: str, message: str) -> bytes:
    """A complete HTTP/1.1 error answer in the app's JSON shape, for errors before the app is reached."""
    body = json.dumps({"error": {"code": code, "message": message}}).encode()
    head = (f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\ncontent-length: {len(body)}\r\n"
            "connection: close\r\n\r\n")
    return head.encode("ascii") + body


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a deadline on request heads, and JSON 400s."""

    head_timeout_s = HEAD_TIMEOUT_S

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self._head_timer: asyncio.TimerHandle | None = None
        super().connection_made(transport)
        self._watch_head()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self._watch_head()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._watch_head()  # the next request on this connection gets its own deadline

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_head_timer()
        super().connection_lost(exc)

    def send_400_response(self, msg: str) -> None:
        self._refuse(400, "Bad Request", "bad_request",
                     f"malformed HTTP request, or a request head over {MAX_HEAD_BYTES:,} bytes ({msg.rstrip('.')})")

    def _watch_head(self) -> None:
        """Time the head while one is awaited (h11 IDLE: nothing or part of a head received)."""
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            if self._head_timer is None:
                self._head_timer = self.loop.call_later(self.head_timeout_s, self._head_timed_out)
        else:
            self._stop_head_timer()

    def _stop_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self.conn.their_state is not h11.IDLE or self.transport.is_closing():
            return
        if not self.conn.trailing_data[0]:
            self.transport.close()  # an idle connection with nothing asked: close quietly
            return
        self._refuse(408, "Request Timeout", "request_timeout",
                     f"request head (request line and headers) not complete after {self.head_timeout_s:g} s")

    def _refuse(self, status: int, reason: str, code: str, message: str) -> None:
        self._stop_head_timer()
        self.logger.warning("%s: %s", (self.client or ("?",))[0], message)
        self.transport.write(raw_json_error(status, reason, code, message))
        self.transport.close()


class GracefulServer(uvicorn.Server):
    """A uvicorn server whose first signal drains the app's pool with a deadline, the second exits."""

    def __init__(self, config: uvicorn.Config, app: FastAPI, shutdown_timeout_s: float) -> None:
        super().__init__(config)
        self.app = app
        self.shutdown_timeout_s = shutdown_timeout_s

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        # uvicorn's own re-raises the signal once stopped, so the process would die of it instead
        # of exiting 0; this one only installs and restores the handlers.
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        original = {sig: signal.signal(sig, self.handle_exit) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, handler in original.items():
                signal.signal(sig, handler)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self.should_exit:  # the second signal: stop now, abandoning whatever runs
            spool = getattr(self.app.state, "spool_dir", None)
            if spool:
                shutil.rmtree(spool, ignore_errors=True)
            os.write(2, f"srgan serve: second {signal.Signals(sig).name}: stopped at once\n".encode())
            os._exit(FORCED_EXIT)
        self.should_exit = True

    async def shutdown(self, sockets: list | None = None) -> None:
        pool = self.app.state.pool
        pool.begin_shutdown(self.shutdown_timeout_s)
        await super().shutdown(sockets)


def serve(app: FastAPI, host: str, port: int, shutdown_timeout_s: float = 10.0,
          head_timeout_s: float = HEAD_TIMEOUT_S) -> int:
    """Serve `app` until a signal; 0 after a graceful stop, 1 if the server could not start."""
    # Read when the first convolution runs, so setting them here (before any request) is in time.
    for variable in ("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "LRU_CACHE_CAPACITY"):
        os.environ.setdefault(variable, KERNEL_CACHE_ENTRIES)
    class Protocol(GuardedH11Protocol):  # uvicorn builds one per connection from the class alone
        pass

    Protocol.head_timeout_s = head_timeout_s
    config = uvicorn.Config(app, host=host, port=port, log_level="info", http=Protocol,
                            timeout_graceful_shutdown=math.ceil(shutdown_timeout_s) + FLUSH_S,
                            h11_max_incomplete_event_size=MAX_HEAD_BYTES)
    server = GracefulServer(config, app, shutdown_timeout_s)
    server.run()
    # uvicorn returns without serving when it cannot bind (port in use...); it has logged why.
    if not server.started:
        return 1
    running = app.state.pool.running
    if running:
        # A job past the deadline (answered 503) cannot be interrupted; do not wait for its thread.
        log.warning("stopped with %d job(s) still running: abandoned", running)
        logging.shutdown()
        os._exit(0)
    return 0
