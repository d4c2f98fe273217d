"""Side-by-side comparison figures in the manner of the SRGAN paper's Figure 2.

One row per image: the whole HR image with the zoomed region outlined, then the zoomed crop of
HR | bicubic | each model, with each method's Y-PSNR and LPIPS when computed (whole image,
protocol of `srgan.metrics.protocol`) under its crop. A real photo (no ground truth) shows its
input, enlarged by pixel repetition, in place of HR, and NIQE under each crop. Needs matplotlib (the optional ``plot`` extra); it is
drawn without pyplot, so no GUI backend or global state is involved.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..files import atomic_write
from .benchmark import BICUBIC, FigureRow, pick_crop


class MissingDependencyError(RuntimeError):
    """An optional package that a requested feature needs is not installed."""


def _shown(img: np.ndarray) -> np.ndarray:
    """What matplotlib draws right: uint8 as it is, 16-bit images as floats in [0, 1]."""
    return img.astype(np.float32) / 65535 if img.dtype == np.uint16 else img


def require_matplotlib() -> None:
    """Raise MissingDependencyError with the install hint when matplotlib is unavailable."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise MissingDependencyError(
            "figures need matplotlib: pip install 'srgan[plot]' (or pip install matplotlib)"
        ) from None


def column_order(row: FigureRow) -> list[str]:
    """Methods left to right: bicubic first, then the models in the order they were given."""
    return sorted(row.outputs, key=lambda name: (name != BICUBIC, list(row.outputs).index(name)))


def caption(row: FigureRow, method: str) -> str:
    """Scores under a method's crop: '27.31 dB', '27.31 dB, LPIPS 0.212', or for a real photo 'NIQE 4.12'."""
    parts = [f"{row.psnr[method]:.2f} dB"] if method in row.psnr else []
    if method in row.lpips:
        parts.append(f"LPIPS {row.lpips[method]:.3f}")
    if method in row.niqe:
        parts.append(f"NIQE {row.niqe[method]:.2f}")
    return ", ".join(parts)


def reference_panel(row: FigureRow, methods: list[str]) -> tuple[str, np.ndarray, np.ndarray]:
    """(label, image at output size, image the zoom window is chosen against) of a row's first panel.

    With ground truth: HR, and the window where bicubic misses it most. For a real photo: the LR
    input enlarged by pixel repetition (each input pixel shows), and the window where the first
    model changes bicubic most, which is where the methods differ.
    """
    if row.hr is not None:
        return "HR (original)", row.hr, row.hr
    out = row.outputs[methods[0]]
    s = out.shape[0] // row.lr.shape[0]
    enlarged = np.repeat(np.repeat(row.lr, s, axis=0), s, axis=1)[: out.shape[0], : out.shape[1]]
    model = next((m for m in methods if m != BICUBIC), methods[0])
    return "input (pixels x%d)" % s, enlarged, row.outputs[model]


def comparison_figure(
    rows: Sequence[FigureRow], path: str | os.PathLike, border: int = 0, crop_fraction: float = 0.25,
    panel_inches: float = 2.4,
) -> Path:
    """Draw `rows` into a PNG at `path` (written atomically) and return the path.

    The zoom window is the square of side `crop_fraction` x the shorter image side where bicubic
    errs most (`pick_crop`), kept `border` px (pass the scale: the shaved margin) off the edges,
    the same window for every method of a row.
    """
    require_matplotlib()
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import Rectangle

    if not rows:
        raise ValueError("comparison_figure: no images to draw")
    ncols = 2 + max(len(r.outputs) for r in rows)
    fig = Figure(figsize=(panel_inches * ncols, (panel_inches + 0.5) * len(rows)), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(rows), ncols, squeeze=False)
    for r, row in enumerate(rows):
        methods = column_order(row)
        first_label, first, target = reference_panel(row, methods)
        reference = row.outputs.get(BICUBIC, first)
        size = max(8, int(min(first.shape[:2]) * crop_fraction))
        top, left, size = pick_crop(target, reference, size, border)
        window = (slice(top, top + size), slice(left, left + size))

        whole = axes[r, 0]
        whole.imshow(_shown(row.hr if row.hr is not None else row.outputs.get(BICUBIC, first)))
        whole.add_patch(Rectangle((left - 0.5, top - 0.5), size, size, fill=False, edgecolor="red", linewidth=1.5))
        whole.set_xlabel(f"{row.dataset}/{row.image}", fontsize=9)

        panels = [(first_label, first, "")] + [(m, row.outputs[m], caption(row, m)) for m in methods]
        for c, (label, img, scores) in enumerate(panels, start=1):
            ax = axes[r, c]
            ax.imshow(_shown(img[window]), interpolation="nearest")
            ax.set_xlabel(f"{label}\n{scores}" if scores else label, fontsize=9)
        for ax in axes[r]:
            ax.set_xticks([])
            ax.set_yticks([])
        for ax in axes[r, 2 + len(methods):]:
            ax.set_visible(False)
    if all(r.hr is None for r in rows):
        title = "NIQE (no reference, lower is more natural; whole image) under each zoomed crop"
    else:
        lpips_note = ", LPIPS (lower is closer)" if any(r.lpips for r in rows) else ""
        niqe_note = "; NIQE for photos without ground truth" if any(r.hr is None for r in rows) else ""
        title = f"Y-PSNR{lpips_note} (whole image, scale px shaved){niqe_note} under each zoomed crop"
    fig.suptitle(title, fontsize=10)
    path = Path(path)
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight", pad_inches=0.1))
    return path
