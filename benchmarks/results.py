"""Regenerate docs/results.md: the SRGAN paper's Table 2 layout, our numbers beside the paper's.

    python benchmarks/results.py --data ../shared/data/benchmark/Set5 \
        ../shared/data/benchmark/Set14 ../shared/data/benchmark/BSD100

Each --data folder is one dataset, named by the folder. Models whose weights are not installed
yet are skipped with a note in the report. With --degraded (HR and LR folders of a synthetic
real-world set, data/realval) and --real (real low-resolution photos without ground truth,
e.g. RealSRSet) a "Real-world photos" section scores --real-models on them (PSNR / SSIM /
LPIPS on the degraded sets, NIQE on the photos) and draws crops of the photos. Figures (HR | bicubic | models, zoomed, Y-PSNR
under each) go to docs/figures/<dataset>_x<scale>.png. If README.md holds the markers
<!-- results:begin --> and <!-- results:end -->, the table and the first figure are put
between them.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from srgan.device import select_device
from srgan.evaluation.benchmark import (
    BICUBIC, DatasetResult, EvalInputError, Report, WeightsNotFoundError, dataset_name, image_selector, load_perceptual,
    load_upscaler, model_label, run_benchmark,
)
from srgan.evaluation.figure import comparison_figure
from srgan.models import WeightsError

log = logging.getLogger("benchmarks.results")

ROOT = Path(__file__).resolve().parent.parent
MODELS = (BICUBIC, "srresnet_x4", "srgan_x4")
REAL_MODELS = (BICUBIC, "srgan_x4", "srresnet_x4_real", "srgan_x4_real")
LABELS = {BICUBIC: "Bicubic", "srresnet_x4": "SRResNet", "srgan_x4": "SRGAN"}

# Ledig et al. 2017, Table 2 (x4, PSNR dB / SSIM): bicubic, SRResNet (MSE), SRGAN (VGG54).
PAPER: dict[str, dict[str, tuple[float, float]]] = {
    BICUBIC: {"Set5": (28.43, 0.8104), "Set14": (25.99, 0.7027), "BSD100": (25.94, 0.6675)},
    "srresnet_x4": {"Set5": (32.05, 0.9019), "Set14": (28.49, 0.8184), "BSD100": (27.58, 0.7620)},
    "srgan_x4": {"Set5": (29.40, 0.8472), "Set14": (26.02, 0.7397), "BSD100": (25.16, 0.6688)},
}
# Published LPIPS (AlexNet v0.1, x4; lower is better): Ma et al., "Structure-Preserving Super
# Resolution with Gradient Guidance" (SPSR), CVPR 2020, Table 1, as the authors' repository
# Maclory/SPSR lists it (README, "Quantitative Results"). Their toolbox scores LPIPS on the whole
# RGB image without a border shave (metrics/evaluate_sr_results.py); ours shaves `scale` px, which
# moves the figures by well under 0.01 (bicubic: 0.3407 / 0.4393 / 0.5249 there, ours below).
# Their SRGAN and ESRGAN were trained on DIV2K (ESRGAN with a 16.7M-parameter RRDB generator).
PUBLISHED_LPIPS: dict[str, dict[str, float]] = {
    "Bicubic (SPSR Table 1)": {"Set5": 0.3407, "Set14": 0.4393, "BSD100": 0.5249},
    "SRGAN (SPSR Table 1)": {"Set5": 0.0882, "Set14": 0.1663, "BSD100": 0.1980},
    "ESRGAN (SPSR Table 1)": {"Set5": 0.0748, "Set14": 0.1329, "BSD100": 0.1614},
    "SPSR (SPSR Table 1)": {"Set5": 0.0644, "Set14": 0.1318, "BSD100": 0.1611},
}
PUBLISHED_SOURCE = "https://github.com/Maclory/SPSR (README, Quantitative Results; the paper's Table 1)"

# What this protocol must give for bicubic x4 (the values BasicSR-style Y-channel evaluation reports).
BICUBIC_CHECK: dict[str, tuple[float, float]] = {
    "Set5": (28.43, 0.8111), "Set14": (26.09, 0.7048), "BSD100": (25.96, 0.6681),
}

README_BEGIN, README_END = "<!-- results:begin -->", "<!-- results:end -->"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", nargs="+", required=True, metavar="DIR", help="benchmark folders (Set5, Set14, BSD100)")
    p.add_argument("--models", nargs="+", default=list(MODELS), metavar="NAME|PATH",
                   help=f"models to score (default: {' '.join(MODELS)})")
    p.add_argument("--scale", type=int, default=4)
    p.add_argument("--out", type=Path, default=ROOT / "docs" / "results.md")
    p.add_argument("--figures", type=Path, default=ROOT / "docs" / "figures", metavar="DIR")
    p.add_argument("--figure-images", nargs="+", metavar="NAME",
                   help="images to draw, NAME or DATASET/NAME (default: the first image of each dataset)")
    p.add_argument("--readme", type=Path, default=ROOT / "README.md")
    p.add_argument("--detail-curve", nargs="*", type=float, default=[0.25, 0.5, 0.75], metavar="A",
                   help="srgan_x4 detail settings between 0 (srresnet_x4) and 1 (srgan_x4) for the "
                        "perception-distortion curve (default 0.25 0.5 0.75; none to skip)")
    p.add_argument("--degraded", nargs="+", default=[], metavar="HR_DIR:LR_DIR",
                   help="synthetic real-world sets: an HR folder and its degraded LR folder, matched by stem "
                        "(e.g. Set14:data/realval/Set14_x4_realesrgan)")
    p.add_argument("--real", nargs="+", default=[], metavar="DIR",
                   help="folders of real low-resolution photos without ground truth (e.g. RealSRSet)")
    p.add_argument("--real-models", nargs="+", default=list(REAL_MODELS), metavar="NAME|PATH",
                   help=f"models of the real-world section (default: {' '.join(REAL_MODELS)})")
    p.add_argument("--real-figure-images", nargs="+", metavar="NAME",
                   help="photos of --real to draw (default: the first of each folder)")
    p.add_argument("--metric-weights", type=Path, metavar="DIR",
                   help="folder with the LPIPS/NIQE weights (default: $SRGAN_METRIC_WEIGHTS, torch hub cache, download)")
    p.add_argument("--device", default="auto")
    p.add_argument("--precision", default="fp32", choices=("auto", "bf16", "fp16", "fp32"))
    return p.parse_args(argv)


def label(model: str) -> str:
    return LABELS.get(model, model)


def results_table(results: list[DatasetResult], models: list[str], datasets: list[str]) -> str:
    """Markdown in the layout of the paper's Table 2: rows dataset x metric, columns methods."""
    by_key = {(r.dataset, r.model): r for r in results}
    header = ["Dataset", "Metric"]
    for m in models:
        header.append(f"{label(m)} (ours)")
        if m in PAPER:
            header.append(f"{label(m)} (paper)")
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * 2 + "---:|" * (len(header) - 2)]
    metrics = [("PSNR", "psnr_y", 0, ".2f"), ("SSIM", "ssim_y", 1, ".4f")]
    metrics += [(name, key, None, fmt) for name, key, fmt in (("LPIPS", "lpips", ".4f"), ("NIQE", "niqe", ".2f"))
                if any(getattr(r, key) is not None for r in results)]
    metrics += [("texture", "texture", None, ".2f"), ("grid", "grid", None, ".2f")]
    for ds in datasets:
        for metric, key, index, fmt in metrics:
            cells = [ds, metric]
            for m in models:
                value = getattr(by_key[(ds, m)], key) if (ds, m) in by_key else None
                cells.append(format(value, fmt) if value is not None else "–")
                if m in PAPER:
                    paper = PAPER[m].get(ds)
                    cells.append(format(paper[index], fmt) if paper and index is not None else "–")
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def published_table(results: list[DatasetResult], models: list[str], datasets: list[str]) -> str:
    """LPIPS of our models beside the published ("reported") rows, datasets as columns."""
    by_key = {(r.dataset, r.model): r for r in results}
    lines = ["| model | " + " | ".join(datasets) + " |", "|---|" + "---:|" * len(datasets)]
    for m in models:
        cells = [by_key[(ds, m)].lpips if (ds, m) in by_key else None for ds in datasets]
        if any(c is not None for c in cells):
            lines.append(f"| {label(m)} (ours) | " + " | ".join("–" if c is None else f"{c:.4f}" for c in cells) + " |")
    for name, row in PUBLISHED_LPIPS.items():
        lines.append(f"| {name}, reported | " + " | ".join(f"{row[ds]:.4f}" if ds in row else "–" for ds in datasets) + " |")
    return "\n".join(lines)


def detail_points(results: list[DatasetResult], curve: list[DatasetResult], dataset: str) -> list[tuple[float, DatasetResult]]:
    """(detail, result) along the dial for one dataset: srresnet_x4 at 0, the blends, srgan_x4 at 1."""
    points = [(0.0, r) for r in results if r.dataset == dataset and r.model == "srresnet_x4"]
    points += [(float(r.model.split("@")[1]), r) for r in curve if r.dataset == dataset]
    points += [(1.0, r) for r in results if r.dataset == dataset and r.model == "srgan_x4"]
    return sorted(points, key=lambda p: p[0])


def detail_table(results: list[DatasetResult], curve: list[DatasetResult], datasets: list[str]) -> str:
    lines = ["| detail | " + " | ".join(f"{ds} PSNR / LPIPS" for ds in datasets) + " |", "|---|" + "---:|" * len(datasets)]
    per = {ds: dict(detail_points(results, curve, ds)) for ds in datasets}
    for a in sorted({a for ds in datasets for a in per[ds]}):
        cells = [f"{per[ds][a].psnr_y:.2f} / {per[ds][a].lpips:.4f}" if a in per[ds] and per[ds][a].lpips is not None
                 else "–" for ds in datasets]
        lines.append(f"| {a:g} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def detail_figure(results: list[DatasetResult], curve: list[DatasetResult], datasets: list[str], path: Path) -> Path:
    """PSNR (x) against LPIPS (y) along the detail dial, one line per dataset, bicubic marked."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from srgan.files import atomic_write

    fig = Figure(figsize=(4.2 * len(datasets), 3.6), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, len(datasets), squeeze=False)[0]
    for ax, ds in zip(axes, datasets):
        points = [(a, r) for a, r in detail_points(results, curve, ds) if r.lpips is not None]
        ax.plot([r.psnr_y for _, r in points], [r.lpips for _, r in points], "o-", color="tab:blue")
        for a, r in points:
            ax.annotate(f"{a:g}", (r.psnr_y, r.lpips), textcoords="offset points", xytext=(4, 4), fontsize=8)
        for r in results:
            if r.dataset == ds and r.model == BICUBIC and r.lpips is not None:
                ax.plot([r.psnr_y], [r.lpips], "s", color="gray")
                ax.annotate("bicubic", (r.psnr_y, r.lpips), textcoords="offset points", xytext=(4, -10), fontsize=8)
        ax.set_title(ds, fontsize=10)
        ax.set_xlabel("Y-PSNR (dB), higher = more faithful")
        ax.set_ylabel("LPIPS, lower = closer to HR")
        ax.grid(alpha=0.3)
    fig.suptitle("srgan_x4 detail dial: 0 = srresnet_x4 ... 1 = srgan_x4 (output images blended)", fontsize=10)
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=110))
    return path


def real_world_tables(results: list[DatasetResult], models: list[str]) -> list[str]:
    """Markdown: the degraded sets (PSNR / SSIM / LPIPS, datasets as columns), then the real photos
    (NIQE / grid, no ground truth), one row per model."""
    by_key = {(r.dataset, r.model): r for r in results}
    degraded = list(dict.fromkeys(r.dataset for r in results if r.psnr_y is not None))
    real = list(dict.fromkeys(r.dataset for r in results if r.psnr_y is None))
    parts = []
    for datasets, cell, head in (
        (degraded, lambda r: f"{r.psnr_y:.2f} / {r.ssim_y:.4f} / " + ("–" if r.lpips is None else f"{r.lpips:.4f}"),
         "PSNR / SSIM / LPIPS"),
        (real, lambda r: ("–" if r.niqe is None else f"{r.niqe:.2f}") + f" / {r.grid:.2f}", "NIQE / grid"),
    ):
        if not datasets:
            continue
        lines = ["| model | " + " | ".join(f"{ds} {head}" for ds in datasets) + " |", "|---|" + "---:|" * len(datasets)]
        for m in models:
            cells = [cell(by_key[(ds, m)]) if (ds, m) in by_key else "–" for ds in datasets]
            lines.append(f"| {label(m)} | " + " | ".join(cells) + " |")
        parts += ["\n".join(lines), ""]
    return parts


def protocol_check(results: list[DatasetResult], scale: int) -> list[str]:
    """One line per reference dataset: our bicubic numbers against the values the protocol must give."""
    if scale != 4:
        return []
    lines = []
    for r in results:
        if r.model == BICUBIC and r.dataset in BICUBIC_CHECK:
            want = BICUBIC_CHECK[r.dataset]
            ok = round(r.psnr_y, 2) == want[0] and round(r.ssim_y, 4) == want[1]
            lines.append(f"- {r.dataset}: bicubic {r.psnr_y:.2f} dB / {r.ssim_y:.4f}, expected "
                         f"{want[0]:.2f} / {want[1]:.4f} {'(match)' if ok else '(MISMATCH)'}")
    return lines


def write_figures(report: Report, folder: Path, scale: int) -> list[Path]:
    """One figure per dataset from the kept outputs; returns the files written."""
    paths = []
    for ds in dict.fromkeys(r.dataset for r in report.figure_rows):
        rows = [r for r in report.figure_rows if r.dataset == ds]
        paths.append(comparison_figure(rows, folder / f"{ds}_x{scale}.png", border=scale))
    return paths


def render(report: Report, models: list[str], datasets: list[str], figures: list[Path], notes: list[str],
           args: argparse.Namespace, out_dir: Path, curve: list[DatasetResult] = (), curve_figure: Path | None = None,
           real: Report | None = None, real_models: list[str] = (), real_figures: list[Path] = ()) -> str:
    results = report.results
    table = results_table(results, models, datasets)
    counts = {r.dataset: r.images for r in results}
    seconds = {m: sum(r.seconds for r in results if r.model == m) for m in models}
    check = protocol_check(results, args.scale)
    parts = [
        "# Results",
        "",
        f"x{args.scale} super-resolution, scored as the SRGAN paper and the SR literature score it: the HR "
        f"image cropped to a multiple of {args.scale}, the LR image made from it with the antialiased bicubic "
        "downscale used in training, PSNR and SSIM (Wang et al. 2004, 11x11 Gaussian window, sigma 1.5) "
        f"on the BT.601 Y channel with {args.scale} pixels shaved from every border. "
        "Columns marked *paper* are Ledig et al. 2017, Table 2.",
        "",
        table,
        "",
        "*texture*: mean Y gradient magnitude of the output over the HR image's (1.0 = as detailed as HR). "
        f"*grid*: RMS in grey levels of the output's mean {args.scale}x{args.scale} sub-pixel pattern, the "
        "fixed grid a GAN can print (HR photos and PSNR-trained networks ~0.1-0.3; a visible grid ~1).",
        "",
        "*LPIPS*: LPIPS-alex v0.1 (Zhang et al. 2018; `srgan.metrics.lpips_model`, exact to the reference package), RGB, "
        f"{args.scale} px shaved; lower is closer to HR. *NIQE*: no-reference naturalness (Mittal et al. 2013; "
        "`srgan.metrics.niqe_model`, a port of the MATLAB release), on the output alone, lower is more natural. "
        "Neither is a training loss of the bundled models.",
        "",
        "Images: " + ", ".join(f"{ds} {counts.get(ds, 0)}" for ds in datasets) + ". "
        "SR time over all images: "
        + ", ".join(f"{label(m)} {seconds[m]:.1f} s" for m in models if any(r.model == m for r in results))
        + f" ({select_device(args.device)}, {args.precision}).",
    ]
    if any(r.lpips is not None for r in results):
        parts += ["", "## LPIPS against published GAN results", "",
                  "Rows marked *reported* are published figures, not our runs: " + PUBLISHED_SOURCE + ". Their "
                  "toolbox scores the whole image (no shave) and makes LR with MATLAB's bicubic; the bicubic rows "
                  "show how close the two protocols are.",
                  "", published_table(results, models, datasets)]
    if curve:
        parts += ["", "## The detail dial: perception against distortion", "",
                  "`srgan upscale --detail A` blends the output images of srresnet_x4 (A = 0) and srgan_x4 (A = 1), "
                  "(1 - A) x one + A x the other (why not their weights, as ESRGAN does: docs/models.md). "
                  "PSNR and LPIPS along the dial:", "",
                  detail_table(results, curve, datasets)]
        if curve_figure is not None:
            parts += ["", f"![detail curve]({Path(_relative(curve_figure, out_dir)).as_posix()})"]
    if real is not None and real.rows:
        parts += ["", "## Real-world photos", "",
                  "Models for real photos against the bicubic-trained ones. With ground truth: HR images "
                  "degraded once by the training's Real-ESRGAN pipeline with a fixed seed (`data/realval`, "
                  f"{args.scale} px shaved). Without: real low-resolution photos, each upscaled as it is and "
                  "scored by NIQE (no reference, lower is more natural) and grid.", "",
                  *real_world_tables(real.results, real_models)]
        parts += [f"![{p.stem}]({Path(_relative(p, out_dir)).as_posix()})" for p in real_figures]
        card = Path(_relative(ROOT / "docs" / "models.md", out_dir)).as_posix()
        parts += ["", "What the real-photo models remove in these crops and what they do not fix, judged at 100%: "
                      f"[their model card]({card}#srresnet_x4_real-and-srgan_x4_real-for-real-photos)."]
    if check:
        parts += ["", "Protocol check (bicubic must reproduce the reference figures of this protocol):", "", *check]
    if notes:
        parts += ["", "Notes:", "", *[f"- {n}" for n in notes]]
    if figures:
        parts += ["", "## Comparisons", "",
                  "Zoomed crops where bicubic errs most: HR | bicubic | each model, Y-PSNR of the whole image "
                  "under each crop (as the paper's Figure 2).", ""]
        parts += [f"![{p.stem}]({Path(_relative(p, out_dir)).as_posix()})" for p in figures]
    parts += ["", "Regenerate with `python benchmarks/results.py --data <folders>` "
                  f"(this run: {' '.join(Path(d).name for d in args.data)}).", ""]
    return "\n".join(parts)


def _relative(path: Path, start: Path) -> str:
    import os

    return os.path.relpath(path.resolve(), start.resolve())


def update_readme(readme: Path, table: str, figure: Path | None) -> bool:
    """Put the table (and one figure) between the README's result markers; False if there are none."""
    if not readme.is_file():
        return False
    text = readme.read_text()
    if README_BEGIN not in text or README_END not in text:
        return False
    head, rest = text.split(README_BEGIN, 1)
    _, tail = rest.split(README_END, 1)
    body = [table]
    if figure is not None:
        body += ["", f"![{figure.stem}]({Path(_relative(figure, readme.parent)).as_posix()})"]
    readme.write_text(head + README_BEGIN + "\n" + "\n".join(body) + "\n" + README_END + tail)
    return True


def load_models(specs: list[str], args: argparse.Namespace, notes: list[str]) -> list:
    """Upscalers for `specs`; a model whose weights are missing is skipped with a note.
    EvalInputError (an unknown name) propagates: a usage error."""
    upscalers = []
    for spec in specs:
        try:
            upscalers.append(load_upscaler(spec, args.scale, args.device, args.precision))
        except (WeightsNotFoundError, WeightsError) as exc:
            log.warning("skipping %s", exc)
            notes.append(f"{label(spec)} not evaluated: {exc}".replace(str(ROOT) + "/", ""))
    return upscalers


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    args = parse_args(argv)
    notes: list[str] = []
    models = [model_label(spec) for spec in args.models]  # skipped models keep their (empty) columns
    real_models = [model_label(spec) for spec in args.real_models]
    try:
        degraded = [tuple(pair.split(":", 1)) for pair in args.degraded]
        if any(len(pair) != 2 for pair in degraded):
            raise EvalInputError(f"--degraded {' '.join(args.degraded)}: expected HR_DIR:LR_DIR")
        upscalers = load_models(args.models, args, notes)
        real_upscalers = load_models(args.real_models, args, notes) if degraded or args.real else []
    except EvalInputError as exc:
        log.error("error: %s", exc)
        return 2
    perceptual, perceptual_notes = load_perceptual(args.metric_weights, args.device)
    notes += perceptual_notes
    select = image_selector(args.figure_images)
    try:
        report = run_benchmark(args.data, upscalers, args.scale, perceptual=perceptual, figure_images=select)
    except EvalInputError as exc:
        log.error("error: %s", exc)
        return 2
    for failure in report.failures:
        log.warning("failed: %s", failure)
        notes.append(f"failed input: {failure}")
    datasets = list(dict.fromkeys(r.dataset for r in report.results))
    figures = write_figures(report, args.figures, args.scale)
    curve: list[DatasetResult] = []
    curve_figure = None
    if args.detail_curve and any(u.name == "srgan_x4" for u in upscalers):
        blends = [load_upscaler("srgan_x4", args.scale, args.device, args.precision, a) for a in args.detail_curve]
        curve = run_benchmark(args.data, blends, args.scale, perceptual=perceptual).results
        if perceptual.lpips is not None:
            curve_figure = detail_figure(report.results, curve, datasets, args.figures / f"detail_curve_x{args.scale}.png")
    real, real_figures = None, []
    if real_upscalers:
        # Figures of the photos only: the degraded sets have their tables.
        select_real = image_selector(args.real_figure_images, {dataset_name(f) for f in args.real})
        try:
            real = run_benchmark([hr for hr, _ in degraded], real_upscalers, args.scale, perceptual=perceptual,
                                 lr_folders=[lr for _, lr in degraded] or None, real_folders=args.real,
                                 figure_images=select_real)
        except EvalInputError as exc:
            log.error("error: %s", exc)
            return 2
        notes += [f"failed input: {f}" for f in real.failures]
        if real.figure_rows:
            real_figures = [comparison_figure(real.figure_rows, args.figures / f"realworld_x{args.scale}.png",
                                              border=args.scale)]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(render(report, models, datasets, figures, notes, args, args.out.parent, curve, curve_figure,
                               real, real_models, real_figures))
    log.info("wrote %s and %d figure(s) under %s", args.out, len(figures), args.figures)
    if update_readme(args.readme, results_table(report.results, models, datasets), figures[0] if figures else None):
        log.info("updated the results section of %s", args.readme)
    return 1 if report.failures else 0


if __name__ == "__main__":
    sys.exit(main())
