"""Third-party models through spandrel, and ONNX export / onnxruntime: run by `make test` in
.venv-interop (torch + torchvision + the interop and onnx extras), where they must not skip.

Every model is built here with random weights from spandrel's own architecture classes and
saved the way their users hold them (.pth with Real-ESRGAN's "params_ema" wrapper, .safetensors);
nothing is downloaded.
"""

from __future__ import annotations

import dataclasses
import importlib
import io
import json
import logging
import os
import pickle
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

pytestmark = pytest.mark.interop


def _require(name: str):
    """The module, or a skip outside CI; with SRGAN_REQUIRE_INTEROP set a missing one fails."""
    if os.environ.get("SRGAN_REQUIRE_INTEROP"):
        return importlib.import_module(name)
    return pytest.importorskip(name)


spandrel = _require("spandrel")
_require("onnxruntime")

from spandrel.architectures.Compact import Compact  # noqa: E402
from spandrel.architectures.DAT import DAT  # noqa: E402
from spandrel.architectures.ESRGAN import ESRGAN  # noqa: E402
from spandrel.architectures.RestoreFormer import RestoreFormer  # noqa: E402
from spandrel.architectures.SwinIR import SwinIR  # noqa: E402

import srgan  # noqa: E402
from srgan.cli.main import main  # noqa: E402
from srgan.inference.engine import upscale_array  # noqa: E402
from srgan.models import WeightsError  # noqa: E402

warnings.filterwarnings("ignore", message=".*meshgrid.*")

# name -> (constructor, scale, in channels, exact tiling)
ARCHS = {
    "rrdb": (lambda: ESRGAN(in_nc=3, out_nc=3, num_filters=8, num_blocks=1, scale=4), 4, 3, True),
    "rrdb_x2": (lambda: ESRGAN(in_nc=12, out_nc=3, num_filters=8, num_blocks=1, scale=4, shuffle_factor=2), 2, 3, True),
    "compact": (lambda: Compact(num_in_ch=3, num_out_ch=3, num_feat=8, num_conv=4, upscale=4), 4, 3, True),
    "compact_gray": (lambda: Compact(num_in_ch=1, num_out_ch=1, num_feat=8, num_conv=3, upscale=2), 2, 1, True),
    "swinir": (lambda: SwinIR(img_size=16, in_chans=3, embed_dim=12, depths=[2], num_heads=[2], window_size=4,
                              mlp_ratio=2, upscale=2, upsampler="pixelshuffledirect", resi_connection="1conv"), 2, 3, False),
    "dat": (lambda: DAT(img_size=16, in_chans=3, embed_dim=32, split_size=[2, 4], depth=[2], num_heads=[2],
                        expansion_factor=2, upscale=2, upsampler="pixelshuffledirect"), 2, 3, False),
}
EXACT = [name for name, spec in ARCHS.items() if spec[3]]


def _state(name: str) -> dict[str, torch.Tensor]:
    torch.manual_seed(sum(map(ord, name)))
    net = ARCHS[name][0]()
    with torch.no_grad():  # random, not near-identity weights: outputs differ visibly between models
        for p in net.parameters():
            p.add_(torch.randn_like(p) * 0.02)
    return net.state_dict()


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    """Each architecture as <name>.pth ({"params_ema": ...}, as Real-ESRGAN ships) and <name>_st.safetensors."""
    root = tmp_path_factory.mktemp("thirdparty")
    out: dict[str, Path] = {}
    for name in ARCHS:
        state = _state(name)
        torch.save({"params_ema": state}, root / f"{name}.pth")
        save_file({k: v.contiguous() for k, v in state.items()}, str(root / f"{name}_st.safetensors"))
        out[name] = root / f"{name}.pth"
        out[f"{name}_st"] = root / f"{name}_st.safetensors"
    return out


def _reference(path: Path, image: np.ndarray) -> np.ndarray:
    """spandrel's own whole-image call, quantized like the engine: what a chaiNNer user gets."""
    desc = spandrel.ModelLoader().load_from_file(path).eval()
    x = torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255
    if desc.input_channels == 1:
        x = (x * torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)).sum(1, keepdim=True)
    y = desc(x)
    y = y.expand(-1, 3, -1, -1) if y.shape[1] == 1 else y
    return (y[0].permute(1, 2, 0).clamp(0, 1) * 255).round().to(torch.uint8).numpy()


@pytest.mark.parametrize("name", sorted(ARCHS))
@pytest.mark.parametrize("fmt", ["pth", "safetensors"])
def test_every_architecture_loads_as_one_descriptor(files, name, fmt):
    model = srgan.load_model(files[name if fmt == "pth" else f"{name}_st"], device="cpu")
    _, scale, channels, exact = ARCHS[name]
    assert (model.scale, model.in_channels, model.out_channels) == (scale, channels, channels)
    assert (model.tile_overlap is not None) == exact  # attention models claim no exact overlap
    assert "fp32" in model.precisions and model.module is not None
    if name == "rrdb_x2":
        assert model.size_multiple == 4  # pixel-unshuffle input


@pytest.mark.parametrize("name", sorted(ARCHS))
def test_engine_matches_spandrel_whole_image(files, photo, name):
    lr = photo[:21, :27]  # odd sizes: padding to the size multiple and cropping back
    ours = upscale_array(srgan.load_model(files[name], device="cpu"), lr, precision="fp32")
    assert ours.shape == (21 * ARCHS[name][1], 27 * ARCHS[name][1], 3)
    assert np.abs(ours.astype(int) - _reference(files[name], lr)).max() <= 1


@pytest.mark.parametrize("name", EXACT)
def test_tiled_equals_untiled_with_the_descriptor_overlap(files, photo, name):
    model = srgan.load_model(files[name], device="cpu")
    lr = photo[:46, :58]
    whole = upscale_array(model, lr, tile=1000, precision="fp32")
    tiled = upscale_array(model, lr, tile=12, precision="fp32")  # 4x5 tiles
    assert np.abs(whole.astype(int) - tiled).max() <= 1
    seamy = upscale_array(model, lr, tile=12, tile_pad=0, precision="fp32")
    assert np.abs(whole.astype(int) - seamy).max() > 1  # the overlap is what makes it exact


def test_attention_models_run_whole_and_tiles_are_noted(files, photo, caplog):
    model = srgan.load_model(files["swinir"], device="cpu")
    with caplog.at_level(logging.INFO):
        out = upscale_array(model, photo[:40, :40], tile=16, precision="fp32")
    assert out.shape == (80, 80, 3)
    assert "may differ slightly" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.INFO):
        upscale_array(model, photo[:40, :40], precision="fp32")  # automatic: one whole-image tile
    assert "may differ" not in caplog.text


def test_half_precision_the_model_lacks_falls_back_to_fp32_with_a_note(files, photo, caplog, bf16_everywhere):
    model = srgan.load_model(files["swinir"], device="cpu")
    fake = dataclasses.replace(model, precisions=frozenset({"fp32"}))
    with caplog.at_level(logging.INFO):
        out = upscale_array(fake, photo[:20, :20], precision="bf16")
    assert "does not run in bf16; using fp32" in caplog.text
    assert np.array_equal(out, upscale_array(model, photo[:20, :20], precision="fp32"))


def test_cli_upscale_with_third_party_files_and_grey(files, tmp_path, photo):
    src = tmp_path / "in"
    src.mkdir()
    Image.fromarray(photo[:30, :32]).save(src / "rgb.png")
    Image.fromarray(photo[:30, :32, 1]).save(src / "grey.png")  # an L image
    for name in ("rrdb", "compact_gray_st", "swinir"):
        out = tmp_path / name
        assert main(["upscale", str(src), "-o", str(out), "-m", str(files[name]), "-q"]) == 0
        scale = ARCHS[name.removesuffix("_st")][1]
        with Image.open(out / f"grey_x{scale}.png") as im:
            assert im.size == (32 * scale, 30 * scale) and im.mode == "L"
        with Image.open(out / f"rgb_x{scale}.png") as im:
            assert im.size == (32 * scale, 30 * scale) and im.mode == "RGB"


def test_non_sr_models_are_refused_in_one_line(tmp_path, photo, capsys):
    torch.manual_seed(0)
    face = RestoreFormer(n_embed=32, embed_dim=32, ch=32, ch_mult=(1, 1, 1, 1, 1, 1), num_res_blocks=1,
                         z_channels=32, head_size=1)
    torch.save(face.state_dict(), tmp_path / "face.pth")
    with pytest.raises(WeightsError, match="FaceSR model, not single-image super-resolution; refused"):
        srgan.load_model(tmp_path / "face.pth", device="cpu")
    Image.fromarray(photo[:8, :8]).save(tmp_path / "x.png")
    assert main(["upscale", str(tmp_path / "x.png"), "-o", str(tmp_path / "out"), "-m", str(tmp_path / "face.pth")]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "face.pth" in err and "refused" in err
    save_file({"conv.weight": torch.rand(4, 3, 3, 3)}, str(tmp_path / "odd.safetensors"))
    with pytest.raises(WeightsError, match="no architecture spandrel"):
        srgan.load_model(tmp_path / "odd.safetensors", device="cpu")


class _Payload:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_code_running_pickle_is_refused_and_never_runs_with_spandrel_installed(tmp_path, photo, capsys):
    marker = tmp_path / "ran"
    bad = tmp_path / "RealESRGAN_x4plus.pth"
    state = _state("compact")
    with open(bad, "wb") as f:
        pickle.dump({"params_ema": state, "hook": _Payload(marker)}, f)
    with pytest.raises(WeightsError, match="refused to load"):
        srgan.load_model(bad, device="cpu")
    Image.fromarray(photo[:8, :8]).save(tmp_path / "x.png")
    assert main(["upscale", str(tmp_path / "x.png"), "-o", str(tmp_path / "out"), "-m", str(bad)]) == 2
    assert "refused to load" in capsys.readouterr().err
    assert not marker.exists()


def test_eval_scores_a_third_party_model(files, tmp_path, photo, capsys):
    data = tmp_path / "Tiny"
    data.mkdir()
    Image.fromarray(photo[:40, :44]).save(data / "a.png")
    assert main(["eval", "--model", str(files["rrdb_x2"]), "bicubic", "--data", str(data),
                 "--scale", "2", "--json", "--no-lpips", "-q"]) == 0
    results = {r["model"]: r for r in json.loads(capsys.readouterr().out)["results"]}
    assert set(results) == {"rrdb_x2", "bicubic"} and results["rrdb_x2"]["images"] == 1
    assert main(["eval", "--model", str(files["rrdb_x2"]), "--data", str(data), "--scale", "4", "--no-lpips", "-q"]) == 2


def test_serve_offers_third_party_models(files, photo):
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient
    from serve_support import png_bytes

    from srgan.serve import create_app

    client = TestClient(create_app(models={"compact": str(files["compact"]), "dat": str(files["dat_st"])}))
    for name, scale in (("compact", 4), ("dat", 2)):
        r = client.post("/v1/upscale", files={"file": ("p.png", png_bytes(photo[:20, :24]), "image/png")},
                        data={"model": name})
        assert r.status_code == 200, r.text
        with Image.open(io.BytesIO(r.content)) as im:
            assert im.size == (24 * scale, 20 * scale)
    listed = {m["name"]: m for m in client.get("/v1/models").json()["models"]}
    assert listed["compact"]["scale"] == 4 and listed["compact"]["loaded"]


# --- ONNX -----------------------------------------------------------------------------------


@pytest.mark.parametrize("source", ["tiny", "compact", "rrdb_x2"])
def test_export_verifies_and_onnxruntime_matches_torch_through_the_engine(files, tiny_weights, tmp_path, photo,
                                                                          capsys, source):
    path = tiny_weights if source == "tiny" else files[source]
    onnx_file = tmp_path / f"{source}.onnx"
    assert main(["export", "-m", str(path), "-o", str(onnx_file)]) == 0
    assert "dB against PyTorch fp32" in capsys.readouterr().out
    torch_model, ort_model = srgan.load_model(path, device="cpu"), srgan.load_model(onnx_file)
    assert (ort_model.scale, ort_model.tile_overlap, ort_model.size_multiple) == \
        (torch_model.scale, torch_model.tile_overlap, torch_model.size_multiple)
    lr = photo[:33, :38]
    ref = upscale_array(torch_model, lr, precision="fp32").astype(int)
    whole = upscale_array(ort_model, lr, precision="fp32")
    assert np.abs(whole - ref).max() <= 1
    assert np.abs(upscale_array(ort_model, lr, tile=12, precision="fp32").astype(int) - whole).max() <= 1


def test_upscale_backend_onnxruntime_and_its_errors(tiny_weights, tmp_path, photo, capsys):
    onnx_file = tmp_path / "tiny.onnx"
    assert main(["export", "-m", str(tiny_weights), "-o", str(onnx_file)]) == 0
    Image.fromarray(photo[:16, :20]).save(tmp_path / "x.png")
    out = tmp_path / "x4.png"
    assert main(["upscale", str(tmp_path / "x.png"), "-o", str(out), "-m", str(onnx_file), "--backend", "onnxruntime", "-q"]) == 0
    with Image.open(out) as im:
        assert im.size == (80, 64)
    capsys.readouterr()
    assert main(["upscale", str(tmp_path / "x.png"), "-o", str(tmp_path / "y.png"), "-m", str(tiny_weights),
                 "--backend", "onnxruntime"]) == 2
    assert "onnxruntime runs .onnx files" in capsys.readouterr().err
    (tmp_path / "bad.onnx").write_bytes(b"not a graph")
    assert main(["upscale", str(tmp_path / "x.png"), "-o", str(tmp_path / "z.png"), "-m", str(tmp_path / "bad.onnx")]) == 2
    assert "not a usable ONNX model" in capsys.readouterr().err


def test_fp16_export_is_kept_only_when_it_verifies(files, tmp_path):
    from srgan.inference.export import CHECK_PSNR_DB
    from srgan.inference.onnx_backend import export_onnx

    target = tmp_path / "half.onnx"
    try:
        report = export_onnx(srgan.load_model(files["compact"], device="cpu"), target, fp16=True)
    except WeightsError as exc:
        assert "not kept" in str(exc) or "export failed" in str(exc)
        assert not target.exists()
    else:
        assert report.psnr_db >= CHECK_PSNR_DB and target.is_file()
