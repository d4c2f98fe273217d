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
