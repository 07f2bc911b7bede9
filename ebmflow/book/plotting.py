"""One style and one ``savefig`` for every figure of the book (PNG and PDF, written atomically)."""
from __future__ import annotations

import os
from pathlib import Path

import matplotlib
import seaborn as sns
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from ..methods import METHODS
from ..metrics import Grid2D

__all__ = ["set_style", "savefig", "figure_dir", "density_panel", "label", "color"]


def label(method: str) -> str:
    """The method's name as the paper writes it (from the method registry)."""
    return METHODS[method].label


def color(method: str) -> str:
    """The method's colour in every figure (from the method registry)."""
    return METHODS[method].color


def set_style() -> None:
    """The book's seaborn style; call once per chapter."""
    sns.set_theme(context="notebook", style="ticks", font_scale=0.9)
    matplotlib.rcParams.update({"figure.dpi": 100, "savefig.dpi": 150, "savefig.bbox": "tight",
                                "image.cmap": "viridis", "axes.titlesize": "medium"})


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
