"""Resumable checkpoints: plain tensors and numbers only, loadable with weights_only=True.

`RUN_DIR/checkpoint.pt` is the latest, `RUN_DIR/checkpoint.prev.pt` the one before; both are
written to a temp file and renamed, so a crash, Ctrl-C or full disk never leaves a torn file in
their place, and a file that is corrupt anyway makes `load_latest` fall back to the previous one.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import torch

from ..files import atomic_write

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
    steps) and the EMA in bf16; G and D stay fp32. tiny (under a third of fp32, for a resume file
    committed many times): the second moments in 8 bits on a log scale, no first moments, G and
    D in fp16, the EMA as its difference from the stored G in int8 with one scale per output
    channel. fp16 rounds a weight by about a third of one training step's change; the EMA, whose
    distance from G is ~1e-3, comes back within 1/254 of each channel's largest distance (a mean
    ~1e-5), an error the EMA itself forgets at its decay per step (0.999: 3% is left after 3,500
    steps), so it costs the final EMA nothing while halving its share of the file. Loading needs
    `expand_state` first and `refill_moments` after Optimizer.load_state_dict, which casts the
    rest back itself.
    """
    if moments == "fp32":
        return state
    dropped = ("exp_avg",) if moments in ("compact", "tiny") else ()

    def param_state(s: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for k, v in s.items():
            if k in dropped:
                continue
            if k == "exp_avg_sq" and moments == "tiny":
                out |= _log8(v)
            elif torch.is_tensor(v) and v.dim() > 0 and v.is_floating_point():
                out[k] = v.to(torch.bfloat16)
            else:
                out[k] = v  # Adam's step count
        return out

    def optimizer(opt_state: dict) -> dict:
        return {**opt_state, "state": {i: param_state(s) for i, s in opt_state["state"].items()}}

    out = {k: optimizer(v) if k in ("g_opt", "d_opt") else v for k, v in state.items()}
    if moments == "compact" and "ema" in out:
        out["ema"] = _cast(out["ema"], torch.bfloat16)
    if moments == "tiny":
        out |= {k: _cast(state[k], torch.float16) for k in ("generator", "discriminator") if k in state}
        if "ema" in out:
            g, ema = out["generator"], out.pop("ema")
            deltas = {k: v - g[k].float() for k, v in ema.items() if v.is_floating_point()}
            scales = {k: _channel_absmax(d) / 127 for k, d in deltas.items()}
            out["ema_delta"] = {k: (deltas[k] / scales[k]).round().to(torch.int8) if k in deltas else v
                                for k, v in ema.items()}
            out["ema_delta_scale"] = scales
    return out


def _channel_absmax(t: torch.Tensor) -> torch.Tensor:
    """Largest |t| per output channel (dim 0) of a weight, shaped to broadcast; of the whole of a bias."""
    if t.dim() < 2:
        return t.abs().max().clamp_min(1e-30)
    return t.abs().flatten(1).amax(1).clamp_min(1e-30).view(-1, *[1] * (t.dim() - 1))


def _cast(weights: dict[str, torch.Tensor], dtype: torch.dtype) -> dict[str, torch.Tensor]:
    return {k: v.to(dtype) if v.is_floating_point() else v for k, v in weights.items()}


def _log8(v: torch.Tensor) -> dict[str, torch.Tensor]:
    """Adam's second moment (>= 0) as uint8 codes of log2(v) over the tensor's own range; 0 stays 0.

    Only sqrt(v) enters Adam's step, and with a range of R octaves it comes back within a
    factor 2^(R/1016) (a 40-octave range: 2.8%); its scale, which decides the step, is kept.
    """
    v = v.float()
    positive = v > 0
    logv = torch.log2(v.clamp_min(torch.finfo(torch.float32).tiny))
    lo, hi = (logv[positive].min(), logv[positive].max()) if positive.any() else (logv.new_zeros(()),) * 2
    step = (hi - lo).clamp_min(1e-12) / 254
    codes = torch.where(positive, ((logv - lo) / step).round() + 1, 0).to(torch.uint8)
    return {"exp_avg_sq_log8": codes, "exp_avg_sq_range": torch.stack([lo, hi])}


def _unlog8(codes: torch.Tensor, log_range: torch.Tensor) -> torch.Tensor:
    lo, hi = log_range.float()
    value = torch.exp2(lo + (codes.float() - 1) * (hi - lo).clamp_min(1e-12) / 254)
    return torch.where(codes > 0, value, 0.0)


def expand_state(state: dict[str, Any]) -> dict[str, Any]:
    """Undo what a `tiny` checkpoint stored as codes or differences: Adam's second moments, the EMA."""
    def param_state(s: dict[str, Any]) -> dict[str, Any]:
        if "exp_avg_sq_log8" not in s:
            return s
        rest = {k: v for k, v in s.items() if k not in ("exp_avg_sq_log8", "exp_avg_sq_range")}
        return rest | {"exp_avg_sq": _unlog8(s["exp_avg_sq_log8"], s["exp_avg_sq_range"])}

    out = {k: {**v, "state": {i: param_state(s) for i, s in v["state"].items()}} if k in ("g_opt", "d_opt") else v
           for k, v in state.items()}
    if "ema_delta" in out:
        g = out["generator"]
        # Files without scales hold the difference in fp16 (the format before the int8 one).
        scales = out.pop("ema_delta_scale", None) or {k: 1.0 for k, d in out["ema_delta"].items() if d.is_floating_point()}
        out["ema"] = {k: g[k].float() + d.float() * scales[k] if k in scales else d for k, d in out.pop("ema_delta").items()}
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


def trim_log(path: Path, step: int) -> int:
    """Drop the records of iterations after `step` from a JSON-lines log; returns how many.

    A run resumed from an older state than its log reached (the previous checkpoint after a
    corrupt latest one, or a resume file kept in version control behind the log) replays those
    iterations, and would otherwise log them twice. Lines that are not JSON records are kept.
    """
    if not path.is_file():
        return 0
    kept, dropped = [], 0
    for line in path.read_text().splitlines(keepends=True):
        try:
            after = int(json.loads(line).get("iteration", -1)) > step
        except (ValueError, AttributeError, TypeError):
            after = False
        dropped += after
        if not after:
            kept.append(line)
    if dropped:
        atomic_write(path, lambda tmp: Path(tmp).write_text("".join(kept)))
    return dropped
