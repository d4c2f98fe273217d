"""`srgan data prepare | download`: training data helpers."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HELP = "prepare an on-disk training cache, or download standard data sets"


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("data", help=HELP, description=HELP + ".")
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    prep = actions.add_parser(
        "prepare", help="decode HR folders once into memory-mappable sub-images (for sets larger than RAM)",
        description="Decode every image once, make its LR with the training degradation, cut both into "
                    "overlapping sub-images and store them as .npy; train with --train-dir CACHE.",
    )
    prep.add_argument("folders", nargs="+", type=Path, metavar="DIR", help="HR image folders (recursive)")
    prep.add_argument("-o", "--output", type=Path, required=True, metavar="CACHE", help="cache folder to write")
    prep.add_argument("--scale", type=int, default=4, choices=(2, 4, 8), help="upscaling factor (default 4)")
    prep.add_argument("--crop", type=int, default=480, help="sub-image size in HR pixels (default 480)")
    prep.add_argument("--step", type=int, default=240, help="stride between sub-images (default 240)")
    prep.set_defaults(func=run_prepare)
    _add_download(actions)


def _add_download(actions) -> None:
    from ..data.download import DATASETS

    dl = actions.add_parser(
        "download", help=f"fetch {', '.join(DATASETS)} with checksum verification (resumable)",
        description="Download official archives or files, resuming partial downloads, verifying SHA-256 "
                    "checksums, and unpacking them under --root.",
    )
    dl.add_argument("names", nargs="+", choices=sorted(DATASETS), metavar="NAME", help=", ".join(sorted(DATASETS)))
    dl.add_argument("--root", type=Path, default=Path("datasets"), help="where to put them (default ./datasets)")
    dl.set_defaults(func=run_download)


def run_prepare(args: argparse.Namespace) -> int:
    from ..data.prepare import prepare

    try:
        count = prepare(args.folders, args.output, args.scale, args.crop, args.step)
    except (OSError, ValueError) as exc:
        print(f"srgan data prepare: error: {exc}", file=sys.stderr)
        return 2 if isinstance(exc, FileNotFoundError) else 1
    print(f"wrote {count} sub-images to {args.output}")
    return 0


def run_download(args: argparse.Namespace) -> int:
    from ..data.download import DownloadError, fetch_dataset

    for name in args.names:
        try:
            folder = fetch_dataset(name, args.root)
        except DownloadError as exc:
            print(f"srgan data download: error: {exc}", file=sys.stderr)
            return 1
        print(f"{name}: {folder}")
    return 0
