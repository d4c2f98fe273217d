"""torchrun with 2 CPU processes (gloo) follows a single process on the same global batch."""

import os
import subprocess
import sys

import pytest
import torch
from PIL import Image
from skimage import data

from srgan.models import Generator, GeneratorConfig


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("ddp")
    for i, img in enumerate([data.astronaut(), data.coffee(), data.chelsea(), data.rocket()]):
        Image.fromarray(img[:96, :96]).save(root / f"{i}.png")
    return root


def run_train(folder, out, nproc: int, *extra: str):
    args = ["-m", "srgan", "train", "--train-dir", str(folder), "--out", str(out), "--num-blocks", "1",
            "--channels", "8", "--iterations", "3", "--batch-size", "8", "--patch-size", "32",
            "--device", "cpu", "--precision", "fp32", "--log-every", "1", "--save-every", "3", *extra]
    if nproc > 1:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}", *args]
    else:
        cmd = [sys.executable, *args]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return torch.load(out / "checkpoint.pt", weights_only=True)


def test_two_ranks_of_batch_4_follow_one_rank_of_batch_8(folder, tmp_path):
    single = run_train(folder, tmp_path / "one", 1)
    double = run_train(folder, tmp_path / "two", 2)
    half = run_train(folder, tmp_path / "half", 1, "--batch-size", "4")  # control: rank 0's share alone
    assert double["step"] == 3
    torch.manual_seed(0)  # the runs' seed: both started from these weights
    init = Generator(GeneratorConfig(num_blocks=1, channels=8)).state_dict()
    def distance(a, b):
        keys = [k for k, v in a.items() if v.is_floating_point() and "running" not in k]
        return sum(float((a[k] - b[k]).pow(2).sum()) for k in keys) ** 0.5

    moved = distance(single["generator"], init)
    gap = distance(single["generator"], double["generator"])
    # Same crops and averaged gradients; only BatchNorm batch statistics differ (per rank of 4),
    # so DDP stays close to the single process, and much closer than a half batch alone gets.
    assert gap < 0.35 * moved, (gap, moved)
    assert gap < 0.8 * distance(single["generator"], half["generator"])
    assert not (tmp_path / "two" / "metrics.jsonl").read_text().count("\n") > 3  # rank 0 alone logs
