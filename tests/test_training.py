import json
import logging
import urllib.error

import pytest
import torch
from PIL import Image
from skimage import data

from srgan.cli.main import main
from srgan.losses.perceptual import VGGFeatures, _build_features
from srgan.models import load_generator
from srgan.training.config import TrainConfig, lr_at

TINY = ["--iterations", "4", "--batch-size", "2", "--patch-size", "32", "--save-every", "2",
        "--val-every", "2", "--log-every", "1"]


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    train, val = root / "train" / "nested", root / "val"
    train.mkdir(parents=True)
    val.mkdir()
    for i, img in enumerate([data.astronaut(), data.coffee(), data.chelsea()]):
        Image.fromarray(img[:80, :96]).save(train / f"{i}.png")
    Image.fromarray(data.astronaut()[200:10:-1, :20]).save(train / "tiny.jpg")  # 190x20: too small
    (train / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnonsense")
    Image.fromarray(data.rocket()[:64, :64]).save(val / "rocket.png")
    return root / "train", val


def train(folders, out, *extra) -> int:
    train_dir, val_dir = folders
    cfg = out.parent / "tiny.toml"
    cfg.write_text("num_blocks = 1\nchannels = 8\n")  # small network, same loop as the paper's
    return main(["train", "-c", str(cfg), "--train-dir", str(train_dir), "--val-dir", str(val_dir),
                 "--out", str(out), "--device", "cpu", "--precision", "fp32", *TINY, *extra])


def test_phase1_run_writes_everything_a_user_needs(folders, tmp_path, caplog):
    out = tmp_path / "run"
    assert train(folders, out, "--phase", "srresnet") == 0
    assert {"config.json", "metrics.jsonl", "checkpoint.pt", "generator.safetensors", "samples"} <= {p.name for p in out.iterdir()}
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["iteration"] for r in rows] == [1, 2, 3, 4]
    assert all("g_loss" in r and "data_frac" in r for r in rows) and "val_psnr_y" in rows[-1]
    model = load_generator(out / "generator.safetensors")
    assert model.config.num_blocks == 1 and model.recipe["iterations"] == 4
    assert "skipping" in caplog.text and "broken.png" in caplog.text and "tiny.jpg" in caplog.text


def test_resume_continues_where_it_stopped(folders, tmp_path, caplog):
    caplog.set_level(logging.INFO)
    out = tmp_path / "run"
    assert train(folders, out) == 0
    assert train(folders, out) == 2  # refuses to clobber a run without --resume
    assert train(folders, out, "--resume", "--iterations", "6") == 0
    assert "resumed from" in caplog.text and "at iteration 4" in caplog.text
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["iteration"] for r in rows] == [1, 2, 3, 4, 5, 6]
    assert torch.load(out / "checkpoint.pt", weights_only=True)["step"] == 6


def test_corrupt_checkpoint_falls_back_to_previous(folders, tmp_path, caplog):
    caplog.set_level(logging.INFO)
    out = tmp_path / "run"
    assert train(folders, out) == 0
    (out / "checkpoint.pt").write_bytes(b"truncated")
    assert train(folders, out, "--resume", "--iterations", "5") == 0
    assert "corrupt" in caplog.text and "at iteration 2" in caplog.text


def fake_vgg_file(path):
    torch.manual_seed(0)
    feats = _build_features(36)
    torch.save({f"features.{k}": v for k, v in feats.state_dict().items()}, path)
    return path


def test_phase2_srgan_with_local_vgg_weights(folders, tmp_path):
    init = tmp_path / "p1"
    assert train(folders, init) == 0
    vgg = fake_vgg_file(tmp_path / "vgg19.pth")
    out = tmp_path / "gan"
    assert train(folders, out, "--phase", "srgan", "--init", str(init / "generator.safetensors"),
                 "--vgg-weights", str(vgg)) == 0
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert {"d_loss", "adv_loss", "content_loss", "g_loss"} <= set(rows[0])
    assert json.loads((out / "config.json").read_text())["content_loss"] == "vgg54"
    assert load_generator(out / "generator.safetensors").recipe["adv_weight"] == 1e-3


def test_offline_without_vgg_weights_stops_before_work(folders, tmp_path, monkeypatch, capsys):
    def offline(*a, **k):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", offline)
    out = tmp_path / "gan"
    assert train(folders, out, "--phase", "srgan") == 1
    err = capsys.readouterr().err
    assert "--vgg-weights" in err and len(err.strip().splitlines()) == 1
    assert not (out / "checkpoint.pt").exists()


def test_vgg_feature_scale_is_tied_to_the_weights(tmp_path):
    state = torch.load(fake_vgg_file(tmp_path / "v.pth"), weights_only=True)
    # A VGG whose relu2_2 activations are 10x smaller (last conv scaled): same content loss.
    small = dict(state)
    small["features.7.weight"], small["features.7.bias"] = state["features.7.weight"] / 10, state["features.7.bias"] / 10
    a, b = VGGFeatures(state, "relu2_2"), VGGFeatures(small, "relu2_2")
    x = torch.rand(1, 3, 32, 32)
    assert torch.allclose(a(x), b(x), rtol=1e-3, atol=1e-3 * float(a(x).abs().max()))


def test_lr_schedule_is_a_pure_function_of_the_step():
    step = TrainConfig(lr=1e-4, lr_schedule="step", iterations=100)
    assert lr_at(0, step) == 1e-4 and lr_at(49, step) == 1e-4 and lr_at(50, step) == pytest.approx(1e-5)
    cos = TrainConfig(lr=2e-4, lr_schedule="cosine", iterations=100, warmup=10)
    assert lr_at(0, cos) == pytest.approx(2e-5) and lr_at(10, cos) == pytest.approx(2e-4)
    assert lr_at(100, cos) == pytest.approx(2e-6)
    assert lr_at(5, TrainConfig()) == 1e-4


@pytest.mark.parametrize("bad, match", [({"phase": "x"}, "phase"), ({"patch_size": 30}, "patch_size"),
                                        ({"content_loss": "vgg54"}, "pixel loss"), ({"nope": 1}, "unknown")])
def test_config_validation(bad, match):
    with pytest.raises(ValueError, match=match):
        TrainConfig.from_dict(bad)
