"""The README's commands are real: Quick start targets exist, documented CLI lines parse, demo runs."""

import re
import shlex
from pathlib import Path

from PIL import Image

from srgan.cli.main import build_parser, main

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def code_lines() -> list[str]:
    blocks = re.findall(r"```bash\n(.*?)```", README, flags=re.S)
    text = "\n".join(blocks).replace("\\\n", " ")
    return [line.split("#")[0].strip() for line in text.splitlines() if line.strip()]


def test_quick_start_is_make_demo_and_make_test():
    quick = README.split("## Quick start", 1)[1].split("##", 1)[0]
    assert re.findall(r"^make \w+", quick, flags=re.M) == ["make demo", "make test"]
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^demo:", makefile, re.M) and re.search(r"^test:", makefile, re.M)
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def test_every_documented_srgan_command_parses():
    parser = build_parser()
    commands = [line for line in code_lines() if re.match(r"(\.venv/bin/srgan|python -m srgan|torchrun)", line)]
    assert len(commands) >= 5
    for line in commands:
        argv = shlex.split(line.split(">")[0])  # drop shell redirections
        start = next(i for i, a in enumerate(argv) if a == "srgan" or a.endswith("/srgan"))
        argv = argv[start + 1 :]
        if "--help" in argv:
            continue
        parser.parse_args(argv)  # SystemExit(2) on any undocumented flag


def test_demo_writes_results_and_comparison(tmp_path, capsys):
    assert main(["demo", "-o", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    for name in ("astronaut_srresnet_x4.png", "astronaut_srgan_x4.png", "comparison.png"):
        assert str(tmp_path / name) in out
    assert Image.open(tmp_path / "astronaut_srgan_x4.png").size == (512, 512)
    comparison = Image.open(tmp_path / "comparison.png")
    assert comparison.width > 4 * 512 and comparison.height > 512
