"""One style and one ``savefig`` for every figure of the book (PNG and PDF, written atomically)."""
from __future__ import annotations

import os
from pathlib import Path

import seaborn as sns
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from ..methods import METHODS
from ..metrics import Grid2D

__all__ = ["BOOK_FIGURE_WIDTH", "set_style", "savefig", "figure_dir", "density_panel", "label", "color"]


def label(method: str) -> str:
    """The method's name as the paper writes it (from the method registry)."""
    return METHODS[method].label


def color(method: str) -> str:
    """The method's colour in every figure (from the method registry)."""
    return METHODS[method].color


BOOK_FIGURE_WIDTH = 7.0  # inches: a figure this wide is shown at its own size in the book's text column
#   (about 690 px at figure.dpi 100, 1280-px window); a wider one is shrunk to the column, its text with it.


def set_style() -> None:
    """The book's one style for every figure; call once per chapter (the set-up cell does).

    seaborn's "ticks" theme (white background, ticks, no grid), text sized to be read at the
    book's column width (labels and titles 11 pt, ticks and legends 10 pt, about 15 and 14 px on screen for a
    figure ``BOOK_FIGURE_WIDTH`` wide), legends without a frame, viridis for densities, PNGs at 200 dpi and
    vector PDFs with embedded TrueType text (``savefig`` writes both). Method colours come from the method
    registry (``color(method)``)."""
    sns.set_theme(context="notebook", style="ticks", rc={
        "font.size": 11, "axes.titlesize": 11, "axes.labelsize": 11, "xtick.labelsize": 10, "ytick.labelsize": 10,
        "legend.fontsize": 10, "legend.title_fontsize": 10, "legend.frameon": False, "axes.titlepad": 5,
        "lines.linewidth": 1.6, "image.cmap": "viridis", "figure.figsize": (BOOK_FIGURE_WIDTH, 4.0),
        "figure.dpi": 100, "savefig.dpi": 200, "savefig.bbox": "tight", "savefig.pad_inches": 0.05,
        "pdf.fonttype": 42, "ps.fonttype": 42,
    })


def figure_dir() -> Path:
    """Where figures go: $EBMFLOW_FIGURE_DIR, else ``figures/`` beside the running notebook."""
    return Path(os.environ.get("EBMFLOW_FIGURE_DIR", "figures"))


def savefig(fig: Figure, name: str) -> Path:
    """Save ``fig`` as NAME.png and NAME.pdf in ``figure_dir()``; each file is written to a temporary
    name and moved into place, so a crash never leaves half a figure (``ebmflow run`` points figure_dir() at a
    temporary folder and moves the figures beside the notebook only when the whole notebook succeeded).
    Both files are byte-identical for identical figures (no creation date in the PDF)."""
    directory = figure_dir()
    directory.mkdir(parents=True, exist_ok=True)
    metadata = {"png": {}, "pdf": {"CreationDate": None}}  # the PDF backend writes no other varying field
    for ext in ("png", "pdf"):
        final = directory / f"{name}.{ext}"
        temporary = directory / f".{name}.tmp{os.getpid()}.{ext}"
        try:
            fig.savefig(temporary, format=ext, metadata=metadata[ext])
            os.replace(temporary, final)
        finally:
            temporary.unlink(missing_ok=True)
    return directory / f"{name}.png"


def density_panel(ax: Axes, log_density: torch.Tensor, grid: Grid2D, title: str) -> None:
    """Show a density given on ``grid`` (log values, shape (n*n,)) in data coordinates."""
    values = log_density.exp().reshape(grid.n, grid.n).T.numpy()  # [i_y, i_x] for imshow
    ax.imshow(values, origin="lower", extent=(grid.low, grid.high, grid.low, grid.high), cmap="viridis")
    ax.set_title(title)
    ax.set_xticks([])
    ax.set_yticks([])
