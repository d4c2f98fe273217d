"""`srgan eval`: JSON shape, table, saved images, the figure, and errors (in-process, tiny data)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from srgan.cli.main import main
from srgan.data.degradation import bicubic_downscale, modcrop
from srgan.metrics import psnr_y, ssim_y
from srgan.evaluation.benchmark import bicubic_upscale
from srgan.registry import MODELS, ModelEntry

skdata = pytest.importorskip("skimage.data")

RESULT_KEYS = {"dataset", "model", "scale", "psnr_y", "ssim_y", "texture", "grid", "edge", "flat", "images", "seconds"}
IMAGE_KEYS = {"dataset", "model", "image", "psnr_y", "ssim_y", "texture", "grid", "edge", "flat", "seconds"}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    """A dataset folder 'Tiny' with two small images whose sizes are not multiples of 4."""
    folder = tmp_path_factory.mktemp("data") / "Tiny"
    folder.mkdir()
    Image.fromarray(skdata.astronaut()[60:126, 170:241]).save(folder / "astronaut.png")  # 66x71
    Image.fromarray(skdata.chelsea()[100:150, 120:182]).save(folder / "cat.png")  # 50x62
    return folder


@pytest.fixture(scope="module")
def weights(tiny_weights) -> Path:
    """conftest's small random-weight x4 generator (file stem tiny_x4)."""
    return tiny_weights


def run_json(capsys, *argv: str) -> dict:
    rc = main(["eval", *argv, "--json", "-q"])
    out = capsys.readouterr().out
    assert rc == 0, out
    return json.loads(out)  # exactly one JSON object on stdout


def test_json_bicubic_matches_the_protocol_functions(capsys, tiny):
    out = run_json(capsys, "--model", "bicubic", "--data", str(tiny), "--scale", "4")
    assert list(out) == ["results"]
    [row] = out["results"]
    assert set(row) == RESULT_KEYS
    assert (row["dataset"], row["model"], row["scale"], row["images"]) == ("Tiny", "bicubic", 4, 2)
    expected_psnr, expected_ssim = [], []
    for name in ("astronaut", "cat"):
        hr = modcrop(np.asarray(Image.open(tiny / f"{name}.png").convert("RGB")), 4)
        sr = bicubic_upscale(bicubic_downscale(hr, 4), 4)
        expected_psnr.append(psnr_y(sr, hr, 4))
        expected_ssim.append(ssim_y(sr, hr, 4))
    assert row["psnr_y"] == pytest.approx(np.mean(expected_psnr), abs=1e-4)
    assert row["ssim_y"] == pytest.approx(np.mean(expected_ssim), abs=1e-6)


def test_json_model_and_bicubic_per_image_rgb(capsys, tiny, weights):
    out = run_json(capsys, "--model", "bicubic", str(weights), "--data", str(tiny), "--per-image", "--rgb",
                   "--no-lpips", "--device", "cpu")
    assert set(out) == {"results", "per_image"}
    assert [(r["dataset"], r["model"]) for r in out["results"]] == [("Tiny", "bicubic"), ("Tiny", "tiny_x4")]
    for r in out["results"]:
        assert set(r) == RESULT_KEYS | {"psnr_rgb"} and r["images"] == 2
    assert len(out["per_image"]) == 4
    assert {(r["model"], r["image"]) for r in out["per_image"]} == {
        (m, i) for m in ("bicubic", "tiny_x4") for i in ("astronaut", "cat")}
    for r in out["per_image"]:
        # edge and flat are left out of an image without straight edges / flat areas
        assert IMAGE_KEYS - {"edge", "flat"} | {"psnr_rgb"} <= set(r) <= IMAGE_KEYS | {"psnr_rgb"}
        assert np.isfinite(r["psnr_y"]) and -1 <= r["ssim_y"] <= 1


def test_table_output_and_saved_images(capsys, tiny, weights, tmp_path):
    rc = main(["eval", "-m", "bicubic", str(weights), "-d", str(tiny), "--save-images", str(tmp_path / "out"), "-q"])
    out = capsys.readouterr().out
    assert rc == 0
    header = out.splitlines()[0].split()
    assert header == ["dataset", "model", "PSNR-Y", "SSIM-Y", "texture", "grid", "edge", "flat", "images", "seconds"]
    assert "Tiny" in out and "tiny_x4" in out
    saved = sorted(p.relative_to(tmp_path / "out").as_posix() for p in (tmp_path / "out").rglob("*.png"))
    assert saved == ["Tiny/bicubic/astronaut.png", "Tiny/bicubic/cat.png", "Tiny/tiny_x4/astronaut.png",
                     "Tiny/tiny_x4/cat.png"]
    with Image.open(tmp_path / "out" / "Tiny" / "tiny_x4" / "astronaut.png") as im:
        assert im.size == (68, 64)  # modcropped HR size
    assert not list((tmp_path / "out").rglob("*.tmp"))


def test_figure_is_written(capsys, tiny, weights, tmp_path):
    pytest.importorskip("matplotlib")
    fig = tmp_path / "figs" / "compare.png"
    rc = main(["eval", "-m", str(weights), "-d", str(tiny), "--figure", str(fig), "--figure-images", "cat", "-q"])
    assert rc == 0, capsys.readouterr().err
    assert fig.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(fig) as im:
        assert im.size[0] > im.size[1] > 100  # one row: whole | HR | bicubic | model
    # Bicubic is drawn for the figure but is not reported unless asked for.
    assert "bicubic" not in capsys.readouterr().out


@pytest.mark.parametrize(("argv", "rc", "needle"), [
    (["-m", "bicubic", "-d", "{missing}"], 2, "no such folder"),
    (["-m", "no_such_model", "-d", "{tiny}"], 2, "unknown model 'no_such_model'"),
    (["-m", "{weights}", "-d", "{tiny}", "--scale", "2"], 2, "upscales x4, but --scale is 2"),
    (["-m", "bicubic", "-d", "{tiny}", "--figure", "{tmp}/f.png", "--figure-images", "nope"], 2, "no image named nope"),
    (["-m", "bicubic", "-d", "{tiny}", "--figure-images", "cat"], 2, "needs --figure"),
    (["-m", "{garbage}", "-d", "{tiny}"], 1, "garbage.safetensors"),
])
def test_bad_inputs_fail_with_one_clear_line(capsys, tiny, weights, tmp_path, argv, rc, needle):
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"not weights")
    subst = {"missing": tmp_path / "Nowhere", "tiny": tiny, "weights": weights, "tmp": tmp_path, "garbage": garbage}
    argv = [a.format(**subst) for a in argv]
    assert main(["eval", *argv, "-q"]) == rc
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("srgan eval: error:") and needle in lines[0]


def _absent(name: str) -> ModelEntry:
    """A bundled entry whose file is not in the package."""
    return ModelEntry(name, "absent.safetensors", 4, "SRResNet", "MIT", "x")


def test_pretrained_name_without_weights_is_named(capsys, tiny, monkeypatch):
    monkeypatch.setitem(MODELS, "srresnet_x4", _absent("srresnet_x4"))
    assert main(["eval", "-m", "srresnet_x4", "-d", str(tiny), "-q"]) == 1
    err = capsys.readouterr().err
    assert "srresnet_x4" in err and "absent.safetensors is missing" in err


def test_unreadable_image_is_skipped_and_reported(capsys, tiny, tmp_path):
    folder = tmp_path / "Broken"
    folder.mkdir()
    (folder / "a.png").write_bytes((tiny / "cat.png").read_bytes())
    (folder / "b.png").write_bytes(b"not a png")
    rc = main(["eval", "-m", "bicubic", "-d", str(folder), "--json", "-q"])
    captured = capsys.readouterr()
    assert rc == 1
    assert json.loads(captured.out)["results"][0]["images"] == 1
    assert "b.png" in captured.err


def load_results_script():
    import importlib.util

    script = Path(__file__).resolve().parent.parent / "benchmarks" / "results.py"
    spec = importlib.util.spec_from_file_location("results_script", script)
    results = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(results)
    return results


def test_results_report_script(tiny, tmp_path, monkeypatch):
    """benchmarks/results.py writes the Table-2 style markdown, a figure, and the README section."""
    pytest.importorskip("matplotlib")
    results = load_results_script()
    monkeypatch.setitem(MODELS, "srgan_x4", _absent("srgan_x4"))
    readme = tmp_path / "README.md"
    readme.write_text("# x\n<!-- results:begin -->\nold\n<!-- results:end -->\nend\n")
    out = tmp_path / "docs" / "results.md"
    rc = results.main(["--data", str(tiny), "--models", "bicubic", "srgan_x4", "--out", str(out),
                       "--figures", str(tmp_path / "docs" / "figures"), "--readme", str(readme), "--device", "cpu"])
    assert rc == 0
    text = out.read_text()
    assert "| Dataset | Metric | Bicubic (ours) | Bicubic (paper) | SRGAN (ours) | SRGAN (paper) |" in text
    assert "| Tiny | PSNR |" in text and "SRGAN not evaluated" in text
    assert (tmp_path / "docs" / "figures" / "Tiny_x4.png").is_file()
    assert "![Tiny_x4](figures/Tiny_x4.png)" in text
    assert "old" not in readme.read_text() and "| Tiny | SSIM |" in readme.read_text()


def test_results_script_real_world_section(tiny, weights, tmp_path):
    """--degraded HR:LR and --real add a real-world section: PSNR / SSIM / LPIPS on the degraded
    set, NIQE / grid on the photos, and a figure of the photos."""
    pytest.importorskip("matplotlib")
    results = load_results_script()
    lr = tmp_path / "Tiny_degraded"
    lr.mkdir()
    for path in tiny.iterdir():
        hr = modcrop(np.asarray(Image.open(path).convert("RGB")), 4)
        Image.fromarray(bicubic_downscale(hr, 4)).save(lr / path.name)
    photos = tmp_path / "Photos"
    photos.mkdir()
    Image.fromarray(skdata.astronaut()[:40, :44]).save(photos / "face.png")
    out = tmp_path / "docs" / "results.md"
    rc = results.main(["--data", str(tiny), "--models", "bicubic", "--degraded", f"{tiny}:{lr}", "--real", str(photos),
                       "--real-models", "bicubic", str(weights), "--out", str(out), "--figures",
                       str(tmp_path / "docs" / "figures"), "--readme", str(tmp_path / "none.md"), "--device", "cpu"])
    assert rc == 0
    text = out.read_text()
    assert "## Real-world photos" in text and "| model | Tiny_degraded PSNR / SSIM / LPIPS |" in text
    assert "| model | Photos NIQE / grid |" in text and f"| {weights.stem} |" in text
    assert "![realworld_x4](figures/realworld_x4.png)" in text
    assert (tmp_path / "docs" / "figures" / "realworld_x4.png").is_file()
    assert results.main(["--data", str(tiny), "--degraded", str(tiny), "--out", str(out)]) == 2  # no ":LR_DIR"


def test_sr_dir_scores_16_bit_outputs_as_they_are_and_writes_strict_json(capsys, tmp_path):
    """`srgan upscale` writes 16-bit PNGs from 16-bit inputs; --sr-dir must score those bits, not an
    8-bit truncation, and print JSON that strict parsers accept (identical images: no Infinity)."""
    from srgan.images import Picture, write_image
    from srgan.metrics import psnr_y

    rng = np.random.default_rng(0)
    hr = (rng.integers(0, 250, (64, 64, 3)) * 257).astype(np.uint16)
    sr = hr + rng.integers(0, 200, hr.shape).astype(np.uint16)  # below one 8-bit step
    for folder, img in (("hr", hr), ("sr", sr), ("same", hr)):
        write_image(Picture(img), tmp_path / folder / "a.png")

    def scores(folder: str) -> dict:
        assert main(["eval", "--sr-dir", str(tmp_path / folder), "--hr-dir", str(tmp_path / "hr"), "--json", "-q",
                     "--no-lpips", "--no-niqe"]) == 0
        return json.loads(capsys.readouterr().out, parse_constant=lambda c: pytest.fail(f"non-strict JSON: {c}"))

    row = scores("sr")["results"][0]
    assert row["psnr_y"] == pytest.approx(psnr_y(sr, hr, 4), abs=1e-3) and row["psnr_y"] < 80
    same = scores("same")
    assert same["results"][0]["psnr_y"] is None
    assert same["notes"] == ["psnr_y is null where it is inf (identical images have an infinite PSNR)"]
