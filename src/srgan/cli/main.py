"""`srgan` entry point: one argparse parser, one module per subcommand.

Exit codes: 0 success, 1 some inputs failed, 2 usage error, 130 interrupted.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from .. import __version__
from . import (
    data_cmd,
    demo_cmd,
    eval_cmd,
    export_cmd,
    models_cmd,
    plot_cmd,
    serve_cmd,
    train_cmd,
    upscale_cmd,
)

SUBCOMMANDS = {"upscale": upscale_cmd, "eval": eval_cmd, "train": train_cmd, "plot": plot_cmd, "data": data_cmd,
               "demo": demo_cmd, "serve": serve_cmd, "models": models_cmd, "export": export_cmd}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser with every subcommand's options, or, given `command`, with that one's options and
    the others' names and help only: some commands' options (defaults, choices) come from modules
    that import torch, which `srgan --help` and `srgan upscale --help` need not load."""
    parser = argparse.ArgumentParser(
        prog="srgan",
        description="Photo-realistic single-image super-resolution (SRGAN, Ledig et al. 2017).",
        epilog="Run 'srgan COMMAND --help' for the options of each command.",
    )
    parser.add_argument("--version", action="version", version=f"srgan {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, module in SUBCOMMANDS.items():
        if command is None or name == command:
            module.add_parser(sub)
        else:
            sub.add_parser(name, help=module.HELP)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    command = next((a for a in argv if not a.startswith("-")), "")
    parser = build_parser(command if command in SUBCOMMANDS else "")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING if getattr(args, "quiet", False) else logging.INFO,
        format="%(message)s" if args.command == "upscale" else "%(asctime)s %(levelname)s %(message)s",
        stream=sys.stderr,
    )
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


# Commands whose work is finished, written and closed when main() returns (no server, no workers).
_FAST_EXIT = {"upscale", "eval", "export", "models", "data", "plot", "demo"}


def console_main() -> None:
    """The `srgan` command: main(), then, for the commands above, exit without Python's teardown.

    With torch loaded, the interpreter's shutdown (module teardown, oneDNN and OpenMP static
    destructors) takes ~0.45 s, a fifth of a one-image `srgan upscale` (docs/performance.md).
    Every output has been renamed into place by then, so only the streams need flushing.
    """
    argv = sys.argv[1:]
    code = main(argv)
    if next((a for a in argv if not a.startswith("-")), None) in _FAST_EXIT and "--ray" not in argv:
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


if __name__ == "__main__":
    console_main()
