"""A short soak of a real `srgan serve` process on loopback (127.0.0.1 only).

Runs benchmarks/serve_soak.py with 200 mixed requests (good, bad, oversized; 8 clients against
1 worker + a queue of 4): every answer is 200, the right 4xx or 503 with Retry-After, none is
lost or duplicated, every image has the right size, memory and descriptors stay flat, and the
server exits 0 on SIGTERM leaving no spool folder. The 2,000-request run and its figures are in
docs/robustness.md. Stops by itself: every request has a timeout and the run a deadline.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # `make test` runs it; the quick loop leaves it out

pytest.importorskip("httpx", reason="httpx is not installed")
pytest.importorskip("uvicorn", reason="the 'serve' extra (uvicorn) is not installed")

SOAK = Path(__file__).resolve().parents[1] / "benchmarks" / "serve_soak.py"
REQUESTS = 200


def test_short_soak_mixed_requests_all_answered_right_and_memory_flat(tmp_path):
    out = tmp_path / "soak.json"
    run = subprocess.run([sys.executable, str(SOAK), "--requests", str(REQUESTS), "--deadline-s", "240",
                          "--sample-s", "0.5", "--json", str(out)], capture_output=True, text=True, timeout=300)
    assert out.exists(), run.stdout[-3000:] + run.stderr[-3000:]
    summary = json.loads(out.read_text())
    assert summary["failures"] == [] and run.returncode == 0, summary["failures"][:20]
    statuses = summary["statuses"]
    assert sum(statuses.values()) == REQUESTS  # one answer each
    assert set(statuses) <= {"200", "400", "413", "415", "422", "503"}
    assert statuses.get("200", 0) >= 10 and statuses.get("503", 0) >= 1  # served, and beyond capacity
    assert summary["fds"]["after"] <= summary["fds"]["start"]
