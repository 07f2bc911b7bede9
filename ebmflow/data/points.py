"""Points from a reader's own data file (.npy or .csv, one point per row, any dimension >= 2), checked before any
work: bad files get one sentence naming the file and the problem. And the shipped example file (chapter 08)."""
from __future__ import annotations

import csv
import functools
import math
from pathlib import Path

import numpy as np
import torch

from ..checks import InputError
from ..seeding import make_generator
from ..targets import FullCovarianceMixture

__all__ = ["EXAMPLE", "MIN_ROWS", "load_data", "write_example"]

EXAMPLE = Path(__file__).resolve().parents[2] / "book" / "data" / "example_clusters.csv"
MIN_ROWS = 100  # fewer rows than this (or than batch_size) are refused


def _resolve(path: str) -> Path:
    return EXAMPLE if path == "" else Path(path).expanduser()


def _csv_rows(path: Path) -> list[list[float]]:
    """The rows of a comma-separated file of numbers (a first line without any number is a header)."""
    with open(path, newline="") as handle:
        lines = [(n, row) for n, row in enumerate(csv.reader(handle), 1) if any(cell.strip() for cell in row)]
    if lines and all(_number(cell) is None for cell in lines[0][1]):
        lines = lines[1:]
    rows: list[list[float]] = []
    for number, row in lines:
        values = [_number(cell) for cell in row]
        if None in values:
            bad = values.index(None)
            what = "is empty" if not row[bad].strip() else f"is not a number ({row[bad].strip()!r})"
            raise InputError(f"data file {path}: line {number}, column {bad + 1} {what}; every line but an optional "
                             f"header must hold numbers only")
        if not all(map(math.isfinite, values)):
            raise InputError(f"data file {path}: line {number} has a NaN or infinite value: remove or fix that row")
        if rows and len(values) != len(rows[0]):
            raise InputError(f"data file {path}: line {number} has {len(values)} values, the lines before it "
                             f"{len(rows[0])}")
        rows.append(values)
    if not rows:
        raise InputError(f"data file {path}: it holds no rows of numbers")
    return rows


def _number(cell: str) -> float | None:
    try:
        return float(cell)
    except ValueError:
        return None


@functools.lru_cache(maxsize=4)
def _load(path: Path, stamp: tuple[int, int]) -> np.ndarray:
    if path.suffix.lower() == ".csv":
        return np.asarray(_csv_rows(path), dtype=np.float64)
    try:
        array = np.load(path, allow_pickle=False)
    except (ValueError, OSError) as error:
        raise InputError(f"data file {path}: not a readable .npy array of numbers ({error})") from None
    if array.dtype.kind not in "iuf":
        raise InputError(f"data file {path}: holds {array.dtype} values, not real numbers")
    if array.ndim != 2:
        raise InputError(f"data file {path}: must hold a 2-D array (one point per row), got shape {array.shape}")
    return array.astype(np.float64)


def load_data(path: str, min_rows: int = MIN_ROWS) -> np.ndarray:
    """The points of a .npy or .csv file, (n, d) float64, checked: ``""`` is the shipped example; a relative path is
    relative to the current folder. InputError (one sentence naming the file) when it is missing, not .npy/.csv, not
    numeric, has NaN or infinite rows (the first is named), fewer than 2 columns, fewer than ``min_rows`` rows or a
    constant column."""
    file = _resolve(path)
    if file.suffix.lower() not in (".npy", ".csv"):
        raise InputError(f"data_path {path!r}: must be a .npy or .csv file")
    if not file.is_file():
        raise InputError(f"data file {file}: no such file" + (" (a folder)" if file.is_dir() else ""))
    stat = file.stat()
    data = _load(file.resolve(), (stat.st_mtime_ns, stat.st_size)).copy()
    bad = np.flatnonzero(~np.isfinite(data).all(axis=1)) if data.size else []
    if len(bad):
        raise InputError(f"data file {file}: row {bad[0] + 1} (counting from 1) has NaN or infinite values "
                         f"({len(bad)} such rows): remove or fix them")
    if data.ndim != 2 or data.shape[1] < 2:
        raise InputError(f"data file {file}: has {data.shape[1] if data.ndim == 2 else 1} column(s); at least 2 are "
                         f"needed (one point per row, one coordinate per column)")
    if len(data) < min_rows:
        raise InputError(f"data file {file}: has {len(data)} rows; at least {min_rows} are needed")
    constant = np.flatnonzero(data.std(axis=0) == 0)
    if len(constant):
        raise InputError(f"data file {file}: column {constant[0] + 1} is constant ({data[0, constant[0]]:g}): "
                         f"standardising it would divide by zero; drop it")
    return data


def write_example(path: Path = EXAMPLE, seed: int = 0, n: int = 4000) -> Path:
    """The shipped example (book/data/example_clusters.csv): ``n`` points of four 2-D Gaussian clusters of weights
    0.45, 0.30, 0.17, 0.08 (one elongated and tilted, one small), in raw units on very different scales (x around
    50 ± 40, y around 0 ± 1) so that the per-coordinate standardisation matters. Deterministic in ``seed``."""
    generator = make_generator(seed, stream="example")
    angle = math.pi / 6
    rotation = torch.tensor([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    scales = torch.tensor([[0.4, 0.25], [0.3, 0.3], [0.6, 0.18], [0.15, 0.15]])
    covariances = torch.stack([rotation @ torch.diag(s**2) @ rotation.T if k == 0 else torch.diag(s**2)
                               for k, s in enumerate(scales)])
    clusters = FullCovarianceMixture(torch.tensor([[-1.5, 1.0], [1.5, 1.2], [0.0, -1.2], [2.0, -1.6]]), covariances,
                                     torch.tensor([0.45, 0.30, 0.17, 0.08]))
    raw = clusters.sample(n, generator) * torch.tensor([20.0, 0.5]) + torch.tensor([50.0, 0.0])
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ["x,y"] + [f"{a:.4f},{b:.5f}" for a, b in raw.tolist()]
    path.write_text("\n".join(lines) + "\n")
    return path
