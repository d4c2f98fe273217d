"""`srgan models [list] | download NAME`: the bundled models and the downloadable catalogue."""

from __future__ import annotations

import argparse

from .options import error

HELP = "list bundled and downloadable models, or download one into the cache"


def add_parser(sub: argparse._SubParsersAction) -> None:
    from ..registry import downloadable

    p = sub.add_parser(
        "models", help=HELP,
        description=HELP + ". Downloads go to $SRGAN_CACHE (default ~/.cache/srgan/models), resume after an "
                           "interruption, are checked against their SHA-256 and renamed only once verified; "
                           "then '-m NAME' works in upscale, eval, serve and export. Third-party models need "
                           "pip install 'srgan[interop]'.",
    )
    p.set_defaults(func=run_list)
    actions = p.add_subparsers(dest="action", metavar="ACTION")
    ls = actions.add_parser("list", help="the table of models (the default action)")
    ls.add_argument("-v", "--verbose", action="store_true", help="also print URL, SHA-256 and hash source")
    ls.set_defaults(func=run_list)
    dl = actions.add_parser("download", help="fetch catalogue models into the cache (resumable, hash-checked)")
    dl.add_argument("names", nargs="+", choices=downloadable(), metavar="NAME", help=", ".join(downloadable()))
    dl.set_defaults(func=run_download)


def run_list(args: argparse.Namespace) -> int:
    from ..registry import MODELS, cache_dir

    def status(e) -> str:
        if e.bundled:
            return "bundled"
        return "cached" if e.path.is_file() else f"{e.size / 2**20:.0f} MB"

    rows = [(e.name, str(e.scale), e.arch, e.licence, status(e), e.description) for e in MODELS.values()]
    header = ("name", "x", "architecture", "licence", "status", "description")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(5)]
    for row in [header, *rows]:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths)) + "  " + row[5])
    if getattr(args, "verbose", False):
        for e in MODELS.values():
            if not e.bundled:
                print(f"\n{e.name}\n  url     {e.url}\n  sha256  {e.sha256}\n  hash    {e.hash_source}")
    print(f"\ncache: {cache_dir()}  (srgan models download NAME; -v for URLs and hashes)")
    return 0


def run_download(args: argparse.Namespace) -> int:
    from ..files import DownloadError
    from ..registry import fetch

    failed = 0
    for name in args.names:
        try:
            print(f"{name}: {fetch(name)}")
        except DownloadError as exc:
            error("models", exc)
            failed += 1
    return 1 if failed else 0
