import json
import logging

import numpy as np
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
    assert not (out / "generator_raw.safetensors").exists()  # only a run with an EMA has two generators
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
    # Iterations 3-4 ran again from the older state: logged once, as the replay saw them.
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["iteration"] for r in rows] == [1, 2, 3, 4, 5]
    assert "dropped 2 records after iteration 2" in caplog.text


def fake_vgg_file(path):
    torch.manual_seed(0)
    feats = _build_features(36)
    torch.save({f"features.{k}": v for k, v in feats.state_dict().items()}, path)
    return path


def test_phase2_srgan_with_local_vgg_weights(folders, tmp_path, metric_weights):
    init = tmp_path / "p1"
    assert train(folders, init) == 0
    # Offline without LPIPS weights: validation goes on with PSNR, which picks the best generator.
    assert "val_lpips" not in (init / "metrics.jsonl").read_text()
    assert load_generator(init / "best.safetensors").recipe["selected_by"] == "val_psnr_y"
    vgg = fake_vgg_file(tmp_path / "vgg19.pth")
    out = tmp_path / "gan"
    assert train(folders, out, "--phase", "srgan", "--init", str(init / "generator.safetensors"),
                 "--vgg-weights", str(vgg), "--lowfreq-weight", "100", "--pattern-weight", "1e4",
                 "--metric-weights", str(metric_weights)) == 0
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    # Validation is judged by LPIPS too, and the GAN run keeps its LPIPS-best generator.
    validated = [r for r in rows if "val_psnr_y" in r]
    assert validated and all("val_lpips" in r for r in validated)
    assert load_generator(out / "best.safetensors").recipe["selected_by"] == "val_lpips"
    assert {"d_loss", "adv_loss", "content_loss", "g_loss", "lowfreq_loss", "pattern_loss", "d_hr", "d_sr"} <= set(rows[0])
    assert json.loads((out / "config.json").read_text())["content_loss"] == "vgg54"
    assert load_generator(out / "generator.safetensors").recipe["adv_weight"] == 1e-3
    assert load_generator(out / "generator.safetensors").recipe["pattern_weight"] == 1e4


@pytest.mark.parametrize("order", ["d_first", "g_first"])
def test_gan_recipe_options_train_and_resume_exactly(folders, tmp_path, monkeypatch, order):
    """U-Net discriminator + relativistic loss + L1 + LDL: every term logged, and resume is still exact."""
    vgg = fake_vgg_file(tmp_path / "vgg19.pth")
    recipe = ("--phase", "srgan", "--vgg-weights", str(vgg), "--discriminator", "unet", "--d-channels", "8",
              "--gan-loss", "ragan", "--pixel-weight", "1e-2", "--ldl-weight", "1", "--ema-decay", "0.9",
              "--gan-order", order)
    whole = tmp_path / "whole"
    assert train(folders, whole, *recipe) == 0
    rows = [json.loads(line) for line in (whole / "metrics.jsonl").read_text().splitlines()]
    assert {"pixel_loss", "ldl_loss", "adv_loss", "d_real_loss", "d_fake_loss"} <= set(rows[0])
    recipe_meta = load_generator(whole / "generator.safetensors").recipe
    assert recipe_meta["discriminator"] == "unet" and recipe_meta["gan_loss"] == "ragan"
    assert recipe_meta["gan_order"] == order
    parts = tmp_path / "parts"
    with monkeypatch.context() as m:
        interrupt_at(m, 1)
        assert train(folders, parts, *recipe) == 130
    assert train(folders, parts, *recipe, "--resume") == 0
    a = torch.load(whole / "checkpoint.pt", weights_only=True)
    b = torch.load(parts / "checkpoint.pt", weights_only=True)
    for part in ("generator", "discriminator", "ema"):
        for k, v in a[part].items():
            assert torch.equal(v, b[part][k]), (part, k)


def _weights(run, part):
    """Trained tensors of one network in a run's checkpoint (no BatchNorm statistics or power-iteration vectors)."""
    state = torch.load(run / "checkpoint.pt", weights_only=True)[part]
    return {k: v for k, v in state.items() if v.is_floating_point() and not k.endswith(("_u", "_v", "running_mean", "running_var"))}


def test_g_first_gives_each_network_the_gradient_of_the_paper_loop(folders, tmp_path, monkeypatch):
    """g_first shares D's forwards between the two steps: D's step is the one d_first takes, and G's
    adversarial gradient is the one d_first gives when D has not moved."""
    vgg = fake_vgg_file(tmp_path / "vgg19.pth")
    gan = ("--phase", "srgan", "--vgg-weights", str(vgg), "--d-channels", "8")
    unet = (*gan, "--discriminator", "unet", "--gan-loss", "ragan", "--iterations", "1")
    for order in ("d_first", "g_first"):
        assert train(folders, tmp_path / f"one_{order}", *unet, "--gan-order", order) == 0
    d_first, g_first = (_weights(tmp_path / f"one_{o}", "discriminator") for o in ("d_first", "g_first"))
    for k, v in d_first.items():  # D's first step: from the same D and the same SR in both orders
        torch.testing.assert_close(g_first[k], v, rtol=1e-5, atol=1e-7, msg=k)
    g = [_weights(tmp_path / f"one_{o}", "generator") for o in ("d_first", "g_first")]
    assert any(not torch.equal(v, g[1][k]) for k, v in g[0].items())  # G saw D before / after its step

    # With D's loss at zero, D never moves, so the two orders must train G identically.
    import srgan.training.loop as loop
    monkeypatch.setattr(loop, "discriminator_losses", lambda real, fake: (0 * real.sum(), 0 * fake.sum()))
    for order in ("d_first", "g_first"):
        assert train(folders, tmp_path / f"still_{order}", *gan, "--iterations", "3", "--gan-order", order) == 0
    d = [_weights(tmp_path / f"still_{o}", "discriminator") for o in ("d_first", "g_first")]
    g = [_weights(tmp_path / f"still_{o}", "generator") for o in ("d_first", "g_first")]
    assert all(torch.equal(v, d[1][k]) for k, v in d[0].items())
    for k, v in g[0].items():
        torch.testing.assert_close(g[1][k], v, rtol=1e-5, atol=1e-7, msg=k)


def test_offline_without_vgg_weights_stops_before_work(folders, tmp_path, monkeypatch, capsys):
    import srgan.losses.perceptual as perceptual
    from srgan.files import DownloadError

    def offline(url, *a, **k):
        raise DownloadError(f"{url}: download failed (no network); run the same command again to resume")

    monkeypatch.setattr(perceptual, "download", offline)
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
                                        ({"content_loss": "vgg54"}, "pixel loss"), ({"nope": 1}, "unknown"),
                                        ({"checkpoint_moments": "fp16"}, "checkpoint_moments"),
                                        ({"gan_order": "both"}, "gan_order")])
def test_config_validation(bad, match):
    with pytest.raises(ValueError, match=match):
        TrainConfig.from_dict(bad)


def interrupt_at(monkeypatch, iteration: int) -> None:
    """Deliver a real SIGINT to this process when the loop reaches `iteration`."""
    import os
    import signal

    import srgan.training.loop as loop

    real = loop.lr_at

    def lr_then_signal(step, cfg):
        if step == iteration:
            os.kill(os.getpid(), signal.SIGINT)
        return real(step, cfg)

    monkeypatch.setattr(loop, "lr_at", lr_then_signal)


def test_interrupted_and_resumed_run_ends_with_identical_weights(folders, tmp_path, monkeypatch, capsys):
    straight, split = tmp_path / "straight", tmp_path / "split"
    args = ["--iterations", "6", "--save-every", "100", "--lr-schedule", "step"]
    assert train(folders, straight, *args) == 0
    with monkeypatch.context() as m:
        interrupt_at(m, 2)
        assert train(folders, split, *args) == 130
    assert "stopped by signal 2 at iteration 3" in capsys.readouterr().err
    assert train(folders, split, *args, "--resume") == 0
    a = torch.load(straight / "checkpoint.pt", weights_only=True)
    b = torch.load(split / "checkpoint.pt", weights_only=True)
    for k, v in a["generator"].items():
        assert torch.equal(v, b["generator"][k]), k


def test_gan_resume_is_exact_too(folders, tmp_path, monkeypatch):
    init = tmp_path / "p1"
    assert train(folders, init, "--iterations", "2") == 0
    gan = ["--phase", "srgan", "--content-loss", "mse", "--init", str(init / "generator.safetensors"),
           "--ema-decay", "0.9", "--iterations", "4"]
    assert train(folders, tmp_path / "a", *gan) == 0
    with monkeypatch.context() as m:
        interrupt_at(m, 1)
        assert train(folders, tmp_path / "b", *gan) == 130
    assert train(folders, tmp_path / "b", *gan, "--resume") == 0
    a = torch.load(tmp_path / "a" / "checkpoint.pt", weights_only=True)
    b = torch.load(tmp_path / "b" / "checkpoint.pt", weights_only=True)
    for part in ("generator", "discriminator", "ema"):
        for k, v in a[part].items():
            assert torch.equal(v, b[part][k]), (part, k)


def test_epochs_set_the_iteration_count(folders, tmp_path):
    out = tmp_path / "run"
    assert train(folders, out, "--epochs", "2", "--iterations", "1000") == 0
    # 3 usable images, batch 2: ceil(2 * 3 / 2) = 3 iterations
    assert torch.load(out / "checkpoint.pt", weights_only=True)["step"] == 3


def test_paired_lr_folders(folders, tmp_path):
    train_dir, _ = folders
    lr_dir = tmp_path / "lr"
    lr_dir.mkdir()
    from srgan.data.dataset import load_pairs
    from srgan.data.degradation import bicubic_downscale, modcrop
    from srgan.data.pairs import decode_rgb

    for i in range(3):
        hr = modcrop(decode_rgb(train_dir / "nested" / f"{i}.png"), 4)
        Image.fromarray(bicubic_downscale(hr, 4)[:, ::-1]).save(lr_dir / f"{i}x4.png")  # mirrored: provably used
    pairs = load_pairs([train_dir], 4, 32, [lr_dir])
    assert len(pairs) == 3
    assert np.array_equal(pairs[0].lr, bicubic_downscale(pairs[0].hr, 4)[:, ::-1])


def test_prepared_cache_trains_without_decoding(folders, tmp_path, capsys):
    train_dir, val_dir = folders
    cache = tmp_path / "cache"
    assert main(["data", "prepare", str(train_dir), "-o", str(cache), "--crop", "48", "--step", "32"]) == 0
    assert "sub-images" in capsys.readouterr().out
    from srgan.data.dataset import load_pairs

    pairs = load_pairs([cache], 4, 32)
    assert pairs and all(p.hr.shape[0] == 4 * p.lr.shape[0] for p in pairs)
    assert isinstance(pairs[0].hr, np.memmap)
    out = tmp_path / "run"
    assert main(["train", "--train-dir", str(cache), "--out", str(out), "--num-blocks", "1", "--channels", "8",
                 "--device", "cpu", "--precision", "fp32", *TINY]) == 0


def test_plot_draws_losses_and_psnr(folders, tmp_path):
    out = tmp_path / "run"
    assert train(folders, out) == 0
    assert main(["plot", str(out), "-o", str(tmp_path / "curves.png")]) == 0
    assert Image.open(tmp_path / "curves.png").size[0] > 600
    assert main(["plot", str(tmp_path), "-o", str(tmp_path / "x.png")]) == 2


def test_pattern_loss_is_zero_without_a_grid_and_pulls_a_grid_away():
    from srgan.losses import pattern_loss

    hr = torch.rand(4, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    assert pattern_loss(hr, hr, 4) == 0
    grid = torch.zeros(1, 1, 4, 4)
    grid[..., 1, 2] = 0.02
    sr = (hr + grid.repeat(1, 1, 8, 8)).requires_grad_(True)
    loss = pattern_loss(sr, hr, 4)
    assert loss > 0
    loss.backward()
    with torch.no_grad():
        assert pattern_loss(sr - 1000 * sr.grad, hr, 4) < 0.8 * loss  # a gradient step shrinks the grid


def test_plot_places_stages_end_to_end():
    from srgan.cli.plot_cmd import in_sequence

    stage1 = [{"iteration": 50, "g_loss": 1.0}, {"iteration": 100, "val_psnr_y": 28.0}]
    stage2 = [{"iteration": 50, "g_loss": 0.5}, {"iteration": 200, "val_psnr_y": 29.0}]
    stage3 = [{"iteration": 10, "g_loss": 0.4}]
    placed = in_sequence([("a", stage1), ("b", stage2), ("c", stage3)])
    assert [[r["iteration"] for r in rows] for _, rows in placed] == [[50, 100], [150, 300], [310]]
    assert stage2[0]["iteration"] == 50  # the caller's rows are not modified


def test_nan_loss_stops_with_last_good_checkpoint(folders, tmp_path, monkeypatch, capsys):
    import srgan.training.loop as loop

    real = loop.F.mse_loss
    calls = {"n": 0}

    def flaky(a, b):
        calls["n"] += 1
        return real(a, b) * (float("nan") if calls["n"] == 3 else 1.0)

    monkeypatch.setattr(loop.F, "mse_loss", flaky)
    out = tmp_path / "run"
    assert train(folders, out) == 1
    assert "non-finite loss by iteration 3" in capsys.readouterr().err
    assert torch.load(out / "checkpoint.pt", weights_only=True)["step"] == 2


@pytest.mark.parametrize("name", ["srresnet_x4.toml", "srgan_x4.toml"])
def test_example_configs_are_valid(name):
    from pathlib import Path

    cfg = TrainConfig.from_file(Path(__file__).parents[1] / "configs" / name)
    assert cfg.scale == 4 and cfg.batch_size == 16 and cfg.patch_size == 96


def test_resume_needs_only_the_run_folder(folders, tmp_path):
    out = tmp_path / "run"
    assert train(folders, out) == 0
    assert main(["train", "--out", str(out), "--resume", "--iterations", "5"]) == 0
    assert torch.load(out / "checkpoint.pt", weights_only=True)["step"] == 5
    assert json.loads((out / "config.json").read_text())["num_blocks"] == 1


def test_bf16_moments_make_a_smaller_checkpoint_that_resumes_close_to_an_uninterrupted_run(
        folders, tmp_path, monkeypatch):
    """--checkpoint-moments bf16: the resume file kept in git; weights stay fp32, Adam's moments
    are rounded once per resume, so the resumed run is close to (not equal to) the whole run."""
    gan = ["--phase", "srgan", "--content-loss", "mse", "--discriminator", "unet", "--d-channels", "8",
           "--ema-decay", "0.9", "--iterations", "4"]
    assert train(folders, tmp_path / "fp32", *gan) == 0
    assert train(folders, tmp_path / "a", *gan, "--checkpoint-moments", "bf16") == 0
    full = torch.load(tmp_path / "fp32" / "checkpoint.pt", weights_only=True)
    small = torch.load(tmp_path / "a" / "checkpoint.pt", weights_only=True)
    moments = [v for s in small["g_opt"]["state"].values() for k, v in s.items() if k.startswith("exp_avg")]
    assert moments and all(v.dtype == torch.bfloat16 for v in moments)
    assert all(v.dtype == torch.float32 for v in small["generator"].values() if v.is_floating_point())
    assert (tmp_path / "a" / "checkpoint.pt").stat().st_size < (tmp_path / "fp32" / "checkpoint.pt").stat().st_size
    with monkeypatch.context() as m:
        interrupt_at(m, 1)
        assert train(folders, tmp_path / "b", *gan, "--checkpoint-moments", "bf16") == 130
    assert train(folders, tmp_path / "b", *gan, "--resume") == 0
    resumed = torch.load(tmp_path / "b" / "checkpoint.pt", weights_only=True)
    assert json.loads((tmp_path / "b" / "config.json").read_text())["checkpoint_moments"] == "bf16"
    assert resumed["g_opt"]["state"][0]["exp_avg"].dtype == torch.bfloat16
    for k, v in full["generator"].items():
        if v.is_floating_point():
            torch.testing.assert_close(resumed["generator"][k], v, rtol=1e-2, atol=1e-4)


def test_plot_adds_an_lpips_panel_when_the_run_logged_it(tmp_path):
    run = tmp_path / "gan"
    run.mkdir()
    rows = [{"iteration": i, "epoch": 0, "g_loss": 1 / i, "d_loss": 1.0, "content_loss": 0.5 / i, "adv_loss": 2.0}
            for i in (20, 40)] + [{"iteration": 40, "epoch": 0, "val_psnr_y": 29.0, "val_lpips": 0.25}]
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert main(["plot", str(run), "-o", str(tmp_path / "with.png")]) == 0
    (run / "metrics.jsonl").write_text("".join(json.dumps({k: v for k, v in r.items() if k != "val_lpips"}) + "\n"
                                               for r in rows))
    assert main(["plot", str(run), "-o", str(tmp_path / "without.png")]) == 0
    assert Image.open(tmp_path / "with.png").size[0] > 1.3 * Image.open(tmp_path / "without.png").size[0]


GAN4 = ["--phase", "srgan", "--content-loss", "mse", "--discriminator", "unet", "--d-channels", "8",
        "--ema-decay", "0.9", "--iterations", "4"]


def stopped_gan_run(folders, tmp_path, monkeypatch, moments: str, stop_at: int):
    """A 4-iteration GAN run ("fp32"), and the same run stopped at `stop_at` with `moments` checkpoints."""
    assert train(folders, tmp_path / "fp32", *GAN4) == 0
    with monkeypatch.context() as m:
        interrupt_at(m, stop_at)
        assert train(folders, tmp_path / moments, *GAN4, "--checkpoint-moments", moments) == 130
    return torch.load(tmp_path / moments / "checkpoint.pt", weights_only=True)


def assert_resumes_close_to_uninterrupted(folders, tmp_path, moments: str, size_ratio: float, atol: float) -> None:
    run, full = tmp_path / moments, tmp_path / "fp32"
    assert (run / "checkpoint.pt").stat().st_size < size_ratio * (full / "checkpoint.pt").stat().st_size
    assert train(folders, run, *GAN4, "--resume") == 0
    resumed = torch.load(run / "checkpoint.pt", weights_only=True)
    assert resumed["step"] == 4
    for k, v in torch.load(full / "checkpoint.pt", weights_only=True)["generator"].items():
        if v.is_floating_point():
            torch.testing.assert_close(resumed["generator"][k].float(), v, rtol=5e-2, atol=atol)


def test_tiny_checkpoints_are_under_a_third_of_the_size_keep_the_ema_and_resume(folders, tmp_path, monkeypatch):
    """--checkpoint-moments tiny: second moments in 8 bits, no first moments, G and D fp16, the EMA
    as its int8 difference from G, so the EMA comes back within 1/254 of each output channel's
    largest distance from G (the fp32 export of the same save as reference), and the raw
    generator is exported beside it."""
    from safetensors.torch import load_file

    from srgan.training.checkpoint import expand_state

    small = stopped_gan_run(folders, tmp_path, monkeypatch, "tiny", 2)
    for opt in ("g_opt", "d_opt"):
        assert all(set(s) == {"step", "exp_avg_sq_log8", "exp_avg_sq_range"} and s["exp_avg_sq_log8"].dtype == torch.uint8
                   for s in small[opt]["state"].values())
    assert all(v.dtype == torch.float16 for net in ("generator", "discriminator")
               for v in small[net].values() if v.is_floating_point()) and "ema" not in small
    assert {v.dtype for v in small["ema_delta"].values()} == {torch.int8, torch.int64}  # + BN's batch count
    exported = load_file(tmp_path / "tiny" / "generator.safetensors")  # the EMA of the same save, fp32
    for k, v in expand_state(small)["ema"].items():
        if v.is_floating_point():
            distance = (exported[k] - small["generator"][k].float()).abs()
            largest = distance.flatten(1).amax(1).view(-1, *[1] * (v.dim() - 1)) if v.dim() > 1 else distance.max()
            assert ((v - exported[k]).abs() <= largest / 254 + 1e-7).all(), k
            assert (v - exported[k]).abs().mean() < 0.01 * distance.mean(), k
    raw = load_generator(tmp_path / "tiny" / "generator_raw.safetensors")  # beside the EMA, in fp32
    assert raw.recipe["weights"] == "raw generator (no EMA)"
    for k, v in raw.state_dict().items():
        if v.is_floating_point():
            torch.testing.assert_close(v.half(), small["generator"][k], rtol=0, atol=0)
    assert_resumes_close_to_uninterrupted(folders, tmp_path, "tiny", 0.35, atol=2e-3)


def test_tiny_checkpoints_keep_second_moments_to_3_percent_of_their_square_root():
    """Adam steps by m / sqrt(v): 8-bit log codes over a 40-octave range keep sqrt(v) within 2.8%,
    zeros stay zero, and the step count is kept, so a resumed Adam takes steps of the same size."""
    from srgan.training.checkpoint import compact_state, expand_state

    v = torch.exp2(torch.empty(64, 3, 3, 3).uniform_(-40, 0)).contiguous(memory_format=torch.channels_last)
    zero = torch.rand(v.shape) < 0.1
    v[zero] = 0
    param_state = {"step": torch.tensor(123.0), "exp_avg": torch.randn_like(v), "exp_avg_sq": v}
    state = {"step": 123, "generator": {"w": torch.randn(3)}, "g_opt": {"state": {0: param_state}, "param_groups": []}}
    back = expand_state(compact_state(state, "tiny"))["g_opt"]["state"][0]
    assert set(back) == {"step", "exp_avg_sq"} and back["step"] == 123
    assert (back["exp_avg_sq"][zero] == 0).all() and back["exp_avg_sq"].is_contiguous(memory_format=torch.channels_last)
    ratio = back["exp_avg_sq"][~zero].sqrt() / v[~zero].sqrt()
    assert ratio.sub(1).abs().max() <= 2 ** (40 / 1016) - 1 + 1e-4


def test_tiny_checkpoints_written_with_an_fp16_ema_difference_still_load():
    """Resume files from before the int8 EMA difference (no per-channel scales) keep their EMA."""
    from srgan.training.checkpoint import expand_state

    g, delta = torch.randn(4, 3).half(), torch.randn(4, 3).mul(1e-3).half()
    state = {"step": 1, "generator": {"w": g, "n": torch.tensor(5)}, "ema_delta": {"w": delta, "n": torch.tensor(5)}}
    ema = expand_state(state)["ema"]
    assert torch.equal(ema["w"], g.float() + delta.float()) and ema["n"] == 5


def test_compact_checkpoints_are_half_the_size_and_resume(folders, tmp_path, monkeypatch):
    """--checkpoint-moments compact: no first moments, EMA in bf16, G and D weights fp32."""
    small = stopped_gan_run(folders, tmp_path, monkeypatch, "compact", 1)
    assert all("exp_avg" not in s and s["exp_avg_sq"].dtype == torch.bfloat16 for s in small["g_opt"]["state"].values())
    assert all(v.dtype == torch.bfloat16 for v in small["ema"].values() if v.is_floating_point())
    assert all(v.dtype == torch.float32 for v in small["discriminator"].values() if v.is_floating_point())
    assert_resumes_close_to_uninterrupted(folders, tmp_path, "compact", 0.75, atol=1e-3)


def test_lookahead_state_moves_chosen_layers_along_the_ema_path_and_resumes(folders, tmp_path, capsys):
    """benchmarks/lookahead_state.py (how srgan_x4 of 2026-12-03 began): the named layer groups go
    on along the EMA's path, w = end + t (end - start), the rest stays at the end, D and the step
    are the state's, and `srgan train --resume` continues from it."""
    import importlib.util
    from pathlib import Path

    from srgan.training.checkpoint import expand_state

    script = Path(__file__).resolve().parents[1] / "benchmarks" / "lookahead_state.py"
    spec = importlib.util.spec_from_file_location("lookahead_state", script)
    lookahead = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(lookahead)
    run, new = tmp_path / "run", tmp_path / "new"
    assert train(folders, run, *GAN4) == 0  # checkpoint.prev.pt: iteration 2; generator.safetensors: the EMA at 4
    args = ["--state", str(run / "checkpoint.prev.pt"), "--weights", str(run / "generator.safetensors"),
            "--groups", "upsample", "tail", "--t", "0.5", "--step", "4", "--out", str(new)]
    assert lookahead.main(args) == 0
    start = expand_state(torch.load(run / "checkpoint.prev.pt", weights_only=True))
    end = load_generator(run / "generator.safetensors").state_dict()
    state = torch.load(new / "checkpoint.pt", weights_only=True)
    assert state["step"] == 4 and start["step"] == 2
    moved = (end["tail.weight"] + 0.5 * (end["tail.weight"] - start["ema"]["tail.weight"])).half().float()
    torch.testing.assert_close(state["ema"]["tail.weight"], moved, rtol=0, atol=0)
    assert not torch.equal(moved, end["tail.weight"].half().float())
    torch.testing.assert_close(state["ema"]["head.0.weight"], end["head.0.weight"], rtol=0, atol=0)
    for k, v in start["discriminator"].items():
        torch.testing.assert_close(state["discriminator"][k], v, rtol=0, atol=0)
    assert train(folders, new, *GAN4, "--iterations", "6", "--resume") == 0
    assert torch.load(new / "checkpoint.pt", weights_only=True)["step"] == 6
    with pytest.raises(SystemExit):  # never over a run's own state
        lookahead.main(args)
    assert "already holds a checkpoint.pt" in capsys.readouterr().err
