"""The FastAPI application: the web page, `POST /v1/upscale`, the model list and a health check.

`create_app(settings)` builds a self-contained app (its own models, worker pool and limits), so
tests run it in-process and `srgan serve` hands it to uvicorn.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import re
import shutil
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from importlib import resources
from typing import Annotated, Any, Literal, TypeVar

from fastapi import FastAPI, File, Form, Request, UploadFile
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel

from .. import __version__
from ..device import select_device
from ..images import ImageError, Picture, decode_image, encode_image
from ..inference.api import upscale_picture
from ..models import WeightsError
from .errors import ApiError, error_response, install_error_handlers
from .limits import (
    BodyLimitMiddleware,
    BusyMiddleware,
    HeadLimitMiddleware,
    shutting_down_response,
)
from .pool import QueueFull, ShuttingDown, WorkerPool
from .registry import ModelRegistry
from .settings import MAX_OUTSCALE, ServeSettings, describe_bytes

log = logging.getLogger(__name__)
T = TypeVar("T")

# format field -> (encode_image format, content type, file extension)
OUTPUT_FORMATS = {"png": ("PNG", "image/png", "png"), "jpg": ("JPEG", "image/jpeg", "jpg"),
                  "jpeg": ("JPEG", "image/jpeg", "jpg"), "webp": ("WEBP", "image/webp", "webp")}
UPSCALE_PATH = "/v1/upscale"
MAX_NAME_CHARS = 100  # longest model name a request may send
# The page is one file with inline CSS and JS; this policy also proves it needs nothing else.
PAGE_CSP = ("default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
            "img-src 'self' blob: data:; connect-src 'self'; base-uri 'none'; form-action 'none'")


class ErrorDetail(BaseModel):
    code: str
    message: str


class ErrorBody(BaseModel):
    """Every error answer has this shape."""

    error: ErrorDetail


class ModelInfo(BaseModel):
    name: str
    scale: int | None
    description: str
    loaded: bool
    detail: bool  # whether the `detail` dial (its output blended with its PSNR base's) applies


class ModelList(BaseModel):
    default: str
    models: list[ModelInfo]


class Health(BaseModel):
    status: str
    version: str
    device: str
    models_loaded: list[str]
    queue: dict[str, int]
    limits: dict[str, int | float]


def _error_docs(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {status: {"model": ErrorBody} for status in statuses}


def _safe_stem(filename: str | None) -> str:
    """A file name stem safe for a Content-Disposition header (ASCII, no path, <= 64 chars)."""
    stem = (filename or "").replace("\\", "/").rsplit("/", 1)[-1].rsplit(".", 1)[0]
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", stem).strip("._")[:64]
    return stem or "image"


def _upload_name(filename: str | None) -> str:
    """The uploaded file's name as shown in messages (no path, printable, <= 100 chars)."""
    name = (filename or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if ch.isprintable())[:100]
    return f"file {name!r}" if name else "file"


class ClientGone(Exception):
    """The client closed the connection while its job waited or ran."""


async def _disconnected(request: Request) -> None:
    """Return when the client goes away. The body is read by now, so `receive` only reports that."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


async def run_for(request: Request, pool: WorkerPool, job: Callable[[], T]) -> T:
    """`pool.run(job)` for as long as the client is there and the server is not past its shutdown deadline.

    A client that goes away gets its job dropped if it is still queued (raises ClientGone); at the
    shutdown deadline, ShuttingDown. A running job cannot be interrupted: its thread finishes and
    the result is thrown away.
    """
    work = asyncio.ensure_future(pool.run(job))
    gone = asyncio.ensure_future(_disconnected(request))
    stop = asyncio.ensure_future(pool.past_deadline())
    try:
        await asyncio.wait({work, gone, stop}, return_when=asyncio.FIRST_COMPLETED)
    finally:  # also when this request is cancelled: the job is dropped if no worker took it yet
        for task in (work, gone, stop):
            task.cancel()
    if work.done() and not work.cancelled():
        return work.result()
    if gone.done():
        raise ClientGone
    raise ShuttingDown


def image_error(exc: ImageError) -> ApiError:
    """Map decode_image's one-line reasons to HTTP: too many pixels 413, not an image 415, else 400."""
    message = str(exc)
    if "exceeds the limit" in message or "too large" in message:
        return ApiError(413, "image_too_large", message)
    if "not an image or unsupported format" in message:
        return ApiError(415, "unsupported_media_type", message)
    return ApiError(400, "bad_image", message)


def create_app(settings: ServeSettings | None = None, **overrides: Any) -> FastAPI:
    """Build the app. `overrides` are ServeSettings fields (e.g. models={"tiny": "tiny.safetensors"}).

    Raises ValueError for bad settings (unknown device, no models...). Models load on first use.
    """
    if settings is None:
        settings = ServeSettings(**overrides)
    elif overrides:
        settings = dataclasses.replace(settings, **overrides)
    device = select_device(settings.device)
    registry = ModelRegistry(settings.models, device)
    pool = WorkerPool(settings.workers, settings.queue_size)
    page = (resources.files("srgan") / "assets" / "serve.html").read_text(encoding="utf-8")

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        log.info("srgan serve: models %s (default %s) on %s, %d worker(s), queue %d, max upload %s, "
                 "max %d pixels", ", ".join(registry.names), settings.default_model, device, settings.workers,
                 settings.queue_size, describe_bytes(settings.max_upload_bytes), settings.max_pixels)
        # Large uploads are spooled by Starlette to tempfile's default folder: point it at a
        # private (0700) folder for the server's lifetime and remove it, with anything left, at exit.
        private = tempfile.mkdtemp(prefix="srgan-serve-")
        app.state.spool_dir = private
        previous, tempfile.tempdir = tempfile.tempdir, private
        try:
            yield
        finally:
            tempfile.tempdir = previous
            shutil.rmtree(private, ignore_errors=True)
            pool.shutdown()

    app = FastAPI(
        title="srgan", version=__version__, lifespan=lifespan,
        description="Photo-realistic single-image super-resolution (SRGAN) over HTTP. "
                    "Errors are JSON: {\"error\": {\"code\": ..., \"message\": ...}}.",
    )
    app.state.settings = settings
    app.state.registry = registry
    app.state.pool = pool
    install_error_handlers(app)
    # Added last = outermost: an oversized head is refused first, then a full (or stopping) pool
    # refuses an upload before its body is read at all, then the body is held to its limits.
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes, file_limit=settings.max_upload_bytes,
                       timeout_s=settings.upload_timeout_s, min_rate=settings.min_upload_rate,
                       grace_s=settings.upload_grace_s, stop_deadline=lambda: pool.shutdown_deadline)
    app.add_middleware(BusyMiddleware, is_full=pool.is_full, retry_after=pool.retry_after, paths=(UPSCALE_PATH,),
                       is_stopping=lambda: pool.shutting_down)
    app.add_middleware(HeadLimitMiddleware)

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def index() -> HTMLResponse:
        """The upload page: one self-contained HTML file, no external resources."""
        return HTMLResponse(page, headers={"Content-Security-Policy": PAGE_CSP, "Cache-Control": "no-cache"})

    @app.get("/healthz", response_model=Health, summary="Liveness, queue state and limits")
    async def healthz() -> dict[str, Any]:
        return {
            "status": "shutting_down" if pool.shutting_down else "ok", "version": __version__, "device": str(device),
            "models_loaded": registry.loaded,
            "queue": {"workers": pool.workers, "running": pool.running, "waiting": pool.waiting,
                      "capacity": pool.capacity, "completed": pool.completed, "dropped": pool.dropped},
            "limits": {"max_upload_bytes": settings.max_upload_bytes, "max_pixels": settings.max_pixels,
                       "max_outscale": MAX_OUTSCALE},
        }

    @app.get("/v1/models", response_model=ModelList, summary="The models offered, with scale and description")
    async def models() -> dict[str, Any]:
        return {"default": settings.default_model, "models": [registry.describe(n) for n in registry.names]}

    @app.post(
        UPSCALE_PATH, response_class=Response, summary="Upscale one image",
        responses={200: {"content": {"image/png": {}, "image/jpeg": {}, "image/webp": {}},
                         "description": "The upscaled image; X-Srgan-* headers give model, sizes and seconds."},
                   **_error_docs(400, 408, 413, 415, 422, 431, 500, 503)},
    )
    async def upscale(
        request: Request,
        file: Annotated[UploadFile, File(description="the image (PNG, JPEG, WebP, TIFF, BMP, GIF)")],
        model: Annotated[str | None, Form(max_length=MAX_NAME_CHARS,
                                          description="a name from /v1/models (default: the server's default)")] = None,
        outscale: Annotated[float | None, Form(gt=0, le=MAX_OUTSCALE, allow_inf_nan=False,
                                               description="final scale factor (default: the model's scale)")] = None,
        format: Annotated[Literal["png", "jpg", "jpeg", "webp"], Form(description="output format")] = "png",
        detail: Annotated[float | None, Form(ge=0, le=1, allow_inf_nan=False,
                                             description="0-1, for models whose /v1/models entry has detail: "
                                                         "0 = their PSNR base, 1 = the model itself")] = None,
    ) -> Response:
        """Upscale the uploaded image and answer with the image bytes."""
        name = _upload_name(file.filename)
        model_name = model or settings.default_model
        if model_name not in registry:
            raise ApiError(422, "invalid_parameter",
                           f"model: unknown model {model_name!r}; choose one of {', '.join(registry.names)}",
                           fields=[{"field": "model", "reason": "unknown model"}])
        if detail is not None and not registry.has_detail(model_name):
            raise ApiError(422, "invalid_parameter", f"detail: model {model_name!r} has no detail dial "
                           f"(models with one: {', '.join(n for n in registry.names if registry.has_detail(n)) or 'none'})",
                           fields=[{"field": "detail", "reason": "not supported by this model"}])
        try:
            data = await file.read()
        finally:
            await file.close()
        if len(data) > settings.max_upload_bytes:
            raise ApiError(413, "upload_too_large", f"{name}: {len(data):,} bytes is over the limit of "
                           f"{describe_bytes(settings.max_upload_bytes)} per file (server option --max-upload-mb)")
        fmt, content_type, ext = OUTPUT_FORMATS[format]

        def job() -> tuple[bytes, Picture, Picture, int]:
            pic = decode_image(data, name, settings.max_pixels)
            net = registry.get(model_name, detail)
            result = upscale_picture(pic, net, outscale, settings.tile, None, settings.precision)
            return encode_image(result, fmt), pic, result, net.scale

        start = time.perf_counter()
        try:
            body, pic, result, scale = await run_for(request, pool, job)
        except ClientGone:
            log.info("%s: the client went away before its answer (a job no worker had taken is dropped)", name)
            return error_response(499, "client_closed_request", f"{name}: the client closed the connection")
        except ShuttingDown:
            return shutting_down_response()
        except QueueFull:
            seconds = pool.retry_after()
            raise ApiError(503, "busy", f"server busy: every worker and queue slot is taken; retry in {seconds} s",
                           {"Retry-After": str(seconds)}) from None
        except ImageError as exc:
            raise image_error(exc) from None
        except WeightsError as exc:
            log.error("model %s cannot be loaded: %s", model_name, exc)
            raise ApiError(500, "model_unavailable", f"model {model_name!r} cannot be loaded: {exc}") from None
        except MemoryError:
            raise ApiError(500, "out_of_memory", f"{name}: not enough memory to upscale this image") from None
        except Exception as exc:
            log.exception("upscaling %s failed", name)
            raise ApiError(500, "internal_error", f"{name}: upscaling failed ({type(exc).__name__}); "
                           "the server logged it") from None
        seconds = time.perf_counter() - start
        (w, h), (ow, oh) = pic.size, result.size
        log.info("%s %dx%d -> %dx%d with %s in %.2f s", name, w, h, ow, oh, model_name, seconds)
        headers = {
            "Content-Disposition": f'inline; filename="{_safe_stem(file.filename)}_x{outscale or scale:g}.{ext}"',
            "X-Srgan-Model": model_name, "X-Srgan-Input-Size": f"{w}x{h}", "X-Srgan-Output-Size": f"{ow}x{oh}",
            "X-Srgan-Seconds": f"{seconds:.3f}",
        }
        if pic.notes:
            headers["X-Srgan-Notes"] = "; ".join(pic.notes).encode("ascii", "replace").decode()
        return Response(body, media_type=content_type, headers=headers)

    return app
