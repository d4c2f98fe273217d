"""LPIPS and NIQE: the maths against hand computations, the weight lookup, and the eval columns.

No ../shared: the weights are self-made (conftest `metric_weights`), downloads come from a
local HTTP server, and the published calibration is checked by hand (README, closing notes).
"""

from __future__ import annotations

import functools
import hashlib
import http.server
import json
import subprocess
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from skimage import data

from srgan.metrics import weights as mw
from srgan.metrics.lpips_model import LPIPS, MIN_SIZE, canonicalize_state_dict, load_lpips, lpips, unit_normalize
from srgan.metrics.niqe_model import imresize_matrix, matlab_imresize, niqe


@pytest.fixture(scope="module")
def net(metric_weights) -> LPIPS:
    return load_lpips(metric_weights)


@pytest.fixture(scope="module")
def pair() -> tuple[np.ndarray, np.ndarray]:
    hr = np.ascontiguousarray(data.astronaut()[:128, :128])
    noisy = np.clip(hr.astype(np.int16) + np.random.default_rng(0).integers(-40, 41, hr.shape), 0, 255).astype(np.uint8)
    return hr, noisy


def hand_lpips(net: LPIPS, a: np.ndarray, b: np.ndarray) -> float:
    """LPIPS spelled out with functional ops and numpy, from the module's own weights."""
    sd = net.state_dict()

    def taps(img: np.ndarray) -> list[np.ndarray]:
        x = torch.from_numpy(img.astype(np.float32) / 255).permute(2, 0, 1)[None] * 2 - 1
        x = (x - torch.tensor([-0.030, -0.088, -0.188]).view(1, 3, 1, 1)) / torch.tensor([0.458, 0.448, 0.450]).view(1, 3, 1, 1)
        out = []
        conv = lambda x, i, **kw: F.relu(F.conv2d(x, sd[f"features.{i}.weight"], sd[f"features.{i}.bias"], **kw))
        x = conv(x, 0, stride=4, padding=2)
        out.append(x)
        x = conv(F.max_pool2d(x, 3, 2), 3, padding=2)
        out.append(x)
        x = conv(F.max_pool2d(x, 3, 2), 6, padding=1)
        out.append(x)
        x = conv(x, 8, padding=1)
        out.append(x)
        out.append(conv(x, 10, padding=1))
        return [t[0].numpy().astype(np.float64) for t in out]

    total = 0.0
    for k, (fa, fb) in enumerate(zip(taps(a), taps(b))):
        na = fa / (np.sqrt((fa**2).sum(axis=0, keepdims=True)) + 1e-10)
        nb = fb / (np.sqrt((fb**2).sum(axis=0, keepdims=True)) + 1e-10)
        w = sd[f"lins.{k}.weight"].numpy().reshape(-1, 1, 1).astype(np.float64)
        total += float(((na - nb) ** 2 * w).sum(axis=0).mean())
    return total


def test_lpips_matches_a_hand_computation(net, pair):
    hr, noisy = pair
    assert lpips(noisy, hr, weights=net) == pytest.approx(hand_lpips(net, noisy, hr), rel=1e-4)


def test_lpips_identity_symmetry_and_order(net, pair):
    hr, noisy = pair
    assert lpips(hr, hr, weights=net) == 0.0
    assert lpips(noisy, hr, weights=net) == pytest.approx(lpips(hr, noisy, weights=net), rel=1e-6)
    blurred = np.asarray(Image.fromarray(hr).resize((32, 32), Image.BICUBIC).resize((128, 128), Image.BICUBIC))
    mild = np.clip(hr.astype(np.int16) + 4, 0, 255).astype(np.uint8)
    assert 0 < lpips(mild, hr, weights=net) < lpips(blurred, hr, weights=net)


def test_lpips_batch_module_equals_per_image(net, pair):
    hr, noisy = pair
    x = torch.from_numpy(np.stack([hr, noisy])).permute(0, 3, 1, 2).float() / 255
    y = torch.from_numpy(np.stack([noisy, noisy])).permute(0, 3, 1, 2).float() / 255
    batch = net(x, y)
    assert batch.shape == (2,)
    assert float(batch[0]) == pytest.approx(lpips(hr, noisy, weights=net), rel=1e-5)
    assert float(batch[1]) == 0.0


def test_public_functions_are_the_documented_ones():
    import srgan.metrics

    assert srgan.metrics.lpips is lpips and srgan.metrics.niqe is niqe


def test_unit_normalize_gives_unit_channel_vectors():
    x = torch.randn(2, 5, 3, 4)
    n = unit_normalize(x)
    assert torch.allclose(n.pow(2).sum(dim=1), torch.ones(2, 3, 4), atol=1e-5)


def test_lpips_bad_input_is_one_clear_error(net, pair):
    hr, _ = pair
    with pytest.raises(ValueError, match="sizes differ"):
        lpips(hr[:64], hr, weights=net)
    with pytest.raises(ValueError, match=f"at least {MIN_SIZE}x{MIN_SIZE}"):
        lpips(hr[:40, :40], hr[:40, :40], shave=5, weights=net)
    with pytest.raises(ValueError, match="RGB"):
        lpips(hr[..., 0], hr[..., 0], weights=net)
    # 16-bit input is scaled to the same [0, 1] range
    wide = hr.astype(np.uint16) * 257
    assert lpips(wide, wide, weights=net) == 0.0


def test_canonicalize_accepts_official_and_own_keys():
    alex = {"features.0.weight": torch.zeros(1), "classifier.1.weight": torch.zeros(1)}
    official = canonicalize_state_dict(alex, {"lin0.model.1.weight": torch.ones(1), "lin4.model.1.weight": torch.ones(1)})
    assert set(official) == {"features.0.weight", "lins.0.weight", "lins.4.weight"}
    own = canonicalize_state_dict({}, {"lins.2.weight": torch.ones(1)})
    assert set(own) == {"lins.2.weight"}


# ----------------------------------------------------------------------------- weight lookup


def test_folder_layouts_official_names_and_env(tmp_path, metric_weights, monkeypatch):
    official = tmp_path / "official"
    (official / "v0.1").mkdir(parents=True)
    (official / "alexnet-owt-7be5be79.pth").write_bytes((metric_weights / "alexnet_imagenet_features.pth").read_bytes())
    (official / "v0.1" / "alex.pth").write_bytes((metric_weights / "lpips_v0.1_alex.pth").read_bytes())
    assert mw.find_metric_file(mw.LPIPS_ALEX, official) == official / "v0.1" / "alex.pth"
    monkeypatch.setenv(mw.ENV_DIR, str(official))
    assert mw.find_metric_file(mw.ALEXNET) == official / "alexnet-owt-7be5be79.pth"
    a, b = load_lpips(official), load_lpips(metric_weights)
    img = np.ascontiguousarray(data.astronaut()[:64, :64])
    assert lpips(img[::-1].copy(), img, weights=a) == lpips(img[::-1].copy(), img, weights=b)


def test_offline_message_names_the_way_out(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "hub"))
    with pytest.raises(mw.MetricWeightsError) as err:
        mw.find_metric_file(mw.LPIPS_ALEX, tmp_path)
    message = str(err.value)
    assert "\n" not in message and "--metric-weights" in message and mw.ENV_DIR in message
    with pytest.raises(mw.MetricWeightsError, match="no such folder"):
        mw.find_metric_file(mw.ALEXNET, tmp_path / "missing")


@pytest.fixture
def file_server(tmp_path):
    """A local HTTP server over tmp_path/www; yields (folder, base URL)."""
    www = tmp_path / "www"
    www.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(www))
    handler.log_message = lambda *a: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield www, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_download_into_the_hub_cache_with_the_hash_checked(tmp_path, file_server, metric_weights, monkeypatch):
    www, base = file_server
    payload = (metric_weights / "lpips_v0.1_alex.pth").read_bytes()
    (www / "alex.pth").write_bytes(payload)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "hub"))
    monkeypatch.delenv("SRGAN_OFFLINE")
    good = mw.MetricFile("lin", ("alex.pth",), f"{base}/alex.pth", hashlib.sha256(payload).hexdigest(), "lin.pth")
    path = mw.find_metric_file(good, None)
    assert path == tmp_path / "hub" / "hub" / "checkpoints" / "lin.pth" and path.read_bytes() == payload
    assert mw.find_metric_file(good, None) == path  # cached: no second download
    bad = mw.MetricFile("lin", ("alex.pth",), f"{base}/alex.pth", "0" * 64, "bad.pth")
    with pytest.raises(mw.MetricWeightsError, match="checksum mismatch.*deleted"):
        mw.find_metric_file(bad, None)
    assert not (tmp_path / "hub" / "hub" / "checkpoints" / "bad.pth").exists()
    gone = mw.MetricFile("lin", ("alex.pth",), f"{base}/missing.pth", "0" * 64, "gone.pth")
    with pytest.raises(mw.MetricWeightsError, match="HTTP 404.*--metric-weights"):
        mw.find_metric_file(gone, None)


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_code_in_a_weights_pickle_is_refused(tmp_path, metric_weights):
    import pickle

    folder = tmp_path / "evil"
    folder.mkdir()
    (folder / "alexnet_imagenet_features.pth").write_bytes((metric_weights / "alexnet_imagenet_features.pth").read_bytes())
    marker = tmp_path / "ran"

    class Payload:
        def __reduce__(self):
            return (Path.touch, (marker,))

    (folder / "lpips_v0.1_alex.pth").write_bytes(pickle.dumps(Payload()))
    with pytest.raises(mw.MetricWeightsError, match="could not be loaded"):
        load_lpips(folder)
    assert not marker.exists()


# ----------------------------------------------------------------------------- NIQE


def test_matlab_imresize_rows_and_linear_ramp():
    m = imresize_matrix(20, 0.5)
    assert m.shape == (10, 20) and np.allclose(m.sum(axis=1), 1.0)
    ramp = np.tile(np.arange(40, dtype=np.float64), (40, 1))
    half = matlab_imresize(ramp, 0.5)
    # output j (0-based) samples the input at 2j + 0.5; cubic reproduces a ramp away from the mirrored edges
    assert np.allclose(half[:, 4:-4], (2 * np.arange(20) + 0.5)[4:-4])
    assert imresize_matrix(7, 0.5).shape == (4, 7)  # ceil, as MATLAB


def test_niqe_orders_clean_noisy_and_blurred(metric_weights):
    clean = data.astronaut()[:288, :288]
    rng = np.random.default_rng(0)
    noisy = np.clip(clean + rng.normal(0, 25, clean.shape), 0, 255).astype(np.uint8)
    blurred = np.asarray(Image.fromarray(clean).resize((72, 72), Image.BICUBIC).resize((288, 288), Image.BICUBIC))
    score = lambda im: niqe(im, weights=metric_weights)
    assert score(clean) < score(noisy)
    assert score(clean) < score(blurred)
    gray = np.asarray(Image.fromarray(clean).convert("L"))
    assert abs(niqe(gray, weights=metric_weights) - score(clean)) < 0.5  # same content, gray path
    assert niqe(clean.astype(np.uint16) * 257, weights=metric_weights) == pytest.approx(score(clean))


def test_niqe_bad_input(metric_weights):
    with pytest.raises(ValueError, match="two 96x96 blocks"):
        niqe(np.zeros((100, 100, 3), np.uint8), weights=metric_weights)
    with pytest.raises(ValueError, match="two 96x96 blocks"):
        niqe(np.zeros((200, 200, 3), np.uint8), shave=10, weights=metric_weights)  # 180x180 after the shave
    with pytest.raises(ValueError, match="channels"):
        niqe(np.zeros((200, 200, 4), np.uint8), weights=metric_weights)
    with pytest.raises(ValueError, match="uint8 or uint16"):
        niqe(np.zeros((200, 200, 3), np.float32), weights=metric_weights)


# ----------------------------------------------------------------------------- srgan eval


def srgan(capsys, *args: str) -> subprocess.CompletedProcess:
    """Run the CLI in-process; the result looks like a finished subprocess."""
    from srgan.cli.main import main

    capsys.readouterr()
    code = main(list(args))
    out = capsys.readouterr()
    return subprocess.CompletedProcess(args, code, out.out, out.err)


@pytest.fixture(scope="module")
def hr_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("Set2")
    Image.fromarray(data.astronaut()[:200, :200]).save(folder / "astronaut.png")
    Image.fromarray(data.coffee()[:120, :300]).save(folder / "coffee.png")
    return folder


def test_eval_reports_lpips_and_niqe(capsys, hr_dir, metric_weights, tmp_path):
    out = srgan(capsys, "eval", "-m", "bicubic", "-d", str(hr_dir), "--metric-weights", str(metric_weights),
                "--json", "--per-image", "-q", "--save-images", str(tmp_path / "saved"))
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    row = report["results"][0]
    assert {"psnr_y", "ssim_y", "lpips", "niqe", "texture", "grid"} <= set(row)
    assert all({"lpips", "niqe"} <= set(r) for r in report["per_image"])
    table = srgan(capsys, "eval", "-m", "bicubic", "-d", str(hr_dir), "--metric-weights", str(metric_weights), "-q")
    assert "LPIPS" in table.stdout.splitlines()[0] and "NIQE" in table.stdout.splitlines()[0]

    # Folder against folder: the saved outputs scored by --sr-dir/--hr-dir give the same numbers.
    saved = tmp_path / "saved" / hr_dir.name / "bicubic"
    again = srgan(capsys, "eval", "--sr-dir", str(saved), "--hr-dir", str(hr_dir), "--metric-weights", str(metric_weights),
                  "--json", "-q")
    assert again.returncode == 0, again.stderr
    same = json.loads(again.stdout)["results"][0]
    for key in ("psnr_y", "ssim_y", "lpips", "niqe"):
        assert same[key] == pytest.approx(row[key], abs=1e-6), key

    # No ground truth: NIQE alone.
    alone = srgan(capsys, "eval", "--sr-dir", str(saved), "--metric-weights", str(metric_weights), "--json", "-q")
    only = json.loads(alone.stdout)["results"][0]
    assert "psnr_y" not in only and "lpips" not in only and only["niqe"] == pytest.approx(row["niqe"], abs=1e-6)


def test_eval_without_weights_says_why_and_goes_on(capsys, hr_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty_hub"))
    out = srgan(capsys, "eval", "-m", "bicubic", "-d", str(hr_dir), "--json", "--device", "cpu")
    assert out.returncode == 0, out.stderr
    assert "LPIPS skipped:" in out.stderr and "--metric-weights" in out.stderr
    assert "lpips" not in json.loads(out.stdout)["results"][0]


def test_folder_mode_names_bad_and_missing_files(capsys, hr_dir, metric_weights, tmp_path):
    sr = tmp_path / "out"
    sr.mkdir()
    hr = np.asarray(Image.open(hr_dir / "astronaut.png"))
    Image.fromarray(hr).convert("LA").save(sr / "astronaut_x4.png")  # gray + alpha: becomes RGB, alpha dropped
    Image.fromarray(hr[:60]).save(sr / "coffee_x4.png")  # 200x60: not the 300x120 of coffee
    Image.fromarray(hr).save(sr / "stranger_x4.png")  # no ground truth
    out = srgan(capsys, "eval", "--sr-dir", str(sr), "--hr-dir", str(hr_dir), "--sr-suffix", "_x4",
                "--metric-weights", str(metric_weights), "--json", "-q")
    assert out.returncode == 1
    errors = [line for line in out.stderr.splitlines() if line.startswith("srgan eval: error:")]
    assert any("coffee_x4.png" in e and "output is 200x60" in e for e in errors)
    assert any("stranger_x4.png" in e and "no ground-truth image stranger" in e for e in errors)
    result = json.loads(out.stdout)["results"][0]
    assert result["images"] == 1 and result["model"] == "out"
    usage = srgan(capsys, "eval", "--hr-dir", str(hr_dir))
    assert usage.returncode == 2 and "--hr-dir needs --sr-dir" in usage.stderr
    usage = srgan(capsys, "eval", "--sr-dir", str(sr), "-m", "bicubic")
    assert usage.returncode == 2 and "leave out -m" in usage.stderr


def test_eval_with_given_lr_folders(capsys, hr_dir, tmp_path):
    """--lr-dir feeds given LR (e.g. a degraded validation set) instead of bicubic downscaling."""
    from srgan.data.degradation import bicubic_downscale, modcrop

    lr_dir = tmp_path / "Set2_x4_given"
    lr_dir.mkdir()
    for path in hr_dir.iterdir():
        Image.fromarray(bicubic_downscale(modcrop(np.asarray(Image.open(path)), 4), 4)).save(lr_dir / path.name)
    plain = json.loads(srgan(capsys, "eval", "-m", "bicubic", "-d", str(hr_dir), "--json", "-q").stdout)["results"][0]
    given = srgan(capsys, "eval", "-m", "bicubic", "-d", str(hr_dir), "--lr-dir", str(lr_dir), "--json", "-q")
    row = json.loads(given.stdout)["results"][0]
    assert row["dataset"] == "Set2_x4_given" and row["psnr_y"] == plain["psnr_y"]
    Image.fromarray(np.zeros((10, 10, 3), np.uint8)).save(lr_dir / "coffee.png")
    bad = srgan(capsys, "eval", "-m", "bicubic", "-d", str(hr_dir), "--lr-dir", str(lr_dir), "--json", "-q")
    assert bad.returncode == 1 and "coffee.png is 10x10" in bad.stderr
    usage = srgan(capsys, "eval", "-m", "bicubic", "-d", str(hr_dir), "--lr-dir", str(lr_dir), str(lr_dir))
    assert usage.returncode == 2 and "one folder per -d" in usage.stderr


def test_eval_on_real_photos_scores_niqe_of_each_models_output(capsys, hr_dir, metric_weights, tiny_weights, tmp_path):
    """--real: the files are the inputs (no downscaling, no ground truth); NIQE and grid score
    each model's output, the same NIQE that --sr-dir gives the saved outputs; the figure draws."""
    pytest.importorskip("matplotlib")
    photos = tmp_path / "Photos"
    photos.mkdir()
    Image.fromarray(data.astronaut()[:64, :72]).save(photos / "astronaut.png")  # 72x64: not cropped to 4
    Image.fromarray(data.coffee()[:60, :60]).convert("L").save(photos / "gray.png")
    fig = tmp_path / "real.png"
    out = srgan(capsys, "eval", "-m", "bicubic", str(tiny_weights), "--real", str(photos), "--metric-weights",
                str(metric_weights), "--json", "--per-image", "-q", "--save-images", str(tmp_path / "saved"),
                "--figure", str(fig), "--figure-images", "astronaut", "--device", "cpu")
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    rows = {r["model"]: r for r in report["results"]}
    assert set(rows) == {"bicubic", tiny_weights.stem}
    for row in rows.values():
        assert row["dataset"] == "Photos" and row["images"] == 2
        assert "grid" in row and not {"psnr_y", "ssim_y", "lpips"} & set(row)
    assert "niqe" in rows["bicubic"]  # (a random network's output can be too flat for NIQE: then left out, noted)
    saved = tmp_path / "saved" / "Photos" / "bicubic"
    assert Image.open(saved / "astronaut.png").size == (288, 256)  # the whole input, x4
    again = json.loads(srgan(capsys, "eval", "--sr-dir", str(saved), "--metric-weights", str(metric_weights),
                             "--json", "-q").stdout)["results"][0]
    assert again["niqe"] == pytest.approx(rows["bicubic"]["niqe"], abs=1e-6)
    assert Image.open(fig).size[0] > 400
    # -d and --real together; --real with --sr-dir is a usage error
    both = json.loads(srgan(capsys, "eval", "-m", "bicubic", "-d", str(hr_dir), "--real", str(photos), "--no-niqe",
                            "--json", "-q").stdout)["results"]
    assert [r["dataset"] for r in both] == [hr_dir.name, "Photos"] and "psnr_y" in both[0] and "psnr_y" not in both[1]
    usage = srgan(capsys, "eval", "--sr-dir", str(saved), "--real", str(photos))
    assert usage.returncode == 2 and "--real" in usage.stderr
