"""`srgan plot RUN_DIR -o FILE.png`: losses, validation PSNR and (when logged) LPIPS of a training run."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..files import atomic_write
from .options import error

HELP = "plot generator/discriminator losses, validation PSNR and LPIPS of a training run"


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("plot", help=HELP, description=HELP + " (reads RUN_DIR/metrics.jsonl; needs matplotlib).")
    p.add_argument("run_dirs", nargs="+", type=Path, metavar="RUN_DIR", help="training run folder(s); several are drawn in sequence")
    p.add_argument("-o", "--output", type=Path, required=True, metavar="FILE.png", help="image to write")
    p.add_argument("--x", choices=("iteration", "epoch"), default="iteration", help="x axis (default iteration)")
    p.set_defaults(func=run)


def read_metrics(run_dir: Path) -> list[dict]:
    path = run_dir / "metrics.jsonl"
    if not path.is_file():
        raise ValueError(f"{run_dir}: no metrics.jsonl (is this a training run folder?)")
    rows = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                raise ValueError(f"{path}:{n}: not JSON") from None
    return rows


def in_sequence(runs: list[tuple[str, list[dict]]]) -> list[tuple[str, list[dict]]]:
    """Shift each run's iterations to start where the previous run ended (stages of one model)."""
    placed, offset = [], 0
    for name, rows in runs:
        placed.append((name, [r | {"iteration": r["iteration"] + offset} if "iteration" in r else r for r in rows]))
        offset += max((r.get("iteration", 0) for r in rows), default=0)
    return placed


def run(args: argparse.Namespace) -> int:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        error("plot", "needs matplotlib (pip install 'srgan[plot]')")
        return 2
    try:
        runs = in_sequence([(d.name, read_metrics(d)) for d in args.run_dirs])
    except ValueError as exc:
        error("plot", exc)
        return 2
    has_lpips = any("val_lpips" in r for _, rows in runs for r in rows)
    fig, axes = plt.subplots(1, 3 if has_lpips else 2, figsize=(19 if has_lpips else 13, 4.5))
    ax_loss, ax_val = axes[0], axes[1]
    for name, rows in runs:
        def series(key):
            pts = [(r[args.x], r[key]) for r in rows if key in r]
            return zip(*pts) if pts else ((), ())

        # In phase 1 the content loss is the whole generator loss: draw it once.
        keys = [("g_loss", "generator (total)"), ("d_loss", "discriminator"), ("adv_loss", "adversarial (unweighted)")]
        if any("d_loss" in r for r in rows):
            keys.insert(1, ("content_loss", "content"))
        for key, label in keys:
            xs, ys = series(key)
            if xs:
                ax_loss.plot(xs, ys, label=f"{name}: {label}", linewidth=1)
        xs, ys = series("val_psnr_y")
        if xs:
            ax_val.plot(xs, ys, marker="o", markersize=3, label=name)
        xs, ys = series("val_lpips")
        if xs:
            axes[2].plot(xs, ys, marker="o", markersize=3, label=name)
    ax_loss.set(title="Discriminator vs generator loss", xlabel=args.x, ylabel="loss", yscale="log")
    ax_val.set(title="Validation Y-PSNR", xlabel=args.x, ylabel="dB")
    if has_lpips:
        axes[2].set(title="Validation LPIPS (lower is closer)", xlabel=args.x, ylabel="LPIPS")
    for ax in axes:
        ax.grid(alpha=0.3)
        if ax.has_data():
            ax.legend(fontsize=8)
    fig.tight_layout()
    atomic_write(args.output, lambda tmp: fig.savefig(tmp, format="png", dpi=110))
    print(f"wrote {args.output}")
    return 0
