"""`srgan models`: the catalogue, downloads into the cache (local HTTP server), `-m NAME`, and the
one-line errors without the optional extras. Runs in the base venv (no spandrel, no onnxruntime)."""

from __future__ import annotations

import hashlib
import importlib.util
import re

import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

from srgan.cli.main import main
from srgan.registry import MODELS, ModelEntry, downloadable


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SRGAN_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _entry(url: str, sha256: str) -> ModelEntry:
    return ModelEntry("tiny_test", "tiny_test.safetensors", 4, "SRResNet", "MIT", "a test model", url, sha256, 1,
                      "computed by the test")


def test_catalogue_entries_are_complete_and_say_where_each_hash_comes_from():
    assert {"realesrgan_x4plus", "realesrgan_x2plus", "realesr_general_x4v3", "realesr_animevideov3",
            "esrgan_x4"} <= set(downloadable())
    for e in (MODELS[n] for n in downloadable()):
        assert re.fullmatch(r"[0-9a-f]{64}", e.sha256) and e.url.startswith("https://")
        assert e.licence and e.hash_source and 1 <= e.scale <= 8 and e.size > 0


def test_models_lists_bundled_and_downloadable(capsys, cache):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert "srgan_x4" in out and "bundled" in out and "realesrgan_x4plus" in out and "BSD-3-Clause" in out
    assert str(cache) in out
    assert main(["models", "list", "-v"]) == 0
    assert MODELS["realesr_general_x4v3"].sha256 in capsys.readouterr().out


def test_download_then_dash_m_name_resolves_to_the_cache(range_server, cache, tiny_weights, tmp_path, photo,
                                                         monkeypatch, capsys):
    data = tiny_weights.read_bytes()
    range_server.payload = data
    monkeypatch.setitem(MODELS, "tiny_test", _entry(f"{range_server.url}/file.bin", hashlib.sha256(data).hexdigest()))
    Image.fromarray(photo[:8, :8]).save(tmp_path / "x.png")
    assert main(["upscale", str(tmp_path / "x.png"), "-o", str(tmp_path / "a.png"), "-m", "tiny_test"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "srgan models download tiny_test" in err and str(cache / "tiny_test.safetensors") in err
    assert main(["models", "download", "tiny_test"]) == 0
    assert (cache / "tiny_test.safetensors").read_bytes() == data
    assert main(["upscale", str(tmp_path / "x.png"), "-o", str(tmp_path / "a.png"), "-m", "tiny_test", "-q"]) == 0
    with Image.open(tmp_path / "a.png") as im:
        assert im.size == (32, 32)
    assert "cached" in (main(["models"]), capsys.readouterr().out)[1]


def test_bad_hash_and_offline_downloads_leave_nothing_and_say_how_to_place_the_file(range_server, cache, monkeypatch,
                                                                                   capsys):
    monkeypatch.setitem(MODELS, "tiny_test", _entry(f"{range_server.url}/file.bin", "0" * 64))
    assert main(["models", "download", "tiny_test"]) == 1
    assert "checksum mismatch" in capsys.readouterr().err
    assert not cache.exists() or not list(cache.iterdir())
    monkeypatch.setitem(MODELS, "tiny_test", _entry("http://127.0.0.1:9/tiny.safetensors", "0" * 64))
    assert main(["models", "download", "tiny_test"]) == 1
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "http://127.0.0.1:9/tiny.safetensors" in err
    assert f"save it as {cache / 'tiny_test.safetensors'}" in err


@pytest.mark.skipif(importlib.util.find_spec("spandrel") is not None, reason="spandrel is installed here")
def test_third_party_file_without_the_interop_extra_says_which_extra(tmp_path, photo, capsys):
    save_file({"conv_first.weight": torch.rand(8, 3, 3, 3)}, str(tmp_path / "RealESRGAN_x4plus.safetensors"))
    Image.fromarray(photo[:8, :8]).save(tmp_path / "x.png")
    assert main(["upscale", str(tmp_path / "x.png"), "-o", str(tmp_path / "o.png"),
                 "-m", str(tmp_path / "RealESRGAN_x4plus.safetensors")]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "pip install 'srgan[interop]'" in err and "RealESRGAN_x4plus" in err


@pytest.mark.skipif(importlib.util.find_spec("onnxruntime") is not None, reason="onnxruntime is installed here")
def test_onnx_without_the_onnx_extra_says_which_extra(tmp_path, photo, capsys):
    (tmp_path / "m.onnx").write_bytes(b"\x08\x07")
    Image.fromarray(photo[:8, :8]).save(tmp_path / "x.png")
    assert main(["upscale", str(tmp_path / "x.png"), "-o", str(tmp_path / "o.png"), "-m", str(tmp_path / "m.onnx"),
                 "--backend", "onnxruntime"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "pip install 'srgan[onnx]'" in err
    assert main(["export", "-m", "srresnet_x4", "-o", str(tmp_path / "e.onnx")]) == 1
    assert "pip install 'srgan[onnx]'" in capsys.readouterr().err


def test_serve_and_eval_accept_catalogue_names(cache, capsys, tmp_path):
    pytest.importorskip("fastapi")
    from srgan.serve import parse_model_specs

    assert parse_model_specs(["realesr_general_x4v3", "srgan_x4"]) == {
        "realesr_general_x4v3": "realesr_general_x4v3", "srgan_x4": "srgan_x4"}
    (tmp_path / "Tiny").mkdir()
    assert main(["eval", "--model", "realesr_general_x4v3", "--data", str(tmp_path / "Tiny"), "-q"]) == 1
    err = capsys.readouterr().err
    assert "srgan models download realesr_general_x4v3" in err and MODELS["realesr_general_x4v3"].url in err
