"""torchrun with 2 CPU processes (gloo): one node or two, the same global batch, killed and resumed."""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from PIL import Image
from skimage import data

from srgan.models import Generator, GeneratorConfig

pytestmark = pytest.mark.slow  # `make test` runs it; the quick loop leaves it out


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


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker_of(agent_pid: int) -> int:
    """The `srgan train` process a torchrun agent started."""
    for child in Path(f"/proc/{agent_pid}/task/{agent_pid}/children").read_text().split():
        if b"srgan" in Path(f"/proc/{child}/cmdline").read_bytes():
            return int(child)
    raise LookupError(f"torchrun agent {agent_pid} has no srgan worker")


def _launch_nodes(args: list[str]) -> list[subprocess.Popen]:
    """Two torchrun agents meeting as two 'nodes' through a c10d rendezvous on localhost."""
    port = _free_port()
    return [subprocess.Popen([sys.executable, "-m", "torch.distributed.run", "--nnodes=2", "--nproc_per_node=1",
                              "--rdzv_backend=c10d", f"--rdzv_endpoint=127.0.0.1:{port}", "--rdzv_id=srgan-test",
                              "--max-restarts=0", *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             text=True, env=dict(os.environ, OMP_NUM_THREADS="1")) for _ in range(2)]


def _wait(agents: list[subprocess.Popen]) -> tuple[list[int], str]:
    try:
        logs = [agent.communicate(timeout=240)[0] for agent in agents]
    finally:
        for agent in agents:
            agent.kill()
    return [agent.returncode for agent in agents], "\n".join(logs)


def test_two_nodes_resume_after_a_rank_is_killed_and_end_as_an_uninterrupted_run(folder, tmp_path):
    """One rank of a two-node run is SIGKILLed mid-run; the same command with --resume on both
    nodes continues from the last checkpoint and ends with the weights of a run that never stopped."""
    iterations, save_every = "200", "20"
    reference = run_train(folder, tmp_path / "ref", 2, "--iterations", iterations, "--save-every", save_every)
    out = tmp_path / "nodes"
    args = ["-m", "srgan", "train", "--train-dir", str(folder), "--out", str(out), "--num-blocks", "1",
            "--channels", "8", "--iterations", iterations, "--batch-size", "8", "--patch-size", "32",
            "--device", "cpu", "--precision", "fp32", "--log-every", "1", "--save-every", save_every, "--resume"]
    agents = _launch_nodes(args)
    metrics = out / "metrics.jsonl"
    deadline = time.time() + 240
    while time.time() < deadline and not (metrics.exists() and metrics.read_text().count("\n") >= 50):
        time.sleep(0.02)
    os.kill(_worker_of(agents[1].pid), signal.SIGKILL)  # a checkpoint at 40 exists, the run is not done
    codes, log = _wait(agents)
    assert 0 not in codes, log[-3000:]  # both nodes stop: the survivor's collectives fail
    stopped_at = torch.load(out / "checkpoint.pt", weights_only=True)["step"]
    assert 40 <= stopped_at < 200

    codes, log = _wait(_launch_nodes(args))
    assert codes == [0, 0], log[-3000:]
    assert f"resumed from {out} at iteration {stopped_at}" in log
    final = torch.load(out / "checkpoint.pt", weights_only=True)
    assert final["step"] == 200
    for name, tensor in reference["generator"].items():
        assert torch.equal(final["generator"][name], tensor), name
