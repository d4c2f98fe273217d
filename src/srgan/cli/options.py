"""What several subcommands share, defined once: the device and precision options, the one-line
error, and the message for a missing optional extra."""

from __future__ import annotations

import argparse
import sys

from tqdm import tqdm

PRECISIONS = ("auto", "fp32", "bf16", "fp16")


def add_device_and_precision(p: argparse.ArgumentParser, precision: str | None = "auto", why: str = "") -> None:
    """--device, --precision and --fp32 (the same as --precision fp32). `precision` None: both
    default to None, for a command whose config file supplies them (else auto)."""
    from_file = "the config file's, else auto"
    p.add_argument("--device", default=None if precision is None else "auto",
                   help="auto (CUDA > MPS > CPU), cpu, cuda, cuda:N, mps (default "
                        f"{from_file if precision is None else 'auto'})")
    p.add_argument("--precision", choices=PRECISIONS, default=precision,
                   help=f"model arithmetic (default {from_file if precision is None else precision}{why}); auto: "
                        "bf16 on CPUs that multiply in bf16 (avx512_bf16 or AMX on x86), fp16 on CUDA/MPS, else "
                        "fp32; a bf16 or fp16 the device cannot run natively is refused")
    p.add_argument("--fp32", dest="precision", action="store_const", const="fp32",
                   help="full precision: the same as --precision fp32")


def error(command: str, message: object) -> None:
    """`srgan COMMAND: error: MESSAGE` on stderr, one line, clear of any progress bar."""
    tqdm.write(f"srgan {command}: error: {message}", file=sys.stderr)
