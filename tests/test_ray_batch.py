"""`srgan upscale --ray`: two CPU actors on a local Ray instance give the single-process CLI's files."""

import json
import os
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
import ray
from PIL import Image

from srgan.cli.main import main
from srgan.inference.ray_batch import KILL_HOOK_ENV

pytestmark = pytest.mark.slow  # `make test` runs it; the quick loop leaves it out

MAX_PIXELS = 60 * 60  # the 64x64 input is "oversized"


@pytest.fixture(scope="module")
def local_ray():
    """One Ray instance for the module: its start-up (~5 s) is the slow part of every run."""
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def folder(tmp_path_factory, photo):
    src = tmp_path_factory.mktemp("in")
    for i in range(4):
        Image.fromarray(photo[i * 8:i * 8 + 24, :32]).save(src / f"p{i}.png")
    Image.fromarray(photo[:20, :20]).save(src / "q.jpg", quality=90)
    Image.fromarray(np.dstack([photo[:16, :16], np.full((16, 16), 128, np.uint8)])).save(src / "rgba.png")
    Image.fromarray(photo[:20, :24, 0]).save(src / "grey.webp", lossless=True)
    (src / "corrupt.png").write_bytes((src / "p0.png").read_bytes()[:200])  # truncated
    Image.fromarray(photo[:64, :64]).save(src / "big.png")
    return src


def upscale(src, out, weights, *extra) -> int:
    return main(["upscale", str(src), "-o", str(out), "-m", str(weights), "-q", "--max-pixels", str(MAX_PIXELS),
                 *map(str, extra)])


@pytest.fixture
def batch_dir(tmp_path, photo):
    (tmp_path / "in").mkdir()
    Image.fromarray(photo[:8, :8]).save(tmp_path / "in" / "a.png")
    return tmp_path / "in"


@pytest.fixture(scope="module")
def cli_outputs(folder, tiny_weights, tmp_path_factory):
    out = tmp_path_factory.mktemp("cli")
    assert upscale(folder, out, tiny_weights) == 1  # corrupt.png and big.png fail
    return {p.name: p.read_bytes() for p in out.iterdir()}


def outputs(out):
    return {p.name: p.read_bytes() for p in out.iterdir() if p.name != "srgan-manifest.json"}


def manifest(out):
    return json.loads((out / "srgan-manifest.json").read_text())


def test_base_install_has_no_ray_and_says_how_to_get_it(batch_dir, tiny_weights, tmp_path, monkeypatch, capsys):
    from importlib.metadata import requires

    assert all("extra ==" in r for r in requires("srgan") if r.startswith("ray"))
    monkeypatch.setitem(sys.modules, "ray", None)  # as if not installed
    assert upscale(batch_dir, tmp_path / "out", tiny_weights, "--ray") == 2
    assert "pip install 'srgan[ray]'" in capsys.readouterr().err


def test_unreachable_cluster_is_a_one_line_usage_error(batch_dir, tiny_weights, tmp_path, capsys):
    assert not ray.is_initialized()  # runs before the module's Ray instance starts, or it would be reused
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nobody listens on it once closed
    assert upscale(batch_dir, tmp_path / "out", tiny_weights, "--ray", f"127.0.0.1:{port}") == 2
    assert f"cannot join the Ray cluster at 127.0.0.1:{port}: Connection refused" in capsys.readouterr().err


def test_ray_equals_cli_names_failures_and_resumes(local_ray, folder, tiny_weights, cli_outputs, tmp_path, capsys):
    out = tmp_path / "ray"
    assert upscale(folder, out, tiny_weights, "--ray", "--actors", 2) == 1
    assert outputs(out) == cli_outputs  # same names, formats and bytes
    assert sorted(cli_outputs) == ["grey_x4.webp", "p0_x4.png", "p1_x4.png", "p2_x4.png", "p3_x4.png",
                                   "q_x4.jpg", "rgba_x4.png"]
    err = capsys.readouterr().err
    assert "corrupt.png: corrupt or truncated image" in err and "big.png: 64x64 = 4,096 pixels exceeds" in err
    done = manifest(out)
    assert len(done["written"]) == 7 and done["total"] == 9
    failed = {os.path.basename(f["input"]): f["error"] for f in done["failed"]}
    assert sorted(failed) == ["big.png", "corrupt.png"] and "truncated" in failed["corrupt.png"]
    assert not [p for p in out.iterdir() if p.name.startswith(".")]

    stamps = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    assert upscale(folder, out, tiny_weights, "--ray", "--actors", 2, "--skip-existing") == 1
    again = manifest(out)
    assert again["written"] == [] and len(again["skipped"]) == 7 and len(again["failed"]) == 2
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir() if p.name != "srgan-manifest.json"} == \
        {k: v for k, v in stamps.items() if k != "srgan-manifest.json"}


def test_killed_actor_loses_nothing_and_writes_nothing_twice(local_ray, folder, tiny_weights, cli_outputs, tmp_path,
                                                             monkeypatch):
    arm = tmp_path / "arm"
    arm.write_text("")  # the first actor to finish an output dies right after renaming it into place
    monkeypatch.setenv(KILL_HOOK_ENV, str(arm))
    out = tmp_path / "ray"
    assert upscale(folder, out, tiny_weights, "--ray", "--actors", 2) == 1
    victim = json.loads((tmp_path / "arm.victim").read_text())
    assert not arm.exists()  # the hook fired
    assert os.stat(victim["output"]).st_ino == victim["inode"]  # the retry did not write it again
    assert outputs(out) == cli_outputs
    done = manifest(out)
    assert sorted(os.path.basename(w["output"]) for w in done["written"]) == sorted(cli_outputs)
    assert not [p for p in out.iterdir() if p.name.startswith(".")]


def test_input_that_kills_every_worker_is_reported_and_the_rest_done(local_ray, folder, tiny_weights, cli_outputs,
                                                                      tmp_path, monkeypatch, capsys):
    arm = tmp_path / "arm"
    arm.write_text("p2.png")  # every attempt at p2.png kills its actor
    monkeypatch.setenv(KILL_HOOK_ENV, str(arm))
    out = tmp_path / "ray"
    assert upscale(folder, out, tiny_weights, "--ray", "--actors", 2) == 1
    assert outputs(out) == {k: v for k, v in cli_outputs.items() if k != "p2_x4.png"}
    assert "p2.png: its Ray worker died on each of 4 attempts" in capsys.readouterr().err
    assert len(manifest(out)["failed"]) == 3


def test_plan_names_outputs_two_inputs_would_share(tmp_path, photo):
    from srgan.inference.batch import FileJob
    from srgan.inference.ray_batch import plan

    (tmp_path / "sub").mkdir()
    for path in (tmp_path / "a.png", tmp_path / "sub" / "a.png", tmp_path / "b.png"):
        Image.fromarray(photo[:8, :8]).save(path)
    out = tmp_path / "out"
    out.mkdir()
    (out / "b_x4.png").write_bytes(b"done before")
    rows, known = plan([tmp_path / "a.png", tmp_path / "sub" / "a.png", tmp_path / "b.png"],
                       FileJob(out, False, "_x4", skip_existing=True))
    assert [os.path.basename(r["src"]) for r in rows] == ["a.png"]
    assert [(k.src.name, k.status) for k in known] == [("a.png", "failed"), ("b.png", "skipped")]
    assert "sub/a.png: its output" in known[0].error and "is also that of" in known[0].error



def test_interrupted_run_lists_every_output_it_wrote_and_resumes(tmp_path, photo):
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    for i in range(8):
        Image.fromarray(photo[i:i + 80, :80]).save(src / f"{i}.png")  # ~1 s each with srresnet_x4
    cmd = [sys.executable, "-m", "srgan", "upscale", str(src), "-o", str(out), "-m", "srresnet_x4", "-q",
           "--ray", "--actors", "2"]
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True, start_new_session=True)  # as a shell job
    deadline = time.time() + 240
    while time.time() < deadline and not (out.exists() and list(out.glob("*_x4.png"))):
        time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)  # what a scheduler or `kill` sends; Ctrl-C takes the same path
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    # Ray Data's threads were stopped before Ray: none of them raised into the log after it
    assert "Traceback" not in err, err
    done = manifest(out)
    on_disk = sorted(p.name for p in out.glob("*_x4.png"))
    assert done["interrupted"] and 1 <= len(on_disk) < 8
    assert sorted(os.path.basename(w["output"]) for w in done["written"]) == on_disk
    assert len(done["not_done"]) == 8 - len(on_disk)
    assert not [p for p in out.iterdir() if p.name.startswith(".")]
    proc = subprocess.run(cmd + ["--skip-existing"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    again = manifest(out)
    assert len(again["skipped"]) == len(on_disk) and len(again["written"]) == 8 - len(on_disk)
