"""A generated stand-in for CIFAR-10 in the real file format and size, to check the paper configuration of
chapter 05 where the real data set is not on the machine (nothing is ever downloaded).

``write_cifar10_standin(root)`` writes ``root/cifar-10-batches-py/`` as the python version of CIFAR-10 has it:
``data_batch_1`` ... ``data_batch_5`` and ``test_batch``, each a pickled dict with ``b"batch_label"``,
``b"labels"`` (10 000 ints 0..9), ``b"data"`` (a 10 000 × 3072 uint8 array, rows R | G | B, each 32 × 32
row-major) and ``b"filenames"``, plus ``batches.meta``. The pixels are smooth random colour fields (not noise, so
that a convolutional EBM sees images with some spatial structure); they carry no class information.
"""
from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

from ..checks import InputError, check_int, check_seed
from .images import CIFAR10_FILES

__all__ = ["CIFAR10_IMAGES_PER_FILE", "CIFAR10_LABELS", "write_cifar10_standin"]

CIFAR10_IMAGES_PER_FILE = 10_000
CIFAR10_LABELS = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


def _images(rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` smooth 32 × 32 colour images as CIFAR-10 rows (n, 3072) uint8: a coarse 4 × 4 random field per
    channel, upsampled by 8, plus a little pixel noise."""
    coarse = rng.integers(0, 256, size=(n, 3, 4, 4), dtype=np.uint8)
    images = np.repeat(np.repeat(coarse, 8, axis=2), 8, axis=3)
    noise = rng.integers(-12, 13, size=images.shape, dtype=np.int16)
    return np.clip(images.astype(np.int16) + noise, 0, 255).astype(np.uint8).reshape(n, 3 * 32 * 32)


def write_cifar10_standin(root: str | Path, *, n_per_file: int = CIFAR10_IMAGES_PER_FILE, seed: int = 0) -> Path:
    """Write the six CIFAR-10 python batches (``n_per_file`` images each: 10 000 as in the real files, about
    30 MB per file) into ``root/cifar-10-batches-py/`` and return ``root`` (pass it as chapter 05's ``data_root``).
    Files already there are overwritten."""
    check_int("n_per_file", n_per_file)
    check_seed(seed)
    if not isinstance(root, (str, Path)):
        raise InputError(f"root must be a folder path (str or Path), got {type(root).__name__}")
    root = Path(root).expanduser()
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for index, name in enumerate(CIFAR10_FILES):
        which = "testing batch 1 of 1" if name == "test_batch" else f"training batch {index + 1} of 5"
        batch = {b"batch_label": which.encode(), b"labels": rng.integers(0, 10, size=n_per_file).tolist(),
                 b"data": _images(rng, n_per_file),
                 b"filenames": [f"standin_{index}_{i}.png".encode() for i in range(n_per_file)]}
        with open(folder / name, "wb") as handle:
            pickle.dump(batch, handle, protocol=4)  # the real files are Python 2 pickles of the same dict: the reader
            # loads both alike (encoding="bytes"); protocol 4 stores the pixels as raw bytes, so the size is theirs
    with open(folder / "batches.meta", "wb") as handle:
        pickle.dump({b"num_cases_per_batch": n_per_file, b"label_names": [n.encode() for n in CIFAR10_LABELS],
                     b"num_vis": 3072}, handle, protocol=4)
    return root
