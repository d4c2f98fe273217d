"""Soak test of `srgan serve`: thousands of mixed requests against a real server on loopback.

Starts `python -m srgan serve` on 127.0.0.1 (a tiny random-weight x4 model made here, or
--model), then sends --requests requests from a pool of --clients threads, more than the server's
workers + queue: good images (sizes, formats, outscales), bad ones (text, empty, truncated, bad
parameters, no file, wrong content type), oversized ones (over the upload limit, over the pixel
limit), and a few GETs. It checks that
- every answer is 200, the 4xx its request deserves, or 503 busy (with Retry-After): nothing else;
- every request got exactly one answer; each 200 image names its own request and has the right
  size; the server ran each job once (its completed-job count grew by exactly the number of
  answers that needed a worker);
- the server's resident memory and open descriptors stay flat: both are sampled every --sample-s
  seconds, and after the clients have gone the descriptors must come back to where they started.
Prints a table of the samples and a JSON summary; --figure writes the RSS/fd curve (matplotlib).
Exit status 0 when every check passes, 1 otherwise. Every request has a timeout and the whole run
a deadline, so it stops by itself.

    .venv/bin/python benchmarks/serve_soak.py --requests 2000 --clients 8 --figure docs/serve_soak.png
"""

from __future__ import annotations

import argparse
import io
import json
import os
import queue
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

UPLOAD_LIMIT_MB = 0.25  # server --max-upload-mb: oversized uploads stay cheap to send
MAX_PIXELS = 96 * 96  # server --max-pixels
# Resident memory may grow this much from the end of the warm-up to the end of the run.
RSS_GROWTH_LIMIT_MIB = 40.0
# (kind, weight): what the mix is made of. "job" kinds need a worker to decode the upload.
MIX = {"good": 55, "bad_text": 5, "bad_empty": 3, "bad_truncated": 5, "bad_param": 6, "bad_nofile": 3,
       "bad_ctype": 3, "oversized_bytes": 6, "oversized_pixels": 6, "get_health": 4, "get_models": 4}
EXPECTED = {"good": 200, "bad_text": 415, "bad_empty": 400, "bad_truncated": 400, "bad_param": 422,
            "bad_nofile": 422, "bad_ctype": 415, "oversized_bytes": 413, "oversized_pixels": 413,
            "get_health": 200, "get_models": 200}
BUSY_PAUSE_S = 0.2  # the longest pause of a client after a 503 before its next request
JOB_KINDS = {"good", "bad_text", "bad_empty", "bad_truncated", "oversized_pixels"}


@dataclass(frozen=True)
class Planned:
    """One request of the mix: its kind and, for a good one, the input size, outscale and format."""

    index: int
    kind: str
    size: tuple[int, int] = (0, 0)
    outscale: int | None = None
    fmt: str = "png"

    @property
    def name(self) -> str:
        return f"soak{self.index:05d}"

    @property
    def out_size(self) -> tuple[int, int]:
        s = self.outscale or 4
        return self.size[0] * s, self.size[1] * s


def plan(n: int, seed: int) -> list[Planned]:
    rng = random.Random(seed)
    kinds = rng.choices(list(MIX), weights=list(MIX.values()), k=n)
    return [Planned(i, kind, (rng.randint(8, 48), rng.randint(8, 48)), rng.choice([None, 2, 3]),
                    rng.choice(["png", "jpg", "webp"])) for i, kind in enumerate(kinds)]


def image_bytes(w: int, h: int, seed: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)).save(buf, "PNG")
    return buf.getvalue()


def send(client, p: Planned):
    """Send planned request `p` with an httpx client; return the response."""
    if p.kind == "get_health":
        return client.get("/healthz")
    if p.kind == "get_models":
        return client.get("/v1/models")
    if p.kind == "bad_ctype":
        return client.post("/v1/upscale", content=b'{"file": "x"}', headers={"content-type": "application/json"})
    if p.kind == "bad_nofile":
        return client.post("/v1/upscale", files={"format": (None, "png")})
    fields: dict[str, str] = {}
    if p.kind == "good":
        content = image_bytes(*p.size, seed=p.index)
        fields = {"format": p.fmt, **({"outscale": str(p.outscale)} if p.outscale else {})}
    elif p.kind == "bad_text":
        content = b"this is not an image. " * 20
    elif p.kind == "bad_empty":
        content = b""
    elif p.kind == "bad_truncated":
        content = image_bytes(32, 32, seed=p.index)[:300]
    elif p.kind == "bad_param":
        content = image_bytes(16, 16, seed=p.index)
        fields = random.Random(p.index).choice([{"outscale": "0"}, {"outscale": "99"}, {"format": "gif"},
                                                {"model": "nope"}])
    elif p.kind == "oversized_bytes":
        content = os.urandom(int(UPLOAD_LIMIT_MB * 2**20) + 50_000)
    else:  # oversized_pixels: a few hundred bytes declaring 128x128 > MAX_PIXELS
        buf = io.BytesIO()
        Image.new("RGB", (128, 128)).save(buf, "PNG")
        content = buf.getvalue()
    return client.post("/v1/upscale", files={"file": (f"{p.name}.png", content, "image/png")}, data=fields)


def check_answer(p: Planned, status: int, headers, body: bytes) -> str | None:
    """None if the answer is right for `p`, else why not."""
    upscale = not p.kind.startswith("get_")
    if upscale and status == 503:
        if headers.get("retry-after", "").isdigit() and b'"busy"' in body:
            return None
        return f"503 without Retry-After or code busy: {body[:200]!r}"
    if status != EXPECTED[p.kind]:
        return f"status {status}, expected {EXPECTED[p.kind]}: {body[:200]!r}"
    if status != 200:
        if not headers.get("content-type", "").startswith("application/json") or b'"error"' not in body:
            return f"error answer is not the JSON error shape: {body[:200]!r}"
        return None
    if p.kind == "good":
        if f'filename="{p.name}_x' not in headers.get("content-disposition", ""):
            return f"answer for another request: {headers.get('content-disposition')}"
        size = Image.open(io.BytesIO(body)).size
        if size != p.out_size:
            return f"image {size}, expected {p.out_size}"
    return None


def proc_sample(pid: int) -> tuple[float, int]:
    """(resident MiB, open descriptors) of process `pid`."""
    rss = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1]) * 1024
    return rss / 2**20, len(os.listdir(f"/proc/{pid}/fd"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(model: str, workers: int, queue_size: int, log_path: Path,
                 spool_parent: Path) -> tuple[subprocess.Popen, str]:
    import httpx

    port = free_port()
    cmd = [sys.executable, "-m", "srgan", "serve", "--host", "127.0.0.1", "--port", str(port), "-m", model,
           "--workers", str(workers), "--queue", str(queue_size), "--device", "cpu", "--fp32",
           "--max-upload-mb", str(UPLOAD_LIMIT_MB), "--max-pixels", str(MAX_PIXELS)]
    env = {**os.environ, "TMPDIR": str(spool_parent), "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(cmd, stdout=open(log_path, "wb"), stderr=subprocess.STDOUT, env=env)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}:\n{log_path.read_text()}")
        try:
            if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                return proc, base
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"server did not answer within 90 s:\n{log_path.read_text()}")


def stop_server(proc: subprocess.Popen) -> int:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
    return proc.returncode


def soak(requests: int, clients: int, workers: int, queue_size: int, model: str | None, sample_s: float,
         deadline_s: float, seed: int, work: Path) -> dict:
    """Run the soak; return the summary (with "failures": a list of reasons, empty when all is well)."""
    import httpx

    if model is None:
        from srgan.models import Generator, GeneratorConfig, save_generator

        model = str(work / "tiny_x4.safetensors")
        save_generator(Generator(GeneratorConfig(num_blocks=2, channels=8)).eval(), model, recipe={"note": "random"})
    proc, base = start_server(model, workers, queue_size, work / "server.log", work)
    failures: list[str] = []
    samples: list[tuple[float, int, float, int]] = []  # (seconds, requests done, RSS MiB, fds)
    try:
        with httpx.Client(base_url=base, timeout=30) as c:  # warm up: model loaded, caches at working size
            for i in range(8):
                assert c.post("/v1/upscale", files={"file": ("warm.png", image_bytes(32, 32, i), "image/png")}
                              ).status_code == 200
        time.sleep(0.5)
        rss0, fds0 = proc_sample(proc.pid)
        completed0 = httpx.get(f"{base}/healthz", timeout=5).json()["queue"]["completed"]
        planned = plan(requests, seed)
        answers: dict[int, list[tuple[int, str | None]]] = {p.index: [] for p in planned}
        todo: queue.Queue[Planned] = queue.Queue()
        for p in planned:
            todo.put(p)
        lock = threading.Lock()
        done = 0
        start = time.monotonic()

        def client_loop() -> None:  # one keep-alive client per thread, until the plan runs out
            nonlocal done
            pause = random.Random(threading.get_ident())
            with httpx.Client(base_url=base, timeout=30) as client:
                while True:
                    try:
                        p = todo.get_nowait()
                    except queue.Empty:
                        return
                    try:
                        r = send(client, p)
                        result = (r.status_code, check_answer(p, r.status_code, r.headers, r.content))
                    except httpx.HTTPError as exc:
                        result = (0, f"transport error: {type(exc).__name__}: {exc}")
                    with lock:
                        answers[p.index].append(result)
                        done += 1
                    if result[0] == 503:  # a polite client pauses (briefly, to keep the pressure on)
                        time.sleep(pause.uniform(0, BUSY_PAUSE_S))

        stop = threading.Event()

        def sampler() -> None:
            while not stop.wait(sample_s):
                samples.append((time.monotonic() - start, done, *proc_sample(proc.pid)))

        samples.append((0.0, 0, rss0, fds0))
        threads = [threading.Thread(target=client_loop, daemon=True) for _ in range(clients)]
        threads.append(threading.Thread(target=sampler, daemon=True))
        for t in threads:
            t.start()
        for t in threads[:-1]:
            t.join(max(0.0, deadline_s - (time.monotonic() - start)))
        stop.set()
        threads[-1].join(5)
        if any(t.is_alive() for t in threads):
            failures.append(f"the run did not finish within --deadline-s {deadline_s:g}")
        elapsed = time.monotonic() - start
        rss_end, fds_busy = proc_sample(proc.pid)
        samples.append((elapsed, done, rss_end, fds_busy))
        # The clients have closed their connections; the server's side closes within moments.
        settle = time.monotonic() + 15
        fds_end = fds_busy
        while time.monotonic() < settle:
            fds_end = proc_sample(proc.pid)[1]
            if fds_end <= fds0:
                break
            time.sleep(0.25)
        health = httpx.get(f"{base}/healthz", timeout=5).json()

        statuses: Counter[int] = Counter()
        by_kind: dict[str, Counter[int]] = {}
        jobs_answered = 0
        for p in planned:
            got = answers[p.index]
            if len(got) != 1:
                failures.append(f"request {p.index} ({p.kind}): {len(got)} answers")
                continue
            status, problem = got[0]
            statuses[status] += 1
            by_kind.setdefault(p.kind, Counter())[status] += 1
            if problem:
                failures.append(f"request {p.index} ({p.kind}): {problem}")
            if p.kind in JOB_KINDS and status != 503:
                jobs_answered += 1
        jobs_run = health["queue"]["completed"] - completed0
        if jobs_run != jobs_answered:
            failures.append(f"the server ran {jobs_run} jobs for {jobs_answered} answers that needed one")
        if health["queue"]["running"] or health["queue"]["waiting"]:
            failures.append(f"jobs left behind: {health['queue']}")
        growth = max(s[2] for s in samples[len(samples) // 10:]) - rss0
        if growth > RSS_GROWTH_LIMIT_MIB:
            failures.append(f"RSS grew {growth:.1f} MiB (limit {RSS_GROWTH_LIMIT_MIB})")
        if fds_end > fds0:
            failures.append(f"open descriptors {fds0} before, {fds_end} after the run")
        if proc.poll() is not None:
            failures.append("the server died")
    finally:
        code = stop_server(proc)
    if code != 0:
        failures.append(f"server exit status {code} after SIGTERM")
    leftovers = [p.name for p in work.glob("srgan-serve-*")]
    if leftovers:
        failures.append(f"spool folder left behind: {leftovers}")
    return {
        "requests": requests, "clients": clients, "workers": workers, "queue": queue_size, "seconds": round(elapsed, 1),
        "statuses": dict(sorted(statuses.items())), "by_kind": {k: dict(sorted(v.items())) for k, v in by_kind.items()},
        "jobs_run": jobs_run, "rss_mib": {"start": round(rss0, 1), "max": round(max(s[2] for s in samples), 1),
                                          "end": round(rss_end, 1)},
        "fds": {"start": fds0, "max": max(s[3] for s in samples), "after": fds_end},
        "samples": [[round(t, 1), n, round(r, 1), f] for t, n, r, f in samples], "failures": failures,
    }


def table(summary: dict, rows: int = 11) -> str:
    """The samples as a Markdown table, about `rows` rows evenly spread over the run."""
    samples = summary["samples"]
    picks = sorted({round(i * (len(samples) - 1) / (rows - 1)) for i in range(rows)})
    lines = ["| seconds | requests answered | server RSS (MiB) | open fds |", "|---:|---:|---:|---:|"]
    lines += [f"| {samples[i][0]:.0f} | {samples[i][1]} | {samples[i][2]:.1f} | {samples[i][3]} |" for i in picks]
    return "\n".join(lines)


def figure(summary: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t, n, rss, fds = zip(*summary["samples"])
    fig, ax = plt.subplots(figsize=(6.4, 3.0), dpi=100)
    ax.plot(n, rss, color="tab:blue")
    ax.set_xlabel("requests answered")
    ax.set_ylabel("server RSS (MiB)", color="tab:blue")
    ax.set_ylim(0, max(rss) * 1.2)
    ax2 = ax.twinx()
    ax2.plot(n, fds, color="tab:orange")
    ax2.set_ylabel("open descriptors", color="tab:orange")
    ax2.set_ylim(0, max(fds) * 1.5)
    ax.set_title(f"srgan serve soak: {summary['requests']} requests, {summary['clients']} clients, "
                 f"{summary['workers']} worker + queue {summary['queue']}", fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--requests", type=int, default=2000, help="requests to send (default 2000)")
    ap.add_argument("--clients", type=int, default=8, help="client threads (default 8)")
    ap.add_argument("--workers", type=int, default=1, help="server --workers (default 1)")
    ap.add_argument("--queue", type=int, default=4, help="server --queue (default 4)")
    ap.add_argument("--model", help="weights the server offers (default: a tiny random-weight x4 model)")
    ap.add_argument("--sample-s", type=float, default=1.0, help="seconds between RSS/fd samples (default 1)")
    ap.add_argument("--deadline-s", type=float, default=1800, help="the whole run stops after this (default 1800)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=Path, help="also write the summary here")
    ap.add_argument("--figure", type=Path, help="write the RSS/fd curve here (PNG, needs matplotlib)")
    args = ap.parse_args(argv)
    if args.clients <= args.workers + args.queue:
        ap.error("--clients must exceed --workers + --queue, so that some requests find the server full")
    with tempfile.TemporaryDirectory(prefix="srgan-soak-") as tmp:
        summary = soak(args.requests, args.clients, args.workers, args.queue, args.model, args.sample_s,
                       args.deadline_s, args.seed, Path(tmp))
    print(table(summary))
    brief = {k: v for k, v in summary.items() if k != "samples"}
    brief["failures"] = summary["failures"][:20] + ([f"... {len(summary['failures']) - 20} more"]
                                                     if len(summary["failures"]) > 20 else [])
    print(json.dumps(brief, indent=1))
    if args.json:
        args.json.write_text(json.dumps(summary, indent=1))
    if args.figure:
        figure(summary, args.figure)
    return 1 if summary["failures"] else 0


if __name__ == "__main__":
    sys.exit(main())
