"""Graceful shutdown of `srgan serve`: SIGTERM drains with a deadline and exits 0; a second one exits at once.

The subprocess tests start a real server on 127.0.0.1 with two models: the tiny random-weight
one (a job of well under a second) and a wider random-weight one whose job on a 256x256 image
takes far longer than the shutdown deadline. Every wait has a timeout.
"""

from __future__ import annotations

import asyncio
import signal
import threading
import time
import warnings

import numpy as np
import pytest

httpx = pytest.importorskip("httpx", reason="httpx is not installed")
pytest.importorskip("uvicorn", reason="the 'serve' extra (uvicorn) is not installed")

from serve_support import png_bytes, running_server  # noqa: E402

from srgan.models import Generator, GeneratorConfig, save_generator  # noqa: E402
from srgan.serve import create_app  # noqa: E402

DEADLINE_S = 4


@pytest.fixture(scope="module")
def slow_weights(tmp_path_factory):
    path = tmp_path_factory.mktemp("weights") / "slow_x4.safetensors"
    save_generator(Generator(GeneratorConfig(num_blocks=8, channels=64)).eval(), path, recipe={"note": "random"})
    return path


def image(size: int, seed: int = 0) -> bytes:
    return png_bytes(np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8))


def post_in_background(base: str, model: str, content: bytes, results: dict, key: str) -> threading.Thread:
    def go():
        try:
            r = httpx.post(f"{base}/v1/upscale", files={"file": (f"{key}.png", content, "image/png")},
                           data={"model": model}, timeout=60)
            results[key] = (r.status_code, r.headers.get("content-type"), r.content[:300])
        except httpx.HTTPError as exc:
            results[key] = (0, type(exc).__name__, b"")

    t = threading.Thread(target=go, daemon=True)
    t.start()
    return t


def wait_for(predicate, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def queue_state(base: str) -> dict:
    return httpx.get(f"{base}/healthz", timeout=5).json()["queue"]


def admitted_jobs(base: str) -> int:
    """Jobs the server has ever admitted (done + running + waiting): grows by one per admission."""
    q = queue_state(base)
    return q["completed"] + q["running"] + q["waiting"]


def test_in_process_shutdown_refuses_new_jobs_and_answers_503_at_the_deadline(tiny_weights):
    with warnings.catch_warnings():  # Starlette 1.x prefers httpx2 for its test client; httpx still works
        warnings.filterwarnings("ignore", message=".*httpx2.*")
        from fastapi.testclient import TestClient

    app = create_app(models={"tiny": str(tiny_weights)}, workers=1, queue_size=2)
    pool = app.state.pool
    client = TestClient(app)
    release = threading.Event()
    holder = threading.Thread(target=lambda: asyncio.run(pool.run(lambda: release.wait(10))))
    holder.start()
    try:
        assert wait_for(lambda: pool.running == 1, 5)
        answers = {}
        waiting = threading.Thread(target=lambda: answers.update(
            queued=client.post("/v1/upscale", files={"file": ("q.png", image(8), "image/png")})))
        waiting.start()
        assert wait_for(lambda: pool.waiting == 1, 5)
        pool.begin_shutdown(0.3)
        late = client.post("/v1/upscale", files={"file": ("late.png", image(8), "image/png")})
        assert late.status_code == 503 and late.json()["error"]["code"] == "shutting_down"
        assert late.headers["retry-after"] == "5" and late.headers["connection"] == "close"
        assert client.get("/healthz").json()["status"] == "shutting_down"
        waiting.join(5)
        queued = answers["queued"]  # still waiting at the deadline: a clean 503, the job dropped
        assert queued.status_code == 503 and queued.json()["error"]["code"] == "shutting_down"
        assert wait_for(lambda: pool.dropped == 1 and pool.waiting == 0, 2)
    finally:
        release.set()
        holder.join(10)


def test_sigterm_finishes_jobs_in_time_503s_the_rest_removes_the_spool_and_exits_0(tiny_weights, slow_weights,
                                                                                     tmp_path):
    args = ["-m", str(tiny_weights), "-m", str(slow_weights), "--jobs", "1", "--queue", "2", "--device", "cpu",
            "--fp32", "--shutdown-timeout", str(DEADLINE_S)]
    with running_server(args, tmp_path / "server.log", env={"TMPDIR": str(tmp_path)}) as (base, proc):
        (spool,) = tmp_path.glob("srgan-serve-*")
        results: dict = {}
        threads = []
        # In this order, each admitted before the next is sent: a short job, a shorter one queued
        # behind it, and a long one (far longer than the deadline) queued last.
        # The long job is sized to take many times the deadline on a fast idle machine too (640 px through
        # 8 blocks of 64 channels is ~1 TFLOP), so it is still running when the deadline comes.
        for key, model, size in (("first", "tiny_x4", 256), ("second", "tiny_x4", 32), ("long", "slow_x4", 640)):
            admitted = admitted_jobs(base)
            threads.append(post_in_background(base, model, image(size, len(threads)), results, key))
            assert wait_for(lambda: admitted_jobs(base) > admitted, 10)
        start = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        with pytest.raises(httpx.TransportError):  # no longer accepting connections
            httpx.get(f"{base}/healthz", timeout=2)
        code = proc.wait(timeout=DEADLINE_S + 15)
        took = time.monotonic() - start
        for t in threads:
            t.join(5)
    log = (tmp_path / "server.log").read_text()
    assert code == 0, log
    assert took < DEADLINE_S + 5
    assert results["first"][:2] == results["second"][:2] == (200, "image/png")  # finished within the deadline
    status, ctype, body = results["long"]  # still running at the deadline: a clean 503
    assert (status, ctype) == (503, "application/json") and b'"shutting_down"' in body
    assert not spool.exists()
    assert "shutting down:" in log and "abandoned" in log


def test_a_second_sigterm_exits_at_once(slow_weights, tmp_path):
    args = ["-m", str(slow_weights), "--device", "cpu", "--fp32", "--shutdown-timeout", "60"]
    with running_server(args, tmp_path / "server.log", env={"TMPDIR": str(tmp_path)}) as (base, proc):
        (spool,) = tmp_path.glob("srgan-serve-*")
        results: dict = {}
        post_in_background(base, "slow_x4", image(256), results, "slow")
        assert wait_for(lambda: queue_state(base)["running"] == 1, 10)
        proc.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        assert proc.poll() is None  # the first signal waits for the job (up to 60 s)
        start = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=5)
        took = time.monotonic() - start
    assert code == 1 and took < 2
    assert not spool.exists()
    assert "second SIGTERM: stopped at once" in (tmp_path / "server.log").read_text()
