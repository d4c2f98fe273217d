"""`srgan serve`: the HTTP API and web page (FastAPI under uvicorn), on loopback by default."""

from __future__ import annotations

import argparse
import ipaddress
import logging

from .options import add_device_and_precision, error

HELP = "serve an HTTP API and a web page for upscaling (needs the 'serve' extra)"
MISSING_EXTRA = ("srgan serve needs the optional 'serve' dependencies (fastapi, uvicorn, python-multipart): "
                 "pip install 'srgan[serve]'")

log = logging.getLogger(__name__)


def add_parser(sub: argparse._SubParsersAction) -> None:
    from ..registry import bundled
    from ..serve.settings import SERVE_MAX_PIXELS, UPLOAD_GRACE_S

    p = sub.add_parser(
        "serve", help=HELP,
        description=HELP + ". GET / is the page; POST /v1/upscale, GET /v1/models, GET /healthz; OpenAPI docs "
                           "at /docs. The first Ctrl-C or SIGTERM stops accepting and lets the jobs in flight "
                           "finish within --shutdown-timeout (exit 0); a second one stops at once (exit 1). Exit "
                           "codes: 1 could not start (port in use...) or forced stop, 2 usage error.",
    )
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1, this machine only; 0.0.0.0 exposes it, "
                        "without authentication)")
    p.add_argument("--port", type=int, default=8000, help="TCP port (default 8000)")
    p.add_argument("-m", "--model", dest="models", action="append", metavar="NAME|PATH",
                   help=f"offer this model (repeatable; the first is the default); default: all bundled "
                        f"({', '.join(bundled())})")
    p.add_argument("--max-upload-mb", type=float, default=20.0, metavar="MB",
                   help="largest uploaded file in MiB, refused with 413 while it streams (default 20)")
    p.add_argument("--max-pixels", type=int, default=SERVE_MAX_PIXELS, metavar="N",
                   help=f"largest input in pixels, refused with 413 from its header (default {SERVE_MAX_PIXELS:,} "
                        "= 2048x2048)")
    p.add_argument("--jobs", dest="workers", type=int, default=1, metavar="N",
                   help="inference jobs run at once (default 1: one per CPU device is fastest)")
    p.add_argument("--workers", dest="workers", type=int, help=argparse.SUPPRESS)  # the old name of --jobs
    p.add_argument("--queue", type=int, default=4, metavar="N",
                   help="jobs that may wait for a worker; more get 503 with Retry-After (default 4)")
    p.add_argument("--upload-timeout", type=float, default=120.0, metavar="S",
                   help="a request body must arrive within S seconds, else 408 (default 120)")
    p.add_argument("--min-upload-rate", type=float, default=8.0, metavar="KIB",
                   help=f"an upload slower than KIB KiB/s on average (after its first {UPLOAD_GRACE_S:g} s) is cut "
                        "with 408; 0 = no rate check (default 8)")
    p.add_argument("--header-timeout", type=float, default=10.0, metavar="S",
                   help="a request line and headers must arrive within S seconds, else 408 (default 10)")
    p.add_argument("--shutdown-timeout", type=float, default=10.0, metavar="S",
                   help="on SIGTERM / Ctrl-C, seconds the jobs in flight get to finish before they are "
                        "answered 503 (default 10)")
    add_device_and_precision(p)
    p.add_argument("-t", "--tile", type=int, default=0, metavar="N",
                   help="LR tile size in pixels; 0 = automatic from free memory (default)")
    p.set_defaults(func=run)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def run(args: argparse.Namespace) -> int:
    def err(msg: str) -> None:
        error("serve", msg)

    try:
        from ..serve.app import create_app
        from ..serve.server import serve
    except ImportError as exc:
        err(f"{MISSING_EXTRA} ({exc})")
        return 2
    from ..serve.settings import MIB, ServeSettings, parse_model_specs

    if not 0 < args.port < 65536:
        err(f"--port must be in 1..65535, got {args.port}")
        return 2
    for flag, value in (("--max-upload-mb", args.max_upload_mb), ("--upload-timeout", args.upload_timeout),
                        ("--header-timeout", args.header_timeout), ("--shutdown-timeout", args.shutdown_timeout)):
        if not 0 < value < float("inf"):
            err(f"{flag} must be > 0, got {value}")
            return 2
    if not 0 <= args.min_upload_rate < float("inf"):
        err(f"--min-upload-rate must be >= 0, got {args.min_upload_rate}")
        return 2
    try:
        models = parse_model_specs(args.models) if args.models else None
        settings = ServeSettings(
            **({"models": models, "default_model": next(iter(models))} if models else {}),
            device=args.device, precision=args.precision, workers=args.workers,
            queue_size=args.queue, max_upload_bytes=int(args.max_upload_mb * MIB), max_pixels=args.max_pixels,
            tile=args.tile, upload_timeout_s=args.upload_timeout, min_upload_rate=args.min_upload_rate * 1024,
        )
        app = create_app(settings)
    except ValueError as exc:
        err(str(exc).replace("queue_size", "--queue").replace("max_pixels", "--max-pixels")
            .replace("workers", "--jobs").replace("tile ", "--tile "))
        return 2
    if not _is_loopback(args.host):
        log.warning("listening on %s: anyone who can reach this machine can use the service (no authentication)",
                    args.host)
    shown = f"[{args.host}]" if ":" in args.host else args.host
    print(f"srgan serve: http://{shown}:{args.port}/  (models: {', '.join(settings.models)}; "
          f"{settings.workers} worker(s), queue {settings.queue_size}; Ctrl-C to stop)", flush=True)
    return serve(app, args.host, args.port, shutdown_timeout_s=args.shutdown_timeout,
                 head_timeout_s=args.header_timeout)
