"""A bounded load test of a real `srgan serve` process on loopback (127.0.0.1 only).

40 requests, 4 at a time, against 1 worker + a queue of 2: every answer is 200 or 503 (with
Retry-After), none is lost, and the server's resident memory stays flat. Stops by itself: every
request has a timeout and the whole run a deadline.
"""

from __future__ import annotations

import io
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from PIL import Image

httpx = pytest.importorskip("httpx", reason="httpx is not installed")
pytest.importorskip("uvicorn", reason="the 'serve' extra (uvicorn) is not installed")

from serve_support import png_bytes, rss_bytes, running_server  # noqa: E402

REQUESTS = 40
CONCURRENCY = 4
DEADLINE_S = 90
RSS_GROWTH_LIMIT = 40 * 1024 * 1024


def test_bounded_load_every_answer_is_200_or_503_and_memory_stays_flat(tiny_weights, tmp_path):
    image = png_bytes(np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8))
    args = ["-m", str(tiny_weights), "--workers", "1", "--queue", "2", "--device", "cpu", "--fp32"]
    with running_server(args, tmp_path / "server.log") as (base, proc):
        def one(_i: int) -> tuple[int, bytes, dict]:
            with httpx.Client(base_url=base, timeout=30) as c:
                r = c.post("/v1/upscale", files={"file": ("load.png", image, "image/png")})
                return r.status_code, r.content, dict(r.headers)

        for i in range(4):  # warm up: model loaded, allocator and caches at their working size
            assert one(i)[0] == 200
        rss_before = rss_bytes(proc.pid)

        start = time.monotonic()
        with ThreadPoolExecutor(CONCURRENCY) as ex:
            answers = list(ex.map(one, range(REQUESTS), timeout=DEADLINE_S))
        elapsed = time.monotonic() - start
        rss_after = rss_bytes(proc.pid)

        assert len(answers) == REQUESTS  # none lost
        statuses = [status for status, _, _ in answers]
        assert set(statuses) <= {200, 503}, statuses
        assert statuses.count(200) >= CONCURRENCY
        for status, body, headers in answers:
            if status == 200:
                assert Image.open(io.BytesIO(body)).size == (256, 256)
            else:
                assert int(headers["retry-after"]) >= 1 and b'"busy"' in body
        growth = rss_after - rss_before
        assert growth < RSS_GROWTH_LIMIT, f"server RSS grew {growth / 2**20:.1f} MiB over {REQUESTS} requests"
        health = httpx.get(f"{base}/healthz", timeout=5).json()
        assert health["queue"]["running"] == 0 and health["queue"]["waiting"] == 0
        assert proc.poll() is None, "the server died"
        print(f"{REQUESTS} requests in {elapsed:.1f} s: {statuses.count(200)} x 200, {statuses.count(503)} x 503; "
              f"RSS {rss_before / 2**20:.0f} -> {rss_after / 2**20:.0f} MiB")
