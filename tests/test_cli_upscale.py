import os
import signal
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from srgan.cli.main import main


@pytest.fixture
def batch(tmp_path, photo):
    src = tmp_path / "in put"  # a space in the path
    (src / "sub").mkdir(parents=True)
    Image.fromarray(photo[:12, :12]).save(src / "a.png")
    Image.fromarray(photo[12:24, :16]).save(src / "b.jpg")
    Image.fromarray(photo[:8, :8]).save(src / "sub" / "ç日本.png")
    return src


def run(*args) -> int:
    return main(["upscale", *map(str, args)])


def test_folder_batch_writes_outputs_with_suffix(batch, tmp_path, tiny_weights, capsys):
    out = tmp_path / "out"
    assert run(batch, "-o", out, "-m", tiny_weights, "-q") == 0
    assert sorted(p.name for p in out.iterdir()) == ["a_x4.png", "b_x4.jpg"]
    assert Image.open(out / "a_x4.png").size == (48, 48)
    assert not list(out.glob(".*"))  # no temp files left behind


def test_recursive_and_non_ascii_names(batch, tmp_path, tiny_weights):
    out = tmp_path / "out"
    assert run(batch, "-r", "-o", out, "-m", tiny_weights, "-q", "--ext", "webp", "-s", "2") == 0
    assert (out / "ç日本_x2.webp").exists()
    assert Image.open(out / "a_x2.webp").size == (24, 24)


def test_single_file_output_name_and_glob(batch, tmp_path, tiny_weights):
    assert run(batch / "a.png", "-o", tmp_path / "big.png", "-m", tiny_weights) == 0
    assert Image.open(tmp_path / "big.png").size == (48, 48)
    assert run(str(batch / "*.jpg"), "-o", tmp_path / "g", "-m", tiny_weights) == 0
    assert [p.name for p in (tmp_path / "g").iterdir()] == ["b_x4.jpg"]


def test_bad_inputs_are_named_and_the_rest_still_processed(batch, tmp_path, tiny_weights, capsys):
    (batch / "empty.png").write_bytes(b"")
    (batch / "text.jpg").write_text("not an image")
    code = run(batch, tmp_path / "missing.png", "-o", tmp_path / "out", "-m", tiny_weights, "-q")
    err = capsys.readouterr().err
    assert code == 1
    assert "empty.png: empty file" in err and "text.jpg: not an image" in err and "missing.png: no such file" in err
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a_x4.png", "b_x4.jpg"]


def test_existing_outputs_need_overwrite_or_skip(batch, tmp_path, tiny_weights, capsys):
    out = tmp_path / "out"
    assert run(batch / "a.png", "-o", out, "-m", tiny_weights, "-q") == 0
    before = (out / "a_x4.png").stat().st_mtime_ns
    assert run(batch / "a.png", "-o", out, "-m", tiny_weights, "-q") == 1
    assert "exists (use --overwrite or --skip-existing)" in capsys.readouterr().err
    assert run(batch / "a.png", "-o", out, "-m", tiny_weights, "-q", "--skip-existing") == 0
    assert (out / "a_x4.png").stat().st_mtime_ns == before
    assert run(batch / "a.png", "-o", out, "-m", tiny_weights, "-q", "--overwrite") == 0


def test_input_is_never_overwritten(batch, tiny_weights, capsys):
    original = (batch / "a.png").read_bytes()
    code = run(batch / "a.png", "-o", batch, "-m", tiny_weights, "--suffix", "", "--overwrite", "-q")
    assert code == 1 and "output path is the input itself" in capsys.readouterr().err
    assert (batch / "a.png").read_bytes() == original


def test_usage_errors_exit_2(batch, tmp_path, tiny_weights, capsys):
    assert run(batch, "-o", tmp_path / "one.png", "-m", tiny_weights) == 2
    assert run(batch / "a.png", "-o", tmp_path / "o", "-m", "no_such_model") == 2
    assert "unknown model 'no_such_model'" in capsys.readouterr().err
    with pytest.raises(SystemExit) as info:
        main(["upscale", str(batch / "a.png")])  # -o is required
    assert info.value.code == 2


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write anywhere")
def test_unwritable_output_folder_fails_before_work(batch, tmp_path, tiny_weights, capsys):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    assert run(batch, "-o", locked / "x", "-m", tiny_weights) == 1
    assert "not writable" in capsys.readouterr().err


def test_output_path_that_is_a_file_fails_fast(batch, tmp_path, tiny_weights, capsys):
    blocker = tmp_path / "blocker"
    blocker.write_text("")
    assert run(batch, "-o", blocker / "out", "-m", tiny_weights) == 1
    assert "output folder is not writable" in capsys.readouterr().err


def test_python_dash_m_and_help_pages():
    for args in ([], ["upscale"], ["train"], ["demo"]):
        proc = subprocess.run([sys.executable, "-m", "srgan", *args, "--help"], capture_output=True, text=True)
        assert proc.returncode == 0 and "usage: srgan" in proc.stdout
    proc = subprocess.run([sys.executable, "-m", "srgan", "upscale", "--help"], capture_output=True, text=True)
    for flag in ("--outscale", "--tile", "--tile-pad", "--fp32", "--suffix", "--ext", "--skip-existing",
                 "--overwrite", "--quiet", "--recursive", "--max-pixels"):
        assert flag in proc.stdout


def test_the_command_exits_fast_with_its_outputs_and_exit_codes_intact(batch, tmp_path, tiny_weights):
    """`srgan upscale` skips Python's teardown (cli.main.console_main): nothing written is lost."""
    out = tmp_path / "fast"
    (batch / "broken.png").write_bytes(b"not a png")
    ok = subprocess.run([sys.executable, "-m", "srgan", "upscale", str(batch), "-o", str(out), "-m", str(tiny_weights)],
                        capture_output=True, text=True)
    assert ok.returncode == 1, ok.stderr  # the batch holds a corrupt file: named, the rest written
    assert "broken" in ok.stderr and "file(s) written" in ok.stdout
    written = sorted(out.glob("*_x4.png"))
    assert written and all(Image.open(f).size[0] > 0 for f in written)
    usage = subprocess.run([sys.executable, "-m", "srgan", "upscale", str(batch), "-o", str(out), "--tile", "-1"],
                           capture_output=True, text=True)
    assert usage.returncode == 2 and "--tile" in usage.stderr


def test_sigint_mid_batch_keeps_finished_outputs_and_exits_130(tmp_path, photo):
    src = tmp_path / "in"
    src.mkdir()
    big = np.tile(photo, (2, 2, 1))  # 192x192: ~0.2 s each, so the batch outlasts the signal's delivery
    for i in range(30):
        Image.fromarray(big[: 160 + i, :160]).save(src / f"{i:02d}.png")
    out = tmp_path / "out"
    # A test run started in the background (`nohup ... &` from a script) inherits SIGINT ignored, and
    # Python keeps an ignored SIGINT: give the child the default disposition a terminal gives it.
    proc = subprocess.Popen([sys.executable, "-m", "srgan", "upscale", str(src), "-o", str(out),
                             "-m", "srresnet_x4", "-q"], stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    import time

    deadline = time.time() + 120
    while time.time() < deadline and not (out.exists() and len(list(out.glob("*.png"))) >= 1):
        time.sleep(0.1)
    proc.send_signal(2)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    done = sorted(out.glob("*.png"))
    assert 1 <= len(done) < 30
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no partial temp files
    for p in done:
        Image.open(p).load()  # every kept output is complete
    assert main(["upscale", str(src), "-o", str(out), "-m", "srresnet_x4", "-q", "--skip-existing"]) == 0
    assert len(list(out.glob("*.png"))) == 30
