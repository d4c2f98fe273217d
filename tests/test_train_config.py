"""TrainConfig owns every default: Python and `srgan train` resolve the same config."""

import json

import pytest

from srgan.cli.main import main
from srgan.training.config import TrainConfig


@pytest.fixture
def resolved(monkeypatch, tmp_path):
    """The TrainConfig that `srgan train ARGS` would train with (training itself skipped)."""
    from srgan.training import loop

    seen = []
    monkeypatch.setattr(loop, "train", lambda cfg: seen.append(cfg) or tmp_path / "generator.safetensors")

    def resolve(*args: str) -> TrainConfig:
        assert main(["train", "--train-dir", "photos", "--out", str(tmp_path / "run"), *args]) == 0
        return seen.pop()

    return resolve


@pytest.mark.parametrize("phase, content_loss, lr_schedule", [("srresnet", "mse", "constant"),
                                                              ("srgan", "vgg54", "step")])
def test_python_and_cli_take_the_same_phase_defaults(resolved, tmp_path, phase, content_loss, lr_schedule):
    cfg = TrainConfig(phase=phase, train_dirs=("photos",), out=str(tmp_path / "run"))
    assert (cfg.content_loss, cfg.lr_schedule) == (content_loss, lr_schedule)
    assert resolved("--phase", phase) == cfg


def test_an_explicit_value_wins_over_the_phase_default(resolved, tmp_path):
    cfg = TrainConfig(phase="srgan", content_loss="mse", lr_schedule="cosine")
    assert (cfg.content_loss, cfg.lr_schedule) == ("mse", "cosine")
    cli = resolved("--phase", "srgan", "--content-loss", "mse", "--lr-schedule", "cosine")
    assert (cli.content_loss, cli.lr_schedule) == ("mse", "cosine")
    with pytest.raises(ValueError, match="pixel loss"):
        TrainConfig(content_loss="vgg54")  # phase srresnet


def test_a_saved_config_reads_back_unchanged(tmp_path):
    cfg = TrainConfig(phase="srgan", content_loss="mse", lr_schedule="constant", out=str(tmp_path))
    cfg.save(tmp_path / "config.json")
    assert TrainConfig.from_dict(json.loads((tmp_path / "config.json").read_text())) == cfg
    assert TrainConfig.from_file(resume=True, out=str(tmp_path)) == cfg


def test_config_files_read_from_python(tmp_path):
    toml = tmp_path / "gan.toml"
    toml.write_text('phase = "srgan"\ntrain_dirs = "photos"\nbatch-size = 4\n'
                    'degradation = "realesrgan"\n\n[realesrgan]\nsinc_prob = 0.0\n')
    cfg = TrainConfig.from_file(toml, iterations=10)
    assert (cfg.phase, cfg.train_dirs, cfg.batch_size, cfg.iterations) == ("srgan", ("photos",), 4, 10)
    assert (cfg.content_loss, cfg.lr_schedule, cfg.realesrgan.sinc_prob) == ("vgg54", "step", 0.0)
    assert TrainConfig.from_file(toml, batch_size=8).batch_size == 8  # overrides win over the file
    pytest.importorskip("yaml")
    yaml = tmp_path / "gan.yaml"
    yaml.write_text("phase: srgan\ncontent_loss: vgg22\n")
    assert TrainConfig.from_file(yaml).content_loss == "vgg22"
    (tmp_path / "gan.json").write_text("{}")
    with pytest.raises(ValueError, match="toml, .yaml or .yml"):
        TrainConfig.from_file(tmp_path / "gan.json")


def test_resume_layers_the_run_config_then_the_file_then_overrides(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    TrainConfig(phase="srgan", lr_schedule="cosine", iterations=100, seed=7, out=str(run)).save(run / "config.json")
    toml = tmp_path / "more.toml"
    toml.write_text(f'out = "{run}"\niterations = 200\nseed = 8\n')
    cfg = TrainConfig.from_file(toml, resume=True, seed=9)
    assert (cfg.phase, cfg.lr_schedule, cfg.iterations, cfg.seed) == ("srgan", "cosine", 200, 9)
    assert TrainConfig.from_file(toml, seed=9).phase == "srresnet"  # without resume the run's config is not read
