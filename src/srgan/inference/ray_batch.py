"""Batch upscaling over a Ray cluster (`srgan upscale --ray`; needs the optional extra srgan[ray]).

The driver lists the inputs and streams them, one file per row, through Ray Data to a fixed
pool of actors. Each actor loads the model once and runs the same per-file function as the
single-process CLI (`batch.upscale_file`): it reads its input from, and writes its output
atomically (temp file + rename) to, a path every node sees, so only file names and small
result rows travel through Ray's object store.

Failures. An input that cannot be read or upscaled comes back as a failed row and never stops
the others. A worker process that dies (OOM kill, segfault, lost node) is restarted by Ray and
its task retried on it; an output the dead attempt had already renamed into place is recognised
by its inode (see `upscale_file`'s `prior`) and reported, not written again; temp files it left
are removed at the end. A task that kills its worker on every retry is dropped (Ray Data's
`max_errored_blocks`), and its inputs are reported as failed.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import logging
import os
import queue
import signal
import socket
import threading
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from .batch import FileJob, FileResult, candidate_outputs, upscale_file

# One file per row and, up to this many inputs, one row per block: a retried or dropped task
# then concerns a single file. Beyond it, rows share blocks to keep the driver's per-block
# bookkeeping bounded.
MAX_BLOCKS = 10_000
# Retries of a task whose worker died, before its inputs are reported as failed.
MAX_TASK_RETRIES = 3
# Test hook, the name of a file that arms it. Empty file: the first worker to write an output
# removes it, records the output in <file>.victim and dies hard, as an OOM kill would. A file
# holding an input's name: every worker that starts on that input dies.
KILL_HOOK_ENV = "_SRGAN_TEST_KILL_RAY_WORKER"


@dataclass(frozen=True)
class RayOptions:
    address: str | None = None  # None: start a local Ray instance; else a cluster to join
    workers: int | None = None  # None: one per GPU, or one per worker_cpus CPUs, of the cluster
    worker_cpus: float = 1.0  # CPUs reserved for (and torch threads of) each CPU worker
    device: str = "auto"  # auto: CUDA workers when the cluster has GPUs, else CPU


class RayUnavailable(RuntimeError):
    """Ray is not installed or the cluster cannot host the requested workers."""


def import_ray():
    try:
        import ray
        import ray.data  # noqa: F401  (ray without the data extra lacks pyarrow/pandas)
    except ImportError as exc:
        raise RayUnavailable(f"--ray needs Ray Data: pip install 'srgan[ray]' ({exc})") from None
    return ray


def _check_reachable(address: str | None) -> None:
    """Fail in seconds on a HOST:PORT nobody listens on (ray.init retries it for minutes)."""
    if not address or address == "auto":
        return
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise RayUnavailable(f"--ray {address}: expected auto, HOST:PORT or ray://HOST:PORT")
    try:
        socket.create_connection((host, int(port)), timeout=10).close()
    except OSError as exc:
        raise RayUnavailable(f"cannot join the Ray cluster at {address}: {exc.strerror or exc}") from None


@contextlib.contextmanager
def connect(address: str | None) -> Iterator[None]:
    """Join `address`, or start a local instance; reuse (and leave running) one already joined."""
    ray = import_ray()
    if ray.is_initialized():
        yield
        return
    _check_reachable(address)
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        ray.init(address=address or "local", logging_level=logging.WARNING, log_to_driver=False,
                 include_dashboard=False, configure_logging=True)
    except Exception as exc:  # Ray raises ConnectionError, RuntimeError, ValueError, ... here
        where = f"join the Ray cluster at {address}" if address else "start a local Ray instance"
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise RayUnavailable(f"cannot {where}: {reason}") from None
    # ray.init replaces the caller's SIGTERM handler with a bare sys.exit: restore it, so that
    # SIGTERM still ends the run with a report.
    signal.signal(signal.SIGTERM, handlers[signal.SIGTERM])
    try:
        yield
    finally:
        # A second Ctrl-C or SIGTERM must not break off the shutdown, which stops the workers
        # before the caller looks at what they wrote.
        for sig in handlers:
            signal.signal(sig, signal.SIG_IGN)
        try:
            ray.shutdown()
        finally:
            for sig, handler in handlers.items():
                signal.signal(sig, handler)


def plan(files: Iterable[Path], job: FileJob) -> tuple[list[dict], list[FileResult]]:
    """Rows to send to the workers, and the results known before any work.

    Each row carries the inodes of its possible outputs that exist now (`upscale_file`'s
    `prior`). Decided here: --skip-existing for inputs whose output name does not depend on
    their pixels (no decoding needed), and inputs whose output name another input already
    takes, which the single-process CLI would report as "exists" in its file order.
    """
    folder = job.out.parent if job.single_file else job.out
    present = set(os.listdir(folder)) if folder.is_dir() else set()
    rows: list[dict] = []
    known: list[FileResult] = []
    claimed: dict[str, Path] = {}
    for src in files:
        outputs = candidate_outputs(src, job)
        clash = next((p for p in outputs if p.name in claimed), None)
        if clash is not None:
            known.append(FileResult(src, "failed", error=f"{src}: its output {clash} is also that of "
                                                         f"{claimed[clash.name]}; rename one or upscale it separately"))
            continue
        claimed.update((p.name, src) for p in outputs)
        prior = {}
        for p in outputs:
            if p.name in present:
                with contextlib.suppress(FileNotFoundError):
                    prior[p.name] = os.stat(p).st_ino
        if job.skip_existing and len(outputs) == 1 and outputs[0].name in prior \
                and outputs[0].resolve() != src.resolve():
            known.append(FileResult(src, "skipped", outputs[0]))
            continue
        rows.append({"src": str(src), "prior": json.dumps(prior)})
    return rows, known


def _kill_hook(src: Path, result: FileResult | None) -> None:
    arm = os.environ.get(KILL_HOOK_ENV)
    if not arm:
        return
    try:
        poison = Path(arm).read_text()
    except FileNotFoundError:
        return
    if result is None:
        if poison and src.name == poison:
            os._exit(1)
        return
    if poison or result.status != "written":
        return
    try:
        os.unlink(arm)  # only one worker wins the race for the armed file
    except FileNotFoundError:
        return
    Path(arm + ".victim").write_text(json.dumps({"output": str(result.output),
                                                 "inode": os.stat(result.output).st_ino}))
    os._exit(1)


class _Worker:
    """A Ray actor: loads the model once, then upscales one file per row."""

    def __init__(self, model: str, detail: float | None, device: str, job: FileJob, threads: int | None) -> None:
        import torch

        from .api import load_model

        if threads:
            torch.set_num_threads(threads)
        self.model = load_model(model, device, detail)
        self.job = job

    def __call__(self, batch: dict) -> dict:
        out: dict[str, list[str]] = {"src": [], "status": [], "output": [], "error": [], "notes": []}
        for src, prior in zip(batch["src"], batch["prior"]):
            _kill_hook(Path(src), None)
            result = upscale_file(Path(src), self.model, self.job, prior=json.loads(prior))
            _kill_hook(Path(src), result)
            out["src"].append(str(src))
            out["status"].append(result.status)
            out["output"].append(str(result.output or ""))
            out["error"].append(result.error or "")
            out["notes"].append("\n".join(result.notes))
        return out


def _rows_in_background(ds) -> Iterator:
    """The dataset's rows, then any exception it raised, iterated on a daemon thread.

    The main thread only waits on a queue, where Ctrl-C reliably raises KeyboardInterrupt; in
    Ray Data's own iterator it was sometimes lost, and the run went on to the end. When the
    caller stops early, Ray Data's threads are stopped before this returns: one still polling
    its tasks when `connect` shuts Ray down makes Ray's core worker end the whole process
    (exit code 1, no manifest; seen in CI).
    """
    rows: queue.Queue = queue.Queue()
    end = object()
    lock = threading.Lock()
    iterating = True  # under `lock`: the feeder may still be inside Ray Data's iterator

    def feed() -> None:
        nonlocal iterating
        try:
            try:
                for row in ds.iter_rows():
                    rows.put(row)
            except BaseException as exc:  # handed to the main thread, which decides
                rows.put(exc)
            finally:
                with lock:
                    iterating = False
            rows.put(end)
        except KeyboardInterrupt:  # the stop request below, arriving as the rows ended
            pass

    feeder = threading.Thread(target=feed, name="srgan-ray-rows", daemon=True)
    feeder.start()
    try:
        while True:
            try:
                row = rows.get(timeout=0.2)
            except queue.Empty:
                continue
            if row is end:
                return
            yield row
    finally:
        # Ray Data has no public way to stop a streaming run from another thread, but its
        # iterator is made to take a Ctrl-C: on KeyboardInterrupt it shuts its executor down.
        # So the feeder gets one, as a main thread would, and is waited for.
        with lock:
            if iterating:
                ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(feeder.ident),
                                                           ctypes.py_object(KeyboardInterrupt))
        feeder.join(timeout=30)


def _placement(ray, opts: RayOptions) -> tuple[str, int, dict]:
    """(device inside each worker, number of workers, Ray resources per worker)."""
    cluster = ray.cluster_resources()
    gpus, cpus = int(cluster.get("GPU", 0)), cluster.get("CPU", 0)
    device = opts.device
    if device == "auto":
        device = "cuda" if gpus else "cpu"
    if device.startswith("cuda"):
        # Ray gives each GPU worker its own CUDA_VISIBLE_DEVICES, so inside it the GPU is "cuda".
        workers = opts.workers or gpus
        if not gpus or workers > gpus:
            raise RayUnavailable(f"{workers} GPU worker(s) requested but the Ray cluster has {gpus} GPU(s)")
        return "cuda", workers, {"num_gpus": 1}
    workers = opts.workers or max(1, int(cpus // opts.worker_cpus))
    if workers * opts.worker_cpus > cpus:
        raise RayUnavailable(f"{workers} worker(s) x {opts.worker_cpus:g} CPU(s) requested but the Ray cluster "
                             f"has {cpus:g} CPU(s); lower --workers or --worker-cpus")
    return device, workers, {"num_cpus": opts.worker_cpus}


def upscale_on_ray(rows: list[dict], job: FileJob, model: str, opts: RayOptions,
                   detail: float | None = None) -> Iterator[FileResult]:
    """Upscale `rows` (from `plan`) on the joined Ray cluster; yields each result as it completes.

    model, detail: as for `api.load_model`, which each actor calls once.

    Every row yields exactly one result: those whose task was dropped after MAX_TASK_RETRIES
    come last, as failures. Call inside `connect`.
    """
    ray = import_ray()
    if not rows:
        return
    device, workers, resources = _placement(ray, opts)
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False  # the CLI draws its own, in files
    ctx.print_on_execution_start = False
    ctx.max_errored_blocks = -1  # a poisoned task drops its own inputs, not the run
    logging.getLogger("ray.data").setLevel(logging.ERROR)  # no per-run INFO chatter
    hook = os.environ.get(KILL_HOOK_ENV)
    threads = None if device.startswith("cuda") else max(1, int(opts.worker_cpus))
    ds = ray.data.from_items(rows, override_num_blocks=min(len(rows), MAX_BLOCKS))
    with warnings.catch_warnings():
        # Ray Data has no named parameter for a finite max_task_retries (its default retries
        # forever, so one input that kills its worker would stall the run); pyproject pins
        # ray < 2.64, the release that removes **ray_remote_args.
        warnings.filterwarnings("ignore", message=".*ray_remote_args.* is deprecated")
        ds = ds.map_batches(_Worker, fn_constructor_args=(model, detail, device, job, threads), batch_size=1,
                            # One task per actor at a time: an actor that dies then takes down
                            # (and spends the retries of) only the file it was working on.
                            compute=ray.data.ActorPoolStrategy(size=workers, max_tasks_in_flight_per_actor=1),
                            runtime_env={"env_vars": {KILL_HOOK_ENV: hook}} if hook else None,
                            **resources, max_restarts=-1, max_task_retries=MAX_TASK_RETRIES)
    pending = {row["src"] for row in rows}
    reason = (f"its Ray worker died on each of {MAX_TASK_RETRIES + 1} attempts (out of memory, or a crash "
              "in a decoder?); see the Ray logs")
    for row in _rows_in_background(ds):
        if isinstance(row, ray.exceptions.RayError):
            # The run itself broke (e.g. no actor could start: a model file missing on the nodes).
            lines = [line for line in str(row).splitlines() if line.strip()]
            reason = f"not upscaled, the Ray run stopped: {type(row).__name__}: {lines[-1] if lines else ''}"
            break
        if isinstance(row, BaseException):
            raise row
        pending.discard(row["src"])
        notes = tuple(row["notes"].split("\n")) if row["notes"] else ()
        yield FileResult(Path(row["src"]), row["status"], Path(row["output"]) if row["output"] else None,
                         row["error"] or None, notes)
    for src in sorted(pending):
        yield FileResult(Path(src), "failed", error=f"{src}: {reason}")


def finished_unreported(rows: Iterable[dict], job: FileJob) -> list[FileResult]:
    """Rows whose output a worker renamed into place but whose result never reached the driver.

    For an interrupted run, after Ray has shut down: its outputs are then final, and each is
    told apart from one that existed before the run by its inode, as in `upscale_file`.
    """
    done = []
    for row in rows:
        src, prior = Path(row["src"]), json.loads(row["prior"])
        for path in candidate_outputs(src, job):
            try:
                inode = os.stat(path).st_ino
            except FileNotFoundError:
                continue
            if prior.get(path.name) != inode:
                done.append(FileResult(src, "written", path))
                break
    return done


def remove_stale_temp_files(job: FileJob, srcs: Iterable[Path]) -> int:
    """Delete temp files that killed attempts at these inputs left in the output folder."""
    folder = job.out.parent if job.single_file else job.out
    stems = {p.stem for src in srcs for p in candidate_outputs(src, job)}
    removed = 0
    with contextlib.suppress(FileNotFoundError):
        for entry in os.scandir(folder):
            # files.atomic_write names them ".<stem>.<random><suffix>.tmp"
            name = entry.name
            if name.startswith(".") and name.endswith(".tmp") and name[1:-4].rsplit(".", 2)[0] in stems:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(entry.path)
                    removed += 1
    return removed
