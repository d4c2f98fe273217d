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
    steps) and the EMA in bf16; G and D stay fp32. rebuild (a fifth of fp32, for a resume file
    committed many times): no Adam state at all, G and D in fp16, the EMA as its fp16 difference
    from the stored G. fp16 rounds a weight by about a third of one training step's change, and
    the EMA, whose distance from G is ~1e-3, by ~1e-7 (bf16 of the EMA itself rounds by ~1e-4,
    a hundred steps of its motion). Loading needs `expand_state` first and `refill_moments`
    after Optimizer.load_state_dict, which casts the rest back itself.
    """
    if moments == "fp32":
        return state
    if moments == "rebuild":
        # Adam restarted from step 0 keeps its bias correction, so its first steps move each
        # weight by about lr: Adam's largest step, not a jump.
        half = {k: _cast(state[k], torch.float16) for k in ("generator", "discriminator") if k in state}
        out = {k: v for k, v in state.items() if k not in ("g_opt", "d_opt", "ema")} | half
        out |= {k: {**state[k], "state": {}} for k in ("g_opt", "d_opt") if k in state}
        if "ema" in state:
            out["ema_delta"] = {k: (v - half["generator"][k].float()).half() if v.is_floating_point() else v
                                for k, v in state["ema"].items()}
        return out
    dropped = ("exp_avg",) if moments == "compact" else ()

    def optimizer(opt_state: dict) -> dict:
        per_param = {i: {k: v.to(torch.bfloat16) if torch.is_tensor(v) and v.dim() > 0 and v.is_floating_point() else v
                         for k, v in s.items() if k not in dropped}
                     for i, s in opt_state["state"].items()}
        return {**opt_state, "state": per_param}

    out = {k: optimizer(v) if k in ("g_opt", "d_opt") else v for k, v in state.items()}
    if moments == "compact" and "ema" in out:
        out["ema"] = _cast(out["ema"], torch.bfloat16)
    return out


def _cast(weights: dict[str, torch.Tensor], dtype: torch.dtype) -> dict[str, torch.Tensor]:
    return {k: v.to(dtype) if v.is_floating_point() else v for k, v in weights.items()}


def expand_state(state: dict[str, Any]) -> dict[str, Any]:
    """Undo what `compact_state` stored as a difference: the EMA of a `rebuild` checkpoint."""
    if "ema_delta" not in state:
        return state
    g = state["generator"]
    ema = {k: g[k].float() + d.float() if d.is_floating_point() else d for k, d in state["ema_delta"].items()}
    return {k: v for k, v in state.items() if k != "ema_delta"} | {"ema": ema}


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
