import json
import pickle

import pytest
import torch

from srgan.models import (
    Generator, GeneratorConfig, WeightsError, canonicalize_state_dict, load_generator,
    read_metadata, save_generator,
)
from srgan.inference import load_model
from srgan.registry import MODELS, bundled


def test_safetensors_round_trip_keeps_config_weights_and_recipe(tmp_path):
    config = GeneratorConfig(scale=2, num_blocks=3, channels=16)
    model = Generator(config)
    path = save_generator(model, tmp_path / "m.safetensors", recipe={"iterations": 7})
    meta = read_metadata(path)
    assert meta["srgan.arch"] == "srresnet" and meta["srgan.range"] == "0-1"
    assert json.loads(meta["srgan.config"])["num_blocks"] == 3
    loaded = load_generator(path)
    assert loaded.config == config and loaded.scale == 2 and not loaded.training
    assert loaded.recipe == {"iterations": 7}
    for k, v in model.state_dict().items():
        assert torch.equal(v, loaded.state_dict()[k])


def test_pth_state_dicts_load_with_common_wrappers(tmp_path):
    model = Generator(GeneratorConfig(num_blocks=2, channels=8))
    wrapped = {"params_ema": {f"module.{k}": v for k, v in model.state_dict().items()}}
    torch.save(wrapped, tmp_path / "basicsr.pth")
    loaded = load_generator(tmp_path / "basicsr.pth")
    assert loaded.config == model.config  # inferred from the tensor shapes
    assert torch.equal(loaded.tail.weight, model.tail.weight)


def test_canonicalize_is_pure_and_strips_prefixes():
    state = {"model": {"_orig_mod.module.head.0.weight": torch.zeros(1), "step": 3}}
    assert list(canonicalize_state_dict(state)) == ["head.0.weight"]
    assert "model" in state


class Payload:
    def __reduce__(self):
        import pathlib
        return (pathlib.Path.touch, (pathlib.Path(MARKER),))


MARKER = ""


def test_pickle_payload_is_refused_and_never_runs(tmp_path):
    global MARKER
    MARKER = str(tmp_path / "pwned")
    bad = tmp_path / "evil.pth"
    with open(bad, "wb") as f:
        pickle.dump({"head.0.weight": Payload()}, f)
    with pytest.raises(WeightsError, match="evil.pth: refused"):
        load_generator(bad)
    assert not (tmp_path / "pwned").exists()


def test_mismatched_tensors_get_a_clear_error(tmp_path):
    small = Generator(GeneratorConfig(num_blocks=2, channels=8))
    path = save_generator(small, tmp_path / "m.safetensors")
    from safetensors.torch import load_file, save_file

    tensors = load_file(str(path))
    tensors["tail.weight"] = torch.zeros(3, 8, 3, 3)
    save_file(tensors, str(tmp_path / "bad.safetensors"), metadata=read_metadata(path))
    with pytest.raises(WeightsError, match="bad.safetensors: tensors do not match.*wrong shape: tail.weight"):
        load_generator(tmp_path / "bad.safetensors")


@pytest.mark.parametrize("content, match", [(b"", "not a readable"), (b"garbage" * 10, "not a readable")])
def test_corrupt_safetensors(tmp_path, content, match):
    (tmp_path / "x.safetensors").write_bytes(content)
    with pytest.raises(WeightsError, match=match):
        load_generator(tmp_path / "x.safetensors")


def test_invalid_metadata_is_rejected(tmp_path):
    model = Generator(GeneratorConfig(num_blocks=1, channels=8))
    from safetensors.torch import save_file

    save_file(model.state_dict(), str(tmp_path / "m.safetensors"),
              metadata={"srgan.config": json.dumps({"scale": 3, "num_blocks": 1, "channels": 8})})
    with pytest.raises(WeightsError, match="invalid srgan.config"):
        load_generator(tmp_path / "m.safetensors")


@pytest.mark.parametrize("name", bundled())
def test_bundled_weights_load_by_name(name):
    model = load_model(name, device="cpu")
    assert model.scale == 4 and model.module.config == GeneratorConfig() and model.arch == "SRResNet"
    assert MODELS[name].path.stat().st_size < 8 * 2**20
    meta = read_metadata(MODELS[name].path)
    assert json.loads(meta["srgan.recipe"])["phase"] in ("srresnet", "srgan")


def test_unknown_model_name():
    with pytest.raises(WeightsError, match="unknown model 'nope'"):
        load_model("nope")


def test_export_fp16_safetensors_halves_the_file_and_keeps_output_config_and_recipe(tiny_weights, tmp_path, capsys):
    from srgan.cli.main import main

    out = tmp_path / "half.safetensors"
    assert main(["export", "-m", str(tiny_weights), "-o", str(out), "--fp16"]) == 0
    assert "fp16" in capsys.readouterr().out
    assert out.stat().st_size < 0.6 * tiny_weights.stat().st_size
    meta = read_metadata(out)
    assert json.loads(meta["srgan.recipe"]) == {"note": "random"}
    full, half = load_generator(tiny_weights), load_generator(out)
    assert half.config == full.config and all(p.dtype == torch.float32 for p in half.parameters())
    x = torch.rand(1, 3, 24, 24)
    with torch.no_grad():
        assert (full(x) - half(x)).abs().max() < 1e-3


def test_export_refuses_other_suffixes_and_non_srresnet_models(tmp_path, capsys):
    from dataclasses import replace

    from srgan.cli.main import main
    from srgan.inference.export import export_safetensors

    assert main(["export", "-m", "srresnet_x4", "-o", str(tmp_path / "m.pt")]) == 2
    assert "must end in .onnx or .safetensors" in capsys.readouterr().err
    model = load_model("srresnet_x4", device="cpu")
    other = replace(model, module=torch.nn.Identity())
    with pytest.raises(WeightsError, match="srgan's own"):
        export_safetensors(other, tmp_path / "m.safetensors")
    assert not (tmp_path / "m.safetensors").exists()
