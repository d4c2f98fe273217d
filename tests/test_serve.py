"""`srgan serve` in-process: every endpoint, every error answer, the pool, the limits, the CLI."""

from __future__ import annotations

import asyncio
import io
import re
import threading
import time
import warnings

import numpy as np
import pytest
import torch
from PIL import Image

pytest.importorskip("fastapi", reason="the 'serve' extra (fastapi) is not installed")
pytest.importorskip("httpx", reason="httpx (FastAPI's test client) is not installed")

with warnings.catch_warnings():  # Starlette 1.x prefers httpx2 for its test client; httpx still works
    warnings.filterwarnings("ignore", message=".*httpx2.*")
    from fastapi.testclient import TestClient  # noqa: E402
from serve_support import png_bytes  # noqa: E402

from srgan.cli.main import build_parser, main  # noqa: E402
from srgan.serve import ServeSettings, create_app, parse_model_specs  # noqa: E402
from srgan.serve.limits import BodyLimitMiddleware  # noqa: E402
from srgan.serve.pool import QueueFull, WorkerPool  # noqa: E402
from srgan.serve.registry import ModelRegistry  # noqa: E402


@pytest.fixture
def make_client(tiny_weights):
    """A TestClient on an app offering the tiny random-weight model as "tiny"."""

    def make(**overrides) -> TestClient:
        overrides.setdefault("models", {"tiny": str(tiny_weights)})
        return TestClient(create_app(**overrides))

    return make


@pytest.fixture
def client(make_client) -> TestClient:
    return make_client(max_upload_bytes=256 * 1024, max_pixels=128 * 128)


@pytest.fixture(scope="module")
def small_png() -> bytes:
    rng = np.random.default_rng(0)
    return png_bytes(rng.integers(0, 256, (24, 32, 3), dtype=np.uint8))


def post(client: TestClient, content: bytes, name: str = "photo.png", ctype: str = "image/png", **fields):
    return client.post("/v1/upscale", files={"file": (name, content, ctype)},
                       data={k: str(v) for k, v in fields.items()})


def assert_error(response, status: int, code: str, *words: str) -> str:
    """The stable error shape, with `code`, and a message containing every word."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"} and {"code", "message"} <= set(body["error"])
    assert body["error"]["code"] == code
    message = body["error"]["message"]
    assert isinstance(message, str) and "\n" not in message
    for word in words:
        assert word in message, message
    return message


# --- the page, the model list, health, docs -------------------------------------------------


def test_page_is_one_self_contained_file(client):
    r = client.get("/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    page = r.text
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page), "the page must not load anything remote"
    assert "<script src" not in page and "<link rel=\"stylesheet\"" not in page
    for needed in ('id="drop"', 'type="file"', 'id="model"', 'id="outscale"', 'type="range"', "download",
                   "/v1/models", "/v1/upscale", "<progress"):
        assert needed in page
    csp = r.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "connect-src 'self'" in csp


def test_models_lists_name_scale_description_without_loading(client):
    body = client.get("/v1/models").json()
    assert body["default"] == "tiny"
    assert body["models"] == [{"name": "tiny", "scale": 4, "description": "weights file tiny_x4.safetensors",
                               "loaded": False, "detail": False}]


def test_default_app_offers_the_bundled_models():
    body = TestClient(create_app()).get("/v1/models").json()
    assert body["default"] == "srgan_x4"
    by_name = {m["name"]: m for m in body["models"]}
    assert set(by_name) == {"srresnet_x4", "srgan_x4", "srresnet_x4_real", "srgan_x4_real"}
    assert by_name["srgan_x4_real"]["detail"] and not by_name["srresnet_x4_real"]["detail"]
    assert "real photos" in by_name["srgan_x4_real"]["description"]
    assert all(m["scale"] == 4 and m["description"] and not m["loaded"] for m in by_name.values())


def test_healthz_reports_queue_and_limits(client):
    body = client.get("/healthz").json()
    assert body["status"] == "ok" and body["device"] == "cpu"
    assert body["queue"] == {"workers": 1, "running": 0, "waiting": 0, "capacity": 5, "completed": 0, "dropped": 0}
    assert body["limits"] == {"max_upload_bytes": 256 * 1024, "max_pixels": 128 * 128, "max_outscale": 16.0}


def test_openapi_and_docs(client):
    spec = client.get("/openapi.json").json()
    assert {"/v1/upscale", "/v1/models", "/healthz"} <= set(spec["paths"])
    form_ref = spec["paths"]["/v1/upscale"]["post"]["requestBody"]["content"]["multipart/form-data"]["schema"]["$ref"]
    form = spec["components"]["schemas"][form_ref.rsplit("/", 1)[-1]]
    assert set(form["properties"]) == {"file", "model", "outscale", "format", "detail"} and form["required"] == ["file"]
    docs = client.get("/docs")
    assert docs.status_code == 200 and "/openapi.json" in docs.text  # Swagger UI's own JS/CSS come from a CDN


# --- upscaling ------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt, ctype, pil_format", [("png", "image/png", "PNG"), ("jpg", "image/jpeg", "JPEG"),
                                                    ("webp", "image/webp", "WEBP")])
def test_upscale_returns_the_image_4x(client, small_png, fmt, ctype, pil_format):
    r = post(client, small_png, format=fmt)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == ctype
    out = Image.open(io.BytesIO(r.content))
    assert out.format == pil_format and out.size == (128, 96)
    assert r.headers["content-disposition"] == f'inline; filename="photo_x4.{fmt}"'
    assert r.headers["x-srgan-model"] == "tiny"
    assert r.headers["x-srgan-input-size"] == "32x24" and r.headers["x-srgan-output-size"] == "128x96"
    assert client.get("/v1/models").json()["models"][0]["loaded"] is True


def test_upscale_outscale_and_alpha(client):
    rgba = np.random.default_rng(1).integers(0, 256, (20, 30, 4), dtype=np.uint8)
    r = post(client, png_bytes(rgba), name="../../etc/sprite.png", outscale=2.5)
    assert r.status_code == 200, r.text
    out = Image.open(io.BytesIO(r.content))
    assert out.mode == "RGBA" and out.size == (75, 50)
    assert r.headers["content-disposition"] == 'inline; filename="sprite_x2.5.png"'


def test_model_is_loaded_once_and_shared(tiny_weights, monkeypatch):
    import srgan.serve.registry as registry_module

    calls = []
    real = registry_module.load_model

    def slow_load(*args):
        calls.append(args)
        time.sleep(0.2)
        return real(*args)

    monkeypatch.setattr(registry_module, "load_model", slow_load)
    registry = ModelRegistry({"tiny": str(tiny_weights)}, device=torch.device("cpu"))
    got = []
    threads = [threading.Thread(target=lambda: got.append(registry.get("tiny"))) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1 and len({id(m) for m in got}) == 1 and registry.loaded == ["tiny"]


# --- errors ---------------------------------------------------------------------------------


def test_413_upload_over_the_limit_from_content_length(client):
    r = post(client, b"\x89PNG" + b"0" * (400 * 1024), name="huge.png")
    assert_error(r, 413, "upload_too_large", "over the limit of 262,144 bytes", "--max-upload-mb")


def test_413_upload_over_the_limit_while_streaming(client):
    boundary = "b0undary"
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"huge.png\"\r\n"
            f"Content-Type: image/png\r\n\r\n").encode()

    def body():  # a generator: sent chunked, without Content-Length
        yield head
        for _ in range(64):
            yield b"0" * 16384

    headers = {"content-type": f"multipart/form-data; boundary={boundary}"}
    r = client.post("/v1/upscale", content=body(), headers=headers)
    assert_error(r, 413, "upload_too_large", "more than")


def test_413_file_over_the_limit_inside_the_form_overhead(client):
    r = post(client, b"0" * (256 * 1024 + 10), name="just_over.png")
    assert_error(r, 413, "upload_too_large", "just_over.png", "262,154 bytes")


def test_body_limit_stops_reading_at_the_limit():
    """The middleware cuts the stream off: the app never receives the rest of the body."""
    chunks_sent = 0

    async def receive():
        nonlocal chunks_sent
        chunks_sent += 1
        return {"type": "http.request", "body": b"x" * 1000, "more_body": chunks_sent < 1000}

    async def greedy_app(scope, receive, send):  # reads everything, like a form parser
        while (await receive()).get("more_body"):
            pass
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    sent = []

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/v1/upscale", "headers": []}
    asyncio.run(BodyLimitMiddleware(greedy_app, max_bytes=10_000)(scope, receive, send))
    assert chunks_sent == 11  # 11,000 bytes > 10,000: stop
    assert sent[0]["status"] == 413 and b"upload_too_large" in sent[1]["body"]


def test_413_too_many_pixels(client):
    r = post(client, png_bytes(np.zeros((200, 100, 3), np.uint8)), name="wide.png")
    assert_error(r, 413, "image_too_large", "wide.png", "100x200", "16,384")


@pytest.mark.parametrize("content, name, status, code, reason", [
    (b"just some text", "notes.txt", 415, "unsupported_media_type", "not an image"),
    (b"", "empty.png", 400, "bad_image", "empty file"),
])
def test_not_an_image_or_empty(client, content, name, status, code, reason):
    assert_error(post(client, content, name=name), status, code, name, reason)


def test_400_truncated_image(client, small_png):
    assert_error(post(client, small_png[: len(small_png) // 2], name="cut.png"), 400, "bad_image", "cut.png",
                 "corrupt or truncated")


@pytest.mark.parametrize("fields, field", [
    ({"outscale": 0}, "outscale"), ({"outscale": 17}, "outscale"), ({"outscale": "nan"}, "outscale"),
    ({"outscale": "big"}, "outscale"), ({"format": "gif"}, "format"), ({"model": "nope"}, "model"),
])
def test_422_bad_parameters(client, small_png, fields, field):
    r = post(client, small_png, **fields)
    assert_error(r, 422, "invalid_parameter", f"{field}:")
    assert r.json()["error"]["fields"][0]["field"] == field


def test_422_missing_file(client):
    assert_error(client.post("/v1/upscale", data={"model": "tiny"}), 422, "invalid_parameter", "file:")


def test_404_and_405_are_json(client):
    assert_error(client.get("/nowhere"), 404, "not_found")
    assert_error(client.get("/v1/upscale"), 405, "method_not_allowed")


def test_503_with_retry_after_when_the_queue_is_full(make_client, small_png):
    client = make_client(workers=1, queue_size=0)
    pool = client.app.state.pool
    release = threading.Event()
    holder = threading.Thread(target=lambda: asyncio.run(pool.run(lambda: release.wait(10))))
    holder.start()
    try:
        deadline = time.monotonic() + 5
        while pool.running == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        r = post(client, small_png)
        assert_error(r, 503, "busy", "retry in")
        assert int(r.headers["retry-after"]) >= 1
        assert client.get("/healthz").json()["queue"]["running"] == 1  # health still answers
    finally:
        release.set()
        holder.join(10)
    assert post(client, small_png).status_code == 200


def test_a_failing_request_does_not_take_the_server_down(client, small_png, monkeypatch):
    import srgan.serve.app as app_module

    def explode(*_args, **_kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(app_module, "upscale_picture", explode)
    assert_error(post(client, small_png, name="bad_luck.png"), 500, "internal_error", "bad_luck.png", "RuntimeError")
    monkeypatch.undo()
    assert post(client, small_png).status_code == 200
    assert client.app.state.pool.waiting == 0 and client.app.state.pool.running == 0


# --- the pool and the settings --------------------------------------------------------------


def test_pool_admits_workers_plus_queue_then_refuses():
    async def scenario():
        pool = WorkerPool(workers=1, queue_size=1)
        gate = threading.Event()
        first = asyncio.ensure_future(pool.run(lambda: gate.wait(5) and 1))
        second = asyncio.ensure_future(pool.run(lambda: 2))
        await asyncio.sleep(0.05)
        assert pool.is_full() and pool.running == 1 and pool.waiting == 1
        with pytest.raises(QueueFull):
            await pool.run(lambda: 3)
        second.cancel()  # a waiting job whose request went away frees its slot
        await asyncio.sleep(0.05)
        assert not pool.is_full()
        gate.set()
        assert await first == 1 and await pool.run(lambda: 4) == 4
        assert pool.waiting == 0 and pool.running == 0
        pool.shutdown()

    asyncio.run(scenario())


def test_settings_validation(tiny_weights):
    with pytest.raises(ValueError, match="workers"):
        ServeSettings(workers=0)
    with pytest.raises(ValueError, match="queue_size"):
        ServeSettings(queue_size=-1)
    with pytest.raises(ValueError, match="default_model 'x'"):
        ServeSettings(default_model="x")
    with pytest.raises(ValueError, match="neither a bundled model"):
        ServeSettings(models=["missing.safetensors"])
    settings = ServeSettings(models=["srresnet_x4", str(tiny_weights), str(tiny_weights)])
    assert list(settings.models) == ["srresnet_x4", "tiny_x4", "tiny_x4_2"]
    assert settings.default_model == "srresnet_x4"
    with pytest.raises(AttributeError):
        settings.workers = 2  # frozen
    assert parse_model_specs(["srgan_x4"]) == {"srgan_x4": "srgan_x4"}


def test_cli_parses_and_refuses_bad_options(capsys, tiny_weights):
    args = build_parser().parse_args(["serve", "--port", "8123", "--max-upload-mb", "5", "--max-pixels", "1000",
                                      "--jobs", "2", "--queue", "3", "--device", "cpu", "--fp32",
                                      "-m", str(tiny_weights)])
    assert (args.host, args.port, args.workers, args.queue, args.precision) == ("127.0.0.1", 8123, 2, 3, "fp32")
    assert main(["serve", "--jobs", "0"]) == 2
    assert "--jobs must be an integer >= 1" in capsys.readouterr().err
    assert main(["serve", "--workers", "0"]) == 2  # the old name still parses
    assert "--jobs must be an integer >= 1" in capsys.readouterr().err
    assert main(["serve", "-m", "no/such/file.safetensors"]) == 2
    assert "no/such/file.safetensors" in capsys.readouterr().err
    assert main(["serve", "--max-upload-mb", "0"]) == 2
    assert "--max-upload-mb must be > 0" in capsys.readouterr().err


def test_uploads_spool_to_a_private_temp_dir_removed_at_shutdown(make_client):
    import os
    import stat
    import tempfile

    with make_client() as client:
        private = tempfile.gettempdir()
        assert "srgan-serve-" in private
        assert stat.S_IMODE(os.stat(private).st_mode) == 0o700
        client.get("/healthz")
    assert not os.path.exists(private)
    assert "srgan-serve-" not in tempfile.gettempdir()
