"""Resumable checkpoints: plain tensors and numbers only, loadable with weights_only=True.

`RUN_DIR/checkpoint.pt` is the latest, `RUN_DIR/checkpoint.prev.pt` the one before; both are
written to a temp file and renamed, so a crash, Ctrl-C or full disk never leaves a torn file in
their place, and a file that is corrupt anyway makes `load_latest` fall back to the previous one.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import torch

from ..models.io import atomic_write

log = logging.getLogger(__name__)

LATEST = "checkpoint.pt"
PREVIOUS = "checkpoint.prev.pt"


class CheckpointError(RuntimeError):
    pass


def save_checkpoint(run_dir: Path, state: dict[str, Any]) -> Path:
    latest = run_dir / LATEST
    atomic_write(run_dir / (LATEST + ".new"), lambda tmp: torch.save(state, tmp))
    if latest.exists():
        os.replace(latest, run_dir / PREVIOUS)
    os.replace(run_dir / (LATEST + ".new"), latest)
    return latest


def compact_state(state: dict[str, Any], moments: str) -> dict[str, Any]:
    """The checkpoint as stored for `TrainConfig.checkpoint_moments`.

    fp32: as is (exact resume). bf16: Adam's moments in bf16. compact: the second moments in
    bf16, the first moments left out (zero again on resume, so momentum rebuilds over ~20
    steps) and the EMA in bf16; the weights of G and D always stay fp32. Loading needs
    `refill_moments` after Optimizer.load_state_dict, which casts the rest back itself.
    """
    if moments == "fp32":
        return state
    dropped = ("exp_avg",) if moments == "compact" else ()

    def optimizer(opt_state: dict) -> dict:
        per_param = {i: {k: v.to(torch.bfloat16) if torch.is_tensor(v) and v.dim() > 0 and v.is_floating_point() else v
                         for k, v in s.items() if k not in dropped}
                     for i, s in opt_state["state"].items()}
        return {**opt_state, "state": per_param}

    out = {k: optimizer(v) if k in ("g_opt", "d_opt") else v for k, v in state.items()}
    if moments == "compact" and "ema" in out:
        out["ema"] = {k: v.to(torch.bfloat16) if v.is_floating_point() else v for k, v in out["ema"].items()}
    return out


def refill_moments(opt: torch.optim.Optimizer) -> None:
    """Zero first moments where a compact checkpoint left them out (Adam needs the key)."""
    for group in opt.param_groups:
        for p in group["params"]:
            s = opt.state.get(p)
            if s and "exp_avg_sq" in s and "exp_avg" not in s:
                s["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)


def load_latest(run_dir: Path) -> dict[str, Any]:
    """The newest readable checkpoint in `run_dir`; falls back to the previous one if corrupt."""
    errors = []
    for name in (LATEST, PREVIOUS):
        path = run_dir / name
        if not path.exists():
            continue
        try:
            state = torch.load(str(path), map_location="cpu", weights_only=True)
            if not isinstance(state, dict) or "step" not in state or "generator" not in state:
                raise CheckpointError("not a training checkpoint")
            if errors:
                log.warning("%s; resuming from %s instead", errors[-1], path)
            return state
        except Exception as exc:
            errors.append(f"{path} is unreadable or corrupt ({type(exc).__name__}: {str(exc)[:120]})")
    if errors:
        raise CheckpointError("; ".join(errors))
    raise CheckpointError(f"{run_dir}: no checkpoint to resume from")
