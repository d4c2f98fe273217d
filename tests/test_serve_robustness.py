"""`srgan serve` under hostile clients: slow uploads and heads, disconnects, malformed requests.

The in-process tests drive the ASGI app directly with a scripted client (exact control of
timing and disconnects); the others run a real server process on 127.0.0.1 and count its open
descriptors and spool files. Every loop here is bounded and every socket has a timeout.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import threading
import time

import numpy as np
import pytest

httpx = pytest.importorskip("httpx", reason="httpx is not installed")
pytest.importorskip("fastapi", reason="the 'serve' extra (fastapi) is not installed")
pytest.importorskip("uvicorn", reason="the 'serve' extra (uvicorn) is not installed")

from serve_support import open_fds, png_bytes, running_server  # noqa: E402

from srgan.serve import create_app  # noqa: E402

BOUNDARY = "b0undary"
CTYPE = f"multipart/form-data; boundary={BOUNDARY}".encode()


def multipart_head(filename: str = "photo.png") -> bytes:
    return (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{filename}\"\r\n"
            "Content-Type: image/png\r\n\r\n").encode()


def multipart(content: bytes, filename: str = "photo.png") -> bytes:
    return multipart_head(filename) + content + f"\r\n--{BOUNDARY}--\r\n".encode()


def scope(headers: list[tuple[bytes, bytes]] | None = None) -> dict:
    return {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
            "path": "/v1/upscale", "raw_path": b"/v1/upscale", "query_string": b"", "root_path": "",
            "headers": [(b"host", b"test"), (b"content-type", CTYPE), *(headers or [])],
            "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80)}


async def call(app, receive) -> tuple[int, dict[str, str], dict]:
    """Run one request through the ASGI app; (status, headers, JSON body or {})."""
    sent: list[dict] = []

    async def send(message: dict) -> None:
        sent.append(message)

    await app(scope(), receive, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    headers = {k.decode(): v.decode() for k, v in start["headers"]}
    return start["status"], headers, (json.loads(body) if headers.get("content-type") == "application/json" else {})


def fd_count() -> int:
    return open_fds(os.getpid())


@pytest.fixture
def tiny_app(tiny_weights):
    def make(**overrides):
        return create_app(models={"tiny": str(tiny_weights)}, device="cpu", precision="fp32", **overrides)

    return make


# --- in-process: slow uploads, disconnects, the queue ---------------------------------------


@pytest.mark.parametrize("limits, flag", [
    ({"min_upload_rate": 64 * 1024, "upload_grace_s": 0.3}, "--min-upload-rate"),
    ({"min_upload_rate": 0, "upload_timeout_s": 0.5}, "--upload-timeout"),
])
def test_slow_upload_is_cut_with_408_and_never_queued(tiny_app, limits, flag):
    app = tiny_app(**limits)
    chunks = 0

    async def trickle():  # 1 KiB every 20 ms = 50 KiB/s: under 64 KiB/s, and never finished
        nonlocal chunks
        chunks += 1
        if chunks > 1:
            await asyncio.sleep(0.02)
        body = multipart_head() if chunks == 1 else b"x" * 1024
        return {"type": "http.request", "body": body, "more_body": chunks < 500}

    start = time.monotonic()
    status, headers, body = asyncio.run(call(app, trickle))
    assert status == 408 and body["error"]["code"] == "request_timeout", body
    assert flag in body["error"]["message"] and headers["connection"] == "close"
    assert time.monotonic() - start < 3 and chunks < 100  # cut at the limit, not at the end of the body
    pool = app.state.pool
    assert pool.completed == 0 and pool.waiting == 0 and pool.running == 0  # no worker, no queue slot


def test_disconnect_mid_upload_frees_the_spool_file_at_once(tiny_app, tmp_path, monkeypatch):
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # where Starlette spools uploads over 1 MiB
    app = tiny_app(max_upload_bytes=8 * 2**20)
    before = fd_count()
    sent = 0
    during = []

    async def upload_then_vanish():
        nonlocal sent
        sent += 1
        if sent == 1:
            return {"type": "http.request", "body": multipart_head(), "more_body": True}
        if sent <= 40:  # 40 x 64 KiB = 2.5 MiB: the spool file has rolled over to disk
            if sent == 40:
                during.append(fd_count())
            return {"type": "http.request", "body": b"\0" * 65536, "more_body": True}
        return {"type": "http.disconnect"}

    asyncio.run(call(app, upload_then_vanish))
    assert during[0] > before, "the upload never reached a spool file on disk (the test would prove nothing)"
    assert fd_count() == before  # closed as the request ended, not at some later garbage collection
    assert os.listdir(tmp_path) == []
    assert app.state.pool.completed == 0


def test_client_gone_while_queued_drops_the_job(tiny_app, monkeypatch):
    import srgan.serve.app as app_module

    ran = []
    real = app_module.upscale_picture
    monkeypatch.setattr(app_module, "upscale_picture", lambda *a: ran.append(1) or real(*a))
    app = tiny_app(workers=1, queue_size=1)
    pool = app.state.pool
    release = threading.Event()
    holder = threading.Thread(target=lambda: asyncio.run(pool.run(lambda: release.wait(10))))
    holder.start()
    deadline = time.monotonic() + 5
    while pool.running == 0 and time.monotonic() < deadline:  # the only worker is taken
        time.sleep(0.01)
    body = multipart(png_bytes(np.zeros((8, 8, 3), np.uint8)))

    async def scenario():
        gone = asyncio.Event()
        messages = iter([{"type": "http.request", "body": body, "more_body": False}])

        async def receive():
            message = next(messages, None)
            if message is not None:
                return message
            await gone.wait()  # after the body: "disconnected" once the test says so
            return {"type": "http.disconnect"}

        request = asyncio.ensure_future(call(app, receive))
        for _ in range(200):  # wait (at most 2 s) for the job to sit in the queue
            if pool.waiting == 1:
                break
            await asyncio.sleep(0.01)
        assert pool.waiting == 1 and pool.running == 1
        gone.set()
        return await asyncio.wait_for(request, 5)

    try:
        status, _, _ = asyncio.run(scenario())
        assert status == 499
        assert pool.waiting == 0 and pool.dropped == 1  # the slot is free at once
    finally:
        release.set()
        holder.join(10)
    time.sleep(0.2)
    assert ran == [] and pool.completed == 1  # only the holder's job ever ran


def test_cli_limit_and_shutdown_flags(capsys):
    from srgan.cli.main import build_parser, main

    args = build_parser().parse_args(["serve", "--upload-timeout", "30", "--min-upload-rate", "16",
                                      "--header-timeout", "5", "--shutdown-timeout", "20"])
    assert (args.upload_timeout, args.min_upload_rate, args.header_timeout, args.shutdown_timeout) == (30, 16, 5, 20)
    for flag, value in (("--upload-timeout", "0"), ("--header-timeout", "-1"), ("--shutdown-timeout", "inf"),
                        ("--min-upload-rate", "-2")):
        assert main(["serve", flag, value]) == 2
        assert f"{flag} must be" in capsys.readouterr().err


# --- a real server process ------------------------------------------------------------------


@pytest.fixture(scope="module")
def server(tiny_weights, tmp_path_factory):
    """A real server: 1 worker + 1 queue slot, uploads under 64 KiB/s cut after 2 s, heads after 1.5 s."""
    spool_parent = tmp_path_factory.mktemp("spool")
    args = ["-m", str(tiny_weights), "--jobs", "1", "--queue", "1", "--device", "cpu", "--fp32",
            "--min-upload-rate", "64", "--header-timeout", "1.5", "--max-upload-mb", "4"]
    log = tmp_path_factory.mktemp("log") / "server.log"
    with running_server(args, log, env={"TMPDIR": str(spool_parent)}) as (base, proc):
        with httpx.Client(base_url=base, timeout=30) as c:  # warm: the model is loaded
            r = c.post("/v1/upscale", files={"file": ("w.png", png_bytes(np.zeros((16, 16, 3), np.uint8)))})
            assert r.status_code == 200
        (spool,) = spool_parent.glob("srgan-serve-*")
        yield base, proc, spool


def settled_fds(pid: int, target: int, timeout: float = 5.0) -> int:
    """The server's open descriptors once they are back to `target` (or after `timeout` s)."""
    deadline = time.monotonic() + timeout
    n = open_fds(pid)
    while n > target and time.monotonic() < deadline:
        time.sleep(0.05)
        n = open_fds(pid)
    return n


def connect(base: str) -> socket.socket:
    host, port = base.removeprefix("http://").split(":")
    s = socket.create_connection((host, int(port)), timeout=10)
    return s


def read_answer(s: socket.socket, limit_s: float = 10.0) -> tuple[int, dict[str, str], bytes]:
    """Read one HTTP answer until the server closes (every cut answer closes)."""
    s.settimeout(limit_s)
    data = b""
    while True:
        try:
            chunk = s.recv(65536)
        except ConnectionResetError:  # a byte we sent after the server closed: the answer is already here
            break
        if not chunk:
            break
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.lower().split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), headers, body


def test_trickling_clients_hold_no_worker_and_others_are_served(server):
    base, proc, spool = server
    fds_before = open_fds(proc.pid)
    head = multipart_head("slow.png")
    request = (b"POST /v1/upscale HTTP/1.1\r\nHost: test\r\nContent-Type: " + CTYPE
               + f"\r\nContent-Length: {len(head) + 100_000}\r\n\r\n".encode() + head)
    tricklers = [connect(base) for _ in range(4)]  # more than the 2 workers + queue slots
    answers: dict[int, tuple[int, dict, bytes]] = {}

    def trickle(i: int, s: socket.socket) -> None:
        s.sendall(request)
        s.settimeout(0.1)
        for _ in range(100):  # one byte every 0.1 s, until the server answers (at most 10 s)
            try:
                s.send(b"x")
                if s.recv(1, socket.MSG_PEEK):
                    break
            except socket.timeout:
                continue
            except OSError:
                break
        answers[i] = read_answer(s)

    threads = [threading.Thread(target=trickle, args=(i, s)) for i, s in enumerate(tricklers)]
    for t in threads:
        t.start()
    time.sleep(0.3)
    image = png_bytes(np.random.default_rng(0).integers(0, 256, (16, 16, 3), dtype=np.uint8))
    served = []
    with httpx.Client(base_url=base, timeout=10) as c:
        for i in range(5):  # while the four trickle, normal uploads go straight through
            r = c.post("/v1/upscale", files={"file": (f"n{i}.png", image, "image/png")})
            served.append(r.status_code)
        health = c.get("/healthz").json()
    for t in threads:
        t.join(15)
    for s in tricklers:
        s.close()
    assert served == [200] * 5
    assert health["queue"]["waiting"] == 0  # the tricklers never held a queue slot
    assert sorted(answers) == [0, 1, 2, 3]
    for status, headers, body in answers.values():
        assert status == 408 and headers["content-type"] == "application/json", body
        assert json.loads(body)["error"]["code"] == "request_timeout"
    assert settled_fds(proc.pid, fds_before) <= fds_before
    assert os.listdir(spool) == []


def test_disconnects_mid_upload_and_mid_response_leave_nothing(server):
    base, proc, spool = server
    fds_before = open_fds(proc.pid)
    head = multipart_head("big.png")
    # mid-upload: 2 MiB of a declared 3 MiB (Starlette has spooled it to disk), then gone
    s = connect(base)
    s.sendall(b"POST /v1/upscale HTTP/1.1\r\nHost: test\r\nContent-Type: " + CTYPE
              + f"\r\nContent-Length: {len(head) + 3 * 2**20}\r\n\r\n".encode() + head + b"\0" * 2 * 2**20)
    time.sleep(0.3)
    s.close()
    assert settled_fds(proc.pid, fds_before) <= fds_before
    # mid-response: a 1024x1024 answer, of which the client reads 100 bytes
    image = png_bytes(np.random.default_rng(1).integers(0, 256, (256, 256, 3), dtype=np.uint8))
    body = multipart(image)
    s = connect(base)
    s.sendall(b"POST /v1/upscale HTTP/1.1\r\nHost: test\r\nContent-Type: " + CTYPE
              + f"\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body)
    assert s.recv(100).startswith(b"HTTP/1.1 200")
    s.close()
    assert settled_fds(proc.pid, fds_before) <= fds_before
    assert os.listdir(spool) == []
    health = httpx.get(f"{base}/healthz", timeout=5).json()
    assert health["queue"]["running"] == 0 and health["queue"]["waiting"] == 0


def test_client_gone_while_queued_on_a_real_server_drops_the_job(server):
    base, proc, spool = server
    before = httpx.get(f"{base}/healthz", timeout=5).json()["queue"]
    results = {}
    big = png_bytes(np.random.default_rng(2).integers(0, 256, (512, 512, 3), dtype=np.uint8))  # a job of seconds

    def hold_the_worker():
        r = httpx.post(f"{base}/v1/upscale", files={"file": ("big.png", big, "image/png")}, timeout=60)
        results["holder"] = r.status_code

    holder = threading.Thread(target=hold_the_worker)
    holder.start()

    def queue_now() -> dict:
        return httpx.get(f"{base}/healthz", timeout=5).json()["queue"]

    deadline = time.monotonic() + 10
    while queue_now()["running"] == 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    body = multipart(png_bytes(np.zeros((8, 8, 3), np.uint8)), "queued.png")
    with connect(base) as s:
        s.sendall(b"POST /v1/upscale HTTP/1.1\r\nHost: test\r\nContent-Type: " + CTYPE
                  + f"\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body)
        while queue_now()["waiting"] == 0 and time.monotonic() < deadline:
            time.sleep(0.02)
        state = queue_now()
    # the socket is closed: the queued job is dropped at once, while the holder still runs
    while queue_now()["dropped"] == before["dropped"] and time.monotonic() < deadline:
        time.sleep(0.02)
    dropped = queue_now()
    holder.join(60)
    after = queue_now()
    assert state["running"] == 1 and state["waiting"] == 1
    assert dropped["dropped"] == before["dropped"] + 1 and dropped["waiting"] == 0
    assert results["holder"] == 200
    assert after["completed"] == before["completed"] + 1  # only the holder's job ran
    assert os.listdir(spool) == []


@pytest.mark.parametrize("raw, status, code", [
    (b"GET /healthz HTTP/1.1\r\nHost: test\r\nX-Slow: ", 408, "request_timeout"),  # head never finished
    (b"GET /healthz HTTP/1.1\r\nHost: test\r\nX-Big: " + b"a" * 20_000 + b"\r\n\r\n", 431,
     "request_header_fields_too_large"),
    (b"GET /healthz HTTP/1.1\r\nHost: test\r\nX-Big: " + b"a" * 70_000, 400, "bad_request"),  # never ends
    (b"BREW /healthz HTCPCP/1.0 nonsense\r\n\r\n", 400, "bad_request"),
    (b"POST /v1/upscale HTTP/1.1\r\nHost: test\r\nContent-Length: 12abc\r\n\r\n", 400, "bad_request"),
])
def test_bad_request_heads_get_json_errors_and_the_connection_closes(server, raw, status, code):
    base, proc, _ = server
    fds_before = open_fds(proc.pid)
    with connect(base) as s:
        s.sendall(raw)
        got, headers, body = read_answer(s)
    assert got == status and headers["content-type"] == "application/json", body
    error = json.loads(body)["error"]
    assert error["code"] == code and "\n" not in error["message"]
    assert settled_fds(proc.pid, fds_before) <= fds_before


@pytest.mark.parametrize("headers, content, status, code", [
    ({"content-type": "multipart/form-data"}, b"--x\r\n", 400, "bad_request"),  # no boundary
    ({"content-type": "multipart/form-data; boundary=x"}, b"garbage with no parts", 400, "bad_request"),
    ({"content-type": "multipart/form-data; boundary=x"},
     b"--x\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.png\"\r\n\r\nabc", 422, "invalid_parameter"),
    ({"content-type": "multipart/form-data; boundary=x"},
     b"--x\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\n" + b"m" * (2 * 2**20) + b"\r\n--x--\r\n",
     400, "bad_request"),  # a text field over Starlette's 1 MiB part limit
    ({"content-type": "application/json"}, b'{"file": "aGVsbG8="}', 415, "unsupported_media_type"),
    ({"content-type": "text/plain"}, b"hello", 415, "unsupported_media_type"),
    ({}, b"", 415, "unsupported_media_type"),
])
def test_malformed_bodies_and_wrong_content_types_get_json_errors(server, headers, content, status, code):
    base, _, _ = server
    r = httpx.post(f"{base}/v1/upscale", content=content, headers=headers, timeout=10)
    assert r.status_code == status and r.headers["content-type"] == "application/json", r.text
    assert r.json()["error"]["code"] == code


# --- fuzzing from the OpenAPI schema ----------------------------------------------------------

FUZZ_EXAMPLES = 40  # per operation and mode (positive: fits the schema; negative: does not)


@pytest.mark.parametrize("mode", ["positive", "negative"])
def test_fuzz_every_endpoint_from_the_openapi_schema(server, mode):
    """schemathesis generates requests from /openapi.json for every operation: no 500, no hang
    (every call has a 10 s timeout), and every answer conforms to the schema (status, content
    type, headers, body)."""
    schemathesis = pytest.importorskip("schemathesis", reason="schemathesis is not installed")
    from hypothesis import HealthCheck, given, settings
    from hypothesis.errors import Unsatisfiable
    from schemathesis.generation import GenerationMode
    from schemathesis.specs.openapi.checks import positive_data_acceptance

    base, proc, spool = server
    schema = schemathesis.openapi.from_url(f"{base}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {f"{op.method.upper()} {op.path}" for op in operations} == {
        "GET /healthz", "GET /v1/models", "POST /v1/upscale"}
    statuses: set[int] = set()
    for operation in operations:
        @settings(max_examples=FUZZ_EXAMPLES, deadline=None, database=None, derandomize=True,
                  suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy(generation_mode=GenerationMode(mode)))
        def fuzz(case) -> None:
            # A schema-valid upload need not be a decodable image (OpenAPI cannot say "a PNG"), so
            # 400/415 for random bytes is right: that one check is off, every other one is on.
            response = case.call_and_validate(base_url=base, timeout=10, excluded_checks=[positive_data_acceptance])
            statuses.add(response.status_code)
            assert response.status_code < 500 or response.status_code == 503, response.text

        try:
            fuzz()
        except Unsatisfiable:  # negative mode, an operation with no input to get wrong (GET /healthz)
            assert mode == "negative" and operation.method.upper() == "GET"
    assert proc.poll() is None and os.listdir(spool) == []
    print(f"{mode}: statuses seen {sorted(statuses)}")
