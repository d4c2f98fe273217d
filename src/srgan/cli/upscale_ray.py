"""`srgan upscale ... --ray [ADDRESS]`: the batch on a Ray cluster (progress, report, manifest)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from tqdm import tqdm

from .options import error

if TYPE_CHECKING:
    from ..inference.batch import FileJob, FileResult

MANIFEST = "srgan-manifest.json"


def add_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("distributed (needs the srgan[ray] extra)")
    g.add_argument("--ray", nargs="?", const="", default=None, metavar="ADDRESS",
                   help="run the batch on Ray actors: without ADDRESS on a new local Ray instance, with one "
                        "(auto, HOST:6379, ray://HOST:10001) on that cluster; inputs, outputs and the model "
                        f"file must be on storage every node sees. Writes OUT/{MANIFEST}")
    g.add_argument("--actors", dest="workers", type=int, metavar="N",
                   help="Ray actors, each with its own copy of the model (default: one per GPU of the cluster, "
                        "or one per --worker-cpus CPUs)")
    g.add_argument("--workers", dest="workers", type=int, help=argparse.SUPPRESS)  # the old name of --actors
    g.add_argument("--worker-cpus", type=float, default=1.0, metavar="C",
                   help="CPUs (and torch threads) per CPU actor (default 1)")


def _manifest(path: Path, results: list[FileResult], not_done: list[str], meta: dict) -> None:
    from ..files import atomic_write

    def entries(status: str, key: str) -> list[dict]:
        return [{"input": str(r.src), key: str(r.output if key == "output" else r.error)}
                for r in results if r.status == status]

    doc = dict(meta, written=entries("written", "output"), skipped=entries("skipped", "output"),
               failed=entries("failed", "error"), not_done=not_done)
    atomic_write(path, lambda tmp: Path(tmp).write_text(json.dumps(doc, indent=1, ensure_ascii=False)))


def run_on_ray(args: argparse.Namespace, files: list[Path], missing: list[str], job: FileJob) -> int:
    from ..inference.batch import FileResult

    """Exit code as the single-process CLI's: 0 all done, 1 some failed, 2 usage, 130 interrupted."""
    from ..inference import ray_batch

    def err(msg: str) -> None:
        error("upscale", msg)

    if args.workers is not None and args.workers < 1 or args.worker_cpus <= 0:
        err("--workers and --worker-cpus must be positive")
        return 2
    opts = ray_batch.RayOptions(args.ray or None, args.workers, args.worker_cpus, args.device)
    results = [FileResult(Path(m.rsplit(": ", 1)[0]), "failed", error=m) for m in missing]
    rows, known = ray_batch.plan(files, job)
    started = time.perf_counter()
    interrupted = False
    bar = tqdm(total=len(files), desc="images", unit="img", disable=args.quiet, dynamic_ncols=True)

    def record(result: FileResult) -> None:
        results.append(result)
        bar.update()
        if result.status == "failed":
            err(result.error)
        elif not args.quiet:
            for note in result.notes:
                tqdm.write(f"{result.src}: note: {note}", file=sys.stderr)

    try:
        for result in known:
            record(result)
        with ray_batch.connect(opts.address):
            for result in ray_batch.upscale_on_ray(rows, job, args.model, opts, args.detail):
                record(result)
    except ray_batch.RayUnavailable as exc:
        bar.close()
        err(str(exc))
        return 2
    except KeyboardInterrupt:
        interrupted = True  # Ray has shut down: what the workers wrote is all there is
        seen = {str(r.src) for r in results}
        for result in ray_batch.finished_unreported([r for r in rows if r["src"] not in seen], job):
            record(result)
    finally:
        bar.close()
        ray_batch.remove_stale_temp_files(job, files)
    seconds = time.perf_counter() - started
    counts = {s: sum(r.status == s for r in results) for s in ("written", "skipped", "failed")}
    where = job.out.parent if job.single_file else job.out
    manifest = where / MANIFEST
    reported = {r.src for r in results}
    meta = {"model": str(args.model), "ray": args.ray or "local", "workers": args.workers, "interrupted": interrupted,
            "seconds": round(seconds, 3), "total": len(files) + len(missing)} | counts
    _manifest(manifest, results, [str(f) for f in files if f not in reported], meta)
    if interrupted:
        err(f"interrupted; {counts['written']} finished output(s) kept, none partial "
            f"(rerun with --skip-existing to resume; {manifest} lists them)")
        return 130
    if not args.quiet:
        rate = counts["written"] / seconds if seconds > 0 else 0.0
        print(f"{counts['written']} image(s) written to {where}"
              + (f", {counts['skipped']} skipped" if counts["skipped"] else "")
              + (f", {counts['failed']} failed" if counts["failed"] else "")
              + f" in {seconds:.1f} s ({rate:.2f} img/s); manifest {manifest}")
        failures = [r for r in results if r.status == "failed"]
        for r in failures[:20]:
            print(f"  failed: {r.error}")
        if len(failures) > 20:
            print(f"  ... and {len(failures) - 20} more in the manifest")
    return 1 if counts["failed"] else 0
