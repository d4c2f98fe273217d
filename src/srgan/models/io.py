"""Reading and writing generator weights.

Files are safetensors whose metadata carries everything needed to rebuild the model:

    srgan.format   "1"
    srgan.arch     "srresnet"
    srgan.config   GeneratorConfig as JSON
    srgan.range    "0-1" (input and output value range)
    srgan.recipe   a short JSON description of how the weights were trained

`.pth`/`.pt` files are accepted for interoperability but only through
`torch.load(weights_only=True)`, which refuses pickled code.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, safe_open, save_file

from ..files import atomic_write, first_line
from ..registry import WeightsError
from .srresnet import Generator, GeneratorConfig

FORMAT_VERSION = "1"
ARCH = "srresnet"


def save_generator(model: Generator, path: str | os.PathLike, recipe: Mapping[str, Any] | None = None,
                   dtype: torch.dtype | None = None) -> Path:
    """Write `model` to a safetensors file atomically (temp file + rename), its floating-point
    tensors cast to `dtype` if given (fp16 halves the file; `load_generator` casts back to fp32)."""
    path = Path(path)
    metadata = {
        "srgan.format": FORMAT_VERSION,
        "srgan.arch": ARCH,
        "srgan.config": model.config.to_json(),
        "srgan.range": "0-1",
        "srgan.recipe": json.dumps(dict(recipe or {}), sort_keys=True, default=str),
    }
    tensors = {k: v.detach().to("cpu", dtype if dtype is not None and v.is_floating_point() else v.dtype).contiguous()
               for k, v in model.state_dict().items()}
    atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata=metadata))
    return path


def read_metadata(path: str | os.PathLike) -> dict[str, str]:
    """The safetensors header metadata of `path` (empty dict if none)."""
    try:
        with safe_open(str(path), framework="pt") as f:
            return dict(f.metadata() or {})
    except (SafetensorError, OSError, ValueError) as exc:
        raise WeightsError(f"{path}: not a readable safetensors file ({exc})") from exc


def canonicalize_state_dict(state: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    """Unwrap common checkpoint containers and strip DDP/compile prefixes.

    Accepts our own layout, BasicSR's {"params"/"params_ema": ...}, torchvision-style
    {"model"/"state_dict"/"generator": ...}, and keys prefixed with "module." or "_orig_mod.".
    Pure: returns a new dict of tensors only.
    """
    for key in ("params_ema", "params-ema", "params", "generator", "state_dict", "model_state_dict", "model", "net"):
        inner = state.get(key) if isinstance(state, Mapping) else None
        if isinstance(inner, Mapping):
            return canonicalize_state_dict(inner)
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        if not isinstance(value, torch.Tensor):
            continue
        out[re.sub(r"^(module\.|_orig_mod\.)+", "", key)] = value
    return out


def infer_config(state: Mapping[str, torch.Tensor]) -> GeneratorConfig:
    """Recover a GeneratorConfig from tensor shapes (for files without our metadata)."""
    try:
        head = state["head.0.weight"]
        tail = state["tail.weight"]
    except KeyError as exc:
        raise WeightsError(f"not an SRResNet state dict: missing {exc.args[0]!r}") from None
    blocks = {int(m.group(1)) for k in state if (m := re.match(r"body\.(\d+)\.", k))}
    ups = {int(m.group(1)) for k in state if (m := re.match(r"upsample\.(\d+)\.", k))}
    return GeneratorConfig(
        scale=2 ** len(ups), num_blocks=len(blocks), channels=int(head.shape[0]),
        in_channels=int(head.shape[1]), out_channels=int(tail.shape[0]),
    )


def read_weights(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """(tensors, safetensors metadata) of a weights file, container keys unwrapped.

    Pickles (.pth/.pt/.ckpt/.bin) go through torch.load(weights_only=True), PyTorch's restricted
    unpickler: only tensors and plain containers load, a pickle that would run code is refused
    before anything runs (it accepts everything spandrel's RestrictedUnpickler does).
    """
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"{path}: no such weights file")
    if path.suffix == ".safetensors":
        metadata = read_metadata(path)
        try:
            return load_file(str(path)), metadata
        except (SafetensorError, OSError, ValueError) as exc:
            raise WeightsError(f"{path}: not a readable safetensors file ({exc})") from exc
    if path.suffix in (".pth", ".pt", ".ckpt", ".bin"):
        try:
            obj = torch.load(str(path), map_location="cpu", weights_only=True)
        except Exception as exc:  # UnpicklingError for payloads, RuntimeError for corrupt zips
            raise WeightsError(f"{path}: refused to load (only plain tensors are allowed): {first_line(exc)}") from exc
        if not isinstance(obj, Mapping):
            raise WeightsError(f"{path}: expected a state dict, found {type(obj).__name__}")
        return canonicalize_state_dict(obj), {}
    raise WeightsError(f"{path}: unknown weights format {path.suffix!r} (use .safetensors, .pth or .onnx)")


def is_srresnet(state: Mapping[str, torch.Tensor], metadata: Mapping[str, str]) -> bool:
    """True for our own files (srgan metadata) and SRResNet-shaped state dicts."""
    return "srgan.config" in metadata or ("head.0.weight" in state and "tail.weight" in state)


def load_generator(path: str | os.PathLike, device: torch.device | str | None = None) -> Generator:
    """Rebuild a Generator from a weights file, validating metadata and tensor shapes."""
    path = Path(path)
    state, metadata = read_weights(path)
    return generator_from_state(state, metadata, path, device)


def generator_from_state(state: Mapping[str, torch.Tensor], metadata: Mapping[str, str], path: Path,
                         device: torch.device | str | None = None) -> Generator:
    """A Generator from tensors read by `read_weights` (`path` names the file in errors)."""
    state = canonicalize_state_dict(state)
    if "srgan.config" in metadata:
        if metadata.get("srgan.arch", ARCH) != ARCH:
            raise WeightsError(f"{path}: unsupported architecture {metadata['srgan.arch']!r}")
        try:
            config = GeneratorConfig.from_json(metadata["srgan.config"])
        except (ValueError, TypeError) as exc:
            raise WeightsError(f"{path}: invalid srgan.config metadata ({exc})") from exc
    else:
        try:
            config = infer_config(state)
        except (WeightsError, ValueError) as exc:
            raise WeightsError(f"{path}: {exc}") from exc
    model = Generator(config)
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    bad_shape = [k for k in expected if k in state and state[k].shape != expected[k].shape]
    if missing or unexpected or bad_shape:
        detail = "; ".join(
            f"{label}: {', '.join(keys[:3])}{' ...' if len(keys) > 3 else ''}"
            for label, keys in (("missing", missing), ("unexpected", unexpected), ("wrong shape", bad_shape))
            if keys
        )
        raise WeightsError(f"{path}: tensors do not match the declared architecture {config} ({detail})")
    model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()})
    model.recipe = json.loads(metadata.get("srgan.recipe", "{}") or "{}")
    model.source = str(path)
    return model.eval().to(device or "cpu")
