"""The Real-ESRGAN degradation (data/realistic.py), its config keys and `srgan data degrade`."""

import dataclasses
import io
import json

import numpy as np
import pytest
import torch
from PIL import Image
from skimage import data

from srgan.cli.main import main
from srgan.data.realistic import (
    KERNEL_TYPES,
    DegradationConfig,
    add_noise,
    blur_kernel,
    degrade_batch,
    jpeg,
    sample_plan,
    sinc_kernel,
    training_pair,
    usm_sharpen,
)
from srgan.models import load_generator
from srgan.training.config import TrainConfig


@pytest.fixture(scope="module")
def hr_batch() -> torch.Tensor:
    """Four 64x64 crops of real photos, (4, 3, 64, 64) in [0, 1]."""
    crops = [data.astronaut()[:64, :64], data.coffee()[100:164, 200:264], data.chelsea()[50:114, 100:164],
             data.astronaut()[200:264, 200:264]]
    return torch.from_numpy(np.stack(crops)).permute(0, 3, 1, 2).float() / 255


@pytest.mark.parametrize("kind", KERNEL_TYPES)
@pytest.mark.parametrize("size", [7, 13, 21])
def test_every_kernel_type_is_normalised(kind, size):
    k = blur_kernel(kind, size, sigma_x=2.5, sigma_y=0.7, theta=0.6, beta=0.7)
    assert k.shape == (size, size) and k.sum() == pytest.approx(1.0, abs=1e-12)
    assert k.argmax() == size * size // 2  # centred: the blur does not shift the image
    assert sinc_kernel(size, cutoff=1.2).sum() == pytest.approx(1.0, abs=1e-12)


def test_anisotropic_gaussian_has_the_rotated_covariance():
    """sigma_x along the direction theta, sigma_y across it: second moments of the kernel."""
    sx, sy, theta = 2.0, 1.0, 0.5
    k = blur_kernel("aniso", 21, sx, sy, theta)
    ax = np.arange(21) - 10
    xx, yy = np.meshgrid(ax, ax)
    cov = np.array([[(k * xx * xx).sum(), (k * xx * yy).sum()], [(k * xx * yy).sum(), (k * yy * yy).sum()]])
    u = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    np.testing.assert_allclose(cov, u @ np.diag([sx**2, sy**2]) @ u.T, atol=1e-3)


def test_drawn_kernels_are_normalised_and_cover_every_type():
    seen = set()
    for step in range(40):
        plan = sample_plan(DegradationConfig(), batch=8, seed=0, step=step)
        for kernels in (plan.first.kernels, plan.second.kernels, plan.sinc):
            torch.testing.assert_close(kernels.sum(dim=(1, 2)), torch.ones(8), atol=1e-5, rtol=0)
        seen |= set(plan.first.kernel_types) | set(plan.second.kernel_types)
    assert seen == set(KERNEL_TYPES) | {"sinc"}


def test_lr_is_a_pure_function_of_seed_and_step(hr_batch):
    cfg = DegradationConfig()
    a = degrade_batch(hr_batch, cfg, 4, seed=0, step=7)
    assert torch.equal(a, degrade_batch(hr_batch, cfg, 4, seed=0, step=7))
    assert not torch.equal(a, degrade_batch(hr_batch, cfg, 4, seed=0, step=8))
    assert not torch.equal(a, degrade_batch(hr_batch, cfg, 4, seed=1, step=7))


def test_a_slice_of_the_batch_gets_the_same_lr_as_in_the_whole_batch(hr_batch):
    """What DDP relies on: rank r degrades its slice with offset = its position in the global batch."""
    cfg = DegradationConfig()
    for step in range(4):
        whole = degrade_batch(hr_batch, cfg, 4, seed=3, step=step)
        assert torch.equal(degrade_batch(hr_batch[2:], cfg, 4, seed=3, step=step, offset=2), whole[2:])


@pytest.mark.parametrize("scale", [2, 4])
def test_output_shape_and_range(hr_batch, scale):
    hr = hr_batch[:, :, :64, :48]
    for step in range(6):  # several draws: up/down/keep resizes, both final orders
        lr = degrade_batch(hr, DegradationConfig(), scale, seed=0, step=step)
        assert lr.shape == (4, 3, 64 // scale, 48 // scale)
        assert lr.min() >= 0 and lr.max() <= 1
        assert torch.equal(lr, (lr * 255).round() / 255)  # 8-bit values, as real LR files


def test_tiny_crops_still_work(hr_batch):
    """A 16 px HR crop is a 4 px LR: smaller than the kernels' radius, so borders are replicated."""
    assert degrade_batch(hr_batch[:, :, :16, :16], DegradationConfig(), 4, seed=0, step=0).shape == (4, 3, 4, 4)


def test_jpeg_quality_stays_in_its_range():
    cfg = DegradationConfig(jpeg_range=(40, 45), jpeg_range2=(90, 90))
    first, second = set(), set()
    for step in range(30):
        plan = sample_plan(cfg, batch=8, seed=0, step=step)
        first |= set(plan.first.jpeg_quality)
        second |= set(plan.second.jpeg_quality)
    assert first == set(range(40, 46)) and second == {90}


def test_jpeg_is_pillows_at_the_given_quality(hr_batch):
    out = jpeg(hr_batch[:2], [20, 95])
    for img, q, got in zip(hr_batch[:2], [20, 95], out):
        pixels = (img.permute(1, 2, 0) * 255).round().to(torch.uint8).numpy()
        buf = io.BytesIO()
        Image.fromarray(pixels).save(buf, format="JPEG", quality=q)
        expected = np.asarray(Image.open(buf).convert("RGB"))
        assert np.array_equal((got.permute(1, 2, 0) * 255).round().to(torch.uint8).numpy(), expected)
    err = [float((o - i).abs().mean()) for o, i in zip(out, hr_batch[:2])]
    assert err[0] > 2 * err[1]  # quality 20 loses far more than 95


def test_gray_noise_is_the_same_on_every_channel():
    x = torch.full((2, 3, 32, 32), 0.5)
    for gaussian in (True, False):
        noisy = add_noise(x, gaussian, [10.0, 10.0] if gaussian else [2.0, 2.0], [True, False], [1, 2])
        d = noisy - x
        assert torch.equal(d[0, 0], d[0, 1]) and torch.equal(d[0, 0], d[0, 2]) and d[0].abs().max() > 0
        assert not torch.equal(d[1, 0], d[1, 1])  # colour noise differs between channels


def test_usm_sharpens_edges_and_leaves_flat_areas(hr_batch):
    flat = torch.full((1, 3, 40, 40), 0.3)
    torch.testing.assert_close(usm_sharpen(flat), flat)
    sharp = usm_sharpen(hr_batch)
    laplace = lambda t: (t[..., 1:-1, 1:-1] * 4 - t[..., :-2, 1:-1] - t[..., 2:, 1:-1]  # noqa: E731
                         - t[..., 1:-1, :-2] - t[..., 1:-1, 2:]).abs().mean()
    assert laplace(sharp) > 1.1 * laplace(hr_batch)
    lr, target = training_pair(hr_batch, 0, DegradationConfig(usm_sharpen=False), 4, seed=0)
    assert torch.equal(target, hr_batch) and lr.shape == (4, 3, 16, 16)


@pytest.mark.parametrize("table, match", [
    ({"noise_range": 5}, r"\[realesrgan\] noise_range must be a \[low, high\] pair"),
    ({"nosie_range": [1, 2]}, r"\[realesrgan\] unknown option\(s\) nosie_range"),
    ({"jpeg_range": [20, 101]}, r"\[realesrgan\] jpeg_range must be .*1\.\.100, got \(20, 101\)"),
    ({"jpeg_range2": [50.5, 60]}, "jpeg_range2"),
    ({"sinc_prob": 1.5}, r"sinc_prob must be a probability"),
    ({"kernel_prob": [1, 0]}, "kernel_prob must be 6 non-negative weights"),
    ({"resize_range2": [0.5, 0.9]}, "resize_range2 must be"),
    ({"blur_kernel_size": 20}, "blur_kernel_size must be an odd integer"),
    ({"usm_sharpen": "yes"}, "usm_sharpen must be true or false"),
])
def test_config_errors_name_the_bad_key(table, match):
    with pytest.raises(ValueError, match=match):
        TrainConfig.from_dict({"degradation": "realesrgan", "realesrgan": table})


def test_config_keys_and_their_round_trip():
    with pytest.raises(ValueError, match="degradation must be one of"):
        TrainConfig.from_dict({"degradation": "jpeg"})
    with pytest.raises(ValueError, match=r"put its options in a \[realesrgan\] table"):
        TrainConfig.from_dict({"degradation": {"sinc_prob": 0}})  # a [degradation] table
    with pytest.raises(ValueError, match='only with degradation = "realesrgan"'):
        TrainConfig.from_dict({"realesrgan": {"sinc_prob": 0.0}})
    with pytest.raises(ValueError, match="train_lr_dirs"):
        TrainConfig.from_dict({"degradation": "realesrgan", "train_dirs": ["a"], "train_lr_dirs": ["b"]})
    cfg = TrainConfig.from_dict({"degradation": "realesrgan", "realesrgan": {"noise_range": [2, 9], "sinc_prob": 0}})
    assert cfg.realesrgan.noise_range == (2, 9) and cfg.realesrgan.jpeg_range == (30, 95)
    # The run folder's config.json reads back to the same config (what --resume does).
    assert TrainConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    assert TrainConfig().degradation == "bicubic"


def test_clean_share_gets_the_benchmarks_bicubic_lr_and_the_unsharpened_target(hr_batch):
    """clean_prob: those images get bicubic LR of the unsharpened crop (what srgan eval feeds a
    model) and that crop as the target; the others are degraded exactly as without the option."""
    from srgan.data.degradation import bicubic_downscale
    from srgan.data.realistic import clean_mask

    cfg = DegradationConfig(clean_prob=0.5)
    mask = clean_mask(cfg, hr_batch.shape[0], 0, 3)
    assert 0 < int(mask.sum()) < hr_batch.shape[0]  # this seed and step draw both kinds
    assert torch.equal(clean_mask(cfg, 2, 0, 3, offset=2), mask[2:4])  # a DDP rank's slice
    lr, target = training_pair(hr_batch, 3, cfg, 4, seed=0)
    lr0, target0 = training_pair(hr_batch, 3, DegradationConfig(), 4, seed=0)
    torch.testing.assert_close(lr[~mask], lr0[~mask], rtol=0, atol=0)
    torch.testing.assert_close(target[~mask], target0[~mask], rtol=0, atol=0)
    torch.testing.assert_close(target[mask], hr_batch[mask].float())
    j = int(mask.nonzero()[0])
    pil = bicubic_downscale((hr_batch[j].permute(1, 2, 0) * 255).round().byte().numpy(), 4)
    ours = (lr[j].permute(1, 2, 0) * 255).round().byte().numpy()
    assert np.abs(ours.astype(int) - pil.astype(int)).max() <= 2  # torch's antialiased bicubic is Pillow's
    assert DegradationConfig(clean_prob=0).clean_prob == 0
    with pytest.raises(ValueError, match="clean_prob must be a probability"):
        DegradationConfig(clean_prob=1.5)


def test_defaults_are_real_esrgans_published_values():
    cfg = DegradationConfig()
    assert (cfg.resize_prob, cfg.resize_range, cfg.noise_range, cfg.poisson_scale_range) == (
        (0.2, 0.7, 0.1), (0.15, 1.5), (1, 30), (0.05, 3))
    assert (cfg.second_blur_prob, cfg.resize_prob2, cfg.resize_range2, cfg.noise_range2) == (
        0.8, (0.3, 0.4, 0.3), (0.3, 1.2), (1, 25))
    assert cfg.kernel_prob == (0.45, 0.25, 0.12, 0.03, 0.12, 0.03) and cfg.blur_sigma2 == (0.2, 1.5)
    assert (cfg.jpeg_range, cfg.final_sinc_prob, cfg.gray_noise_prob, cfg.usm_sharpen) == ((30, 95), 0.8, 0.4, True)


# ----------------------------------------------------------------------------- training

@pytest.fixture(scope="module")
def train_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("train")
    for i, img in enumerate([data.astronaut(), data.coffee(), data.chelsea()]):
        Image.fromarray(img[:80, :96]).save(root / f"{i}.png")
    return root


def train(train_dir, out, *extra) -> int:
    cfg = out.parent / f"{out.name}.toml"
    cfg.write_text('num_blocks = 1\nchannels = 8\ndegradation = "realesrgan"\n\n[realesrgan]\nnoise_range = [1, 20]\n')
    return main(["train", "-c", str(cfg), "--train-dir", str(train_dir), "--out", str(out), "--device", "cpu",
                 "--precision", "fp32", "--iterations", "6", "--batch-size", "2", "--patch-size", "32",
                 "--save-every", "100", "--log-every", "1", *extra])


def test_realesrgan_training_resumes_exactly(train_dir, tmp_path, monkeypatch, capsys):
    import os
    import signal

    import srgan.training.loop as loop

    straight, split = tmp_path / "straight", tmp_path / "split"
    assert train(train_dir, straight) == 0
    real = loop.lr_at

    def lr_then_signal(step, cfg):
        if step == 2:
            os.kill(os.getpid(), signal.SIGINT)
        return real(step, cfg)

    with monkeypatch.context() as m:
        m.setattr(loop, "lr_at", lr_then_signal)
        assert train(train_dir, split) == 130
    assert "stopped by signal 2 at iteration 3" in capsys.readouterr().err
    assert train(train_dir, split, "--resume") == 0
    a = torch.load(straight / "checkpoint.pt", weights_only=True)
    b = torch.load(split / "checkpoint.pt", weights_only=True)
    assert a["step"] == b["step"] == 6
    for k, v in a["generator"].items():
        assert torch.equal(v, b["generator"][k]), k
    recipe = load_generator(straight / "generator.safetensors").recipe
    assert recipe["degradation"].startswith("realesrgan") and "noise_range=(1, 20)" in recipe["degradation"]
    assert json.loads((straight / "config.json").read_text())["realesrgan"]["noise_range"] == [1, 20]


def test_realesrgan_lr_is_what_the_model_trains_on(train_dir, tmp_path):
    """Same seed and crops, other degradation: the weights differ, so the on-the-fly LR is used."""
    assert train(train_dir, tmp_path / "real", "--iterations", "2") == 0
    assert main(["train", "--train-dir", str(train_dir), "--out", str(tmp_path / "bicubic"), "--device", "cpu",
                 "--precision", "fp32", "--iterations", "2", "--batch-size", "2", "--patch-size", "32",
                 "--num-blocks", "1", "--channels", "8"]) == 0
    a = torch.load(tmp_path / "real" / "checkpoint.pt", weights_only=True)["generator"]
    b = torch.load(tmp_path / "bicubic" / "checkpoint.pt", weights_only=True)["generator"]
    assert any(not torch.equal(a[k], b[k]) for k in a)


def test_train_cli_reports_a_bad_table_key_in_one_line(train_dir, tmp_path, capsys):
    cfg = tmp_path / "bad.toml"
    cfg.write_text('degradation = "realesrgan"\n[realesrgan]\njpeg_range = [10, 200]\n')
    assert main(["train", "-c", str(cfg), "--train-dir", str(train_dir), "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "[realesrgan] jpeg_range" in err and not (tmp_path / "r").exists()


def test_validation_on_a_paired_lr_folder(train_dir, tmp_path, capsys):
    """--val-lr-dir scores the model on given LR (e.g. a degraded set) instead of bicubic LR."""
    hr_dir, lr_dir = tmp_path / "hr", tmp_path / "lr"
    hr_dir.mkdir()
    Image.fromarray(data.rocket()[:64, :64]).save(hr_dir / "rocket.png")
    assert main(["data", "degrade", str(hr_dir), "-o", str(lr_dir), "--no-sharpen"]) == 0
    psnr = {}
    for name, extra in (("bicubic", []), ("degraded", ["--val-lr-dir", str(lr_dir)])):
        out = tmp_path / name
        assert train(train_dir, out, "--iterations", "1", "--val-dir", str(hr_dir), *extra) == 0
        psnr[name] = json.loads((out / "metrics.jsonl").read_text().splitlines()[-1])["val_psnr_y"]
    assert psnr["bicubic"] != psnr["degraded"]


# ----------------------------------------------------------------------------- srgan data degrade

@pytest.fixture
def images(tmp_path):
    folder = tmp_path / "hr"
    folder.mkdir()
    Image.fromarray(data.astronaut()[:130, :97]).save(folder / "astronaut.png")
    Image.fromarray(data.coffee()[:96, :96]).save(folder / "coffee.jpg")
    return folder


def test_degrade_cli_writes_lr_a_rerun_reproduces(images, tmp_path, capsys):
    a, b = tmp_path / "a", tmp_path / "b"
    assert main(["data", "degrade", str(images), "-o", str(a), "--seed", "3", "--sheet", str(tmp_path / "s.png")]) == 0
    assert main(["data", "degrade", str(images / "astronaut.png"), "-o", str(b), "--seed", "3"]) == 0
    lr = np.asarray(Image.open(a / "astronaut.png"))
    assert lr.shape == (32, 24, 3) and np.asarray(Image.open(a / "coffee.png")).shape == (24, 24, 3)
    # The same image gets the same LR whatever else is degraded with it.
    assert (a / "astronaut.png").read_bytes() == (b / "astronaut.png").read_bytes()
    report = json.loads((a / "degradations.json").read_text())
    assert report["seed"] == 3 and set(report["images"]) == {"astronaut", "coffee"}
    assert 30 <= report["images"]["coffee"]["first"]["jpeg_quality"] <= 95
    assert Image.open(tmp_path / "s.png").size[0] == 3 * 96 + 8  # HR | bicubic | degraded crops
    c = tmp_path / "c"
    assert main(["data", "degrade", str(images / "astronaut.png"), "-o", str(c), "--seed", "4"]) == 0
    assert (c / "astronaut.png").read_bytes() != (a / "astronaut.png").read_bytes()


def test_degrade_cli_uses_the_config_table(images, tmp_path):
    cfg = tmp_path / "mild.toml"
    off = {"sinc_prob": 0.0, "sinc_prob2": 0.0, "final_sinc_prob": 0.0, "second_blur_prob": 0.0,
           "blur_sigma": [0.2, 0.2], "resize_prob": [0, 0, 1], "resize_prob2": [0, 0, 1],
           "noise_range": [0, 0], "noise_range2": [0, 0], "gaussian_noise_prob": 1.0, "gaussian_noise_prob2": 1.0,
           "jpeg_range": [100, 100], "jpeg_range2": [100, 100], "usm_sharpen": False}
    cfg.write_text("[realesrgan]\n" + "\n".join(f"{k} = {json.dumps(v).lower()}" for k, v in off.items()) + "\n")
    assert main(["data", "degrade", str(images / "coffee.jpg"), "-o", str(tmp_path / "o"), "-c", str(cfg)]) == 0
    mild = np.asarray(Image.open(tmp_path / "o" / "coffee.png")).astype(float)
    assert main(["data", "degrade", str(images / "coffee.jpg"), "-o", str(tmp_path / "d")]) == 0
    strong = np.asarray(Image.open(tmp_path / "d" / "coffee.png")).astype(float)
    from srgan.data.degradation import bicubic_downscale
    from srgan.data.pairs import decode_rgb

    bicubic = bicubic_downscale(decode_rgb(images / "coffee.jpg"), 4).astype(float)
    assert np.abs(mild - bicubic).mean() < np.abs(strong - bicubic).mean()


def test_degrade_cli_errors(images, tmp_path, capsys):
    (images / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnonsense")
    assert main(["data", "degrade", str(images), "-o", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err
    assert "broken.png: unreadable image" in err and (tmp_path / "o" / "coffee.png").is_file()
    (images / "broken.png").unlink()
    assert main(["data", "degrade", str(images), "-o", str(images)]) == 2  # would overwrite astronaut.png
    assert "overwrite an input" in capsys.readouterr().err
    bad = tmp_path / "bad.toml"
    bad.write_text("[realesrgan]\nnoise_range = [9, 1]\n")
    assert main(["data", "degrade", str(images), "-o", str(tmp_path / "p"), "-c", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and f"{bad}: [realesrgan] noise_range must be" in err
    assert main(["data", "degrade", str(tmp_path / "missing.png"), "-o", str(tmp_path / "p")]) == 2
    assert "missing.png: not an image file or folder" in capsys.readouterr().err


def test_example_config_lists_the_defaults():
    """configs/srresnet_x4_real.toml documents every option with its default value."""
    from pathlib import Path

    from srgan.training.config import read_config_file

    options = read_config_file(Path(__file__).parents[1] / "configs" / "srresnet_x4_real.toml")
    cfg = TrainConfig.from_dict(options)
    assert cfg.degradation == "realesrgan" and cfg.realesrgan == DegradationConfig()
    assert set(options["realesrgan"]) == {f.name for f in dataclasses.fields(DegradationConfig)}
