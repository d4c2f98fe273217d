"""Shared fixtures. Tests never touch ../shared: images come from scikit-image's `data`."""

from __future__ import annotations

import http.server
import importlib.util
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from skimage import data

from srgan.models import Generator, GeneratorConfig, save_generator

PAYLOAD = bytes(range(256)) * 4096  # 1 MiB, what the file server serves at /file.bin by default

# No test may reach the network for metric weights (LPIPS/NIQE): lookups that miss fail at once.
# Set at import so that CLI subprocesses inherit it; tests that need weights make their own.
os.environ["SRGAN_OFFLINE"] = "1"
os.environ.pop("SRGAN_METRIC_WEIGHTS", None)

# The interop tests need spandrel (and so torchvision); `make test` runs them in .venv-interop with
# SRGAN_REQUIRE_INTEROP set, where a missing extra fails. Elsewhere they are not collected at all.
if importlib.util.find_spec("spandrel") is None and not os.environ.get("SRGAN_REQUIRE_INTEROP"):
    collect_ignore = ["test_interop.py"]


@pytest.fixture(scope="session")
def photo() -> np.ndarray:
    """A 96x96 uint8 RGB crop of a real photo (scikit-image's astronaut, public domain)."""
    return np.ascontiguousarray(data.astronaut()[100:196, 180:276])


@pytest.fixture(scope="session")
def tiny_weights(tmp_path_factory) -> Path:
    """A small random-weight x4 generator saved as safetensors (fast to run)."""
    path = tmp_path_factory.mktemp("weights") / "tiny_x4.safetensors"
    save_generator(Generator(GeneratorConfig(num_blocks=2, channels=8)).eval(), path, recipe={"note": "random"})
    return path


@pytest.fixture
def photo_file(tmp_path, photo) -> Path:
    path = tmp_path / "photo.png"
    Image.fromarray(photo).save(path)
    return path


@pytest.fixture(scope="session")
def metric_weights(tmp_path_factory) -> Path:
    """A folder laid out like the project's metric-weights layout, with self-made files.

    Random AlexNet convs (torchvision key layout), random non-negative LPIPS linear layers
    (the official `linK.model.1.weight` keys) and a NIQE pristine model fitted here on
    scikit-image's clean photos. Scores are not the published ones, but every code path is.
    """
    import torch

    from srgan.metrics.lpips_model import LPIPS
    from srgan.metrics.niqe_model import matlab_rgb2gray, niqe_features

    folder = tmp_path_factory.mktemp("metric_weights")
    torch.manual_seed(0)
    net = LPIPS()
    for m in net.features:
        if isinstance(m, torch.nn.Conv2d):
            torch.nn.init.kaiming_normal_(m.weight)
            torch.nn.init.zeros_(m.bias)
    torch.save({k: v for k, v in net.state_dict().items() if k.startswith("features.")},
               folder / "alexnet_imagenet_features.pth")
    torch.save({f"lin{k}.model.1.weight": torch.rand(1, c, 1, 1) for k, c in enumerate((64, 192, 384, 256, 256))},
               folder / "lpips_v0.1_alex.pth")
    x = np.arange(7) - 3.0
    g = np.exp(-(x**2) / (2 * (7 / 6) ** 2))
    window = np.outer(g, g) / np.outer(g, g).sum()
    feats = np.concatenate([niqe_features(matlab_rgb2gray(im), window)
                            for im in (data.astronaut(), data.coffee(), data.chelsea(), data.rocket())])
    feats = feats[~np.isnan(feats).any(axis=1)]
    np.savez(folder / "niqe_pris_params.npz", mu_pris_param=feats.mean(0)[None], cov_pris_param=np.cov(feats, rowvar=False),
             gaussian_window=window)
    return folder


@dataclass
class RangeServer:
    """A local HTTP server with Range support (no internet): `payload` at `url`/file.bin, 404
    elsewhere; `ranges` records the Range header of every request."""

    url: str
    payload: bytes = PAYLOAD
    ranges: list[str | None] = field(default_factory=list)


@pytest.fixture
def range_server():
    state = RangeServer("")

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            if self.path != "/file.bin":
                self.send_error(404)
                return
            rng = self.headers.get("Range")
            state.ranges.append(rng)
            start = int(rng.split("=")[1].split("-")[0]) if rng else 0
            self.send_response(206 if rng else 200)
            self.send_header("Content-Length", str(len(state.payload) - start))
            self.end_headers()
            self.wfile.write(state.payload[start:])

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    state.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    yield state
    httpd.shutdown()


@pytest.fixture
def randomized() -> Callable[..., Generator]:
    """Makes generators with non-trivial BatchNorm statistics and PReLU slopes (eval mode must use them)."""
    import torch
    from torch import nn

    def make(config: GeneratorConfig, seed: int = 0) -> Generator:
        torch.manual_seed(seed)
        gen = Generator(config)
        with torch.no_grad():
            for m in gen.modules():
                if isinstance(m, nn.BatchNorm2d):
                    m.running_mean.uniform_(-0.2, 0.2)
                    m.running_var.uniform_(0.5, 2.0)
                    m.weight.uniform_(0.5, 1.5)
                    m.bias.uniform_(-0.1, 0.1)
                if isinstance(m, nn.PReLU):
                    m.weight.uniform_(0.05, 0.4)
        return gen.eval()

    return make


@pytest.fixture
def bf16_everywhere(monkeypatch):
    """bf16 allowed on this CPU whatever it has, so that CPUs without native bf16 check the bf16
    path's numbers too: oneDNN emulates it on every AVX-512 CPU (slowly). Skipped where oneDNN has
    no bf16 convolution at all (AVX2-only x86), where `auto` never picks bf16 and an explicit one
    is refused (tests/test_device.py)."""
    import torch

    from srgan import device

    if not torch.ops.mkldnn._is_mkldnn_bf16_supported():
        pytest.skip("oneDNN has no bf16 convolution on this CPU, not even emulated")
    monkeypatch.setattr(device, "cpu_has_native_bf16", lambda: True)
