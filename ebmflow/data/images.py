"""Image data (paper §3.5, Appendix C.6): CIFAR-10 from a local copy, scikit-learn's digits offline.

Images are kept as integer intensity levels (uint8, shape (n, C, H, W)); ``Dequantize`` turns a batch into
the paper's continuous pixels in [-1, 1]: x = 2 (v + U) / L - 1 with U ~ U[0, 1) and L levels (the paper's
x̃ = (255 x + U) / 256 for CIFAR-10, rescaled), plus random horizontal flips for CIFAR-10.
"""
from __future__ import annotations

import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from ..checks import (InputError, check_choice, check_generator, check_image_shape, check_int, check_probability,
                      check_weights)

__all__ = ["CIFAR10_FILES", "ImageData", "ImageDataError", "Dequantize", "imbalanced_subset", "load_cifar10",
           "load_digits", "load_images", "read_cifar10_batch", "cifar10_folder"]

CIFAR10_FILES = tuple(f"data_batch_{i}" for i in range(1, 6)) + ("test_batch",)
CIFAR10_SOURCE = ("download cifar-10-python.tar.gz again from https://www.cs.toronto.edu/~kriz/cifar.html "
                  "(md5 c58f30108f718f92721af3b95e74349a) and extract it")


class ImageDataError(InputError, FileNotFoundError):
    """A data set that is not on this machine, or a damaged file of it (nothing is ever downloaded)."""


@dataclass(frozen=True)
class ImageData:
    """Train and test images as intensity levels 0..levels-1 (uint8, (n, C, H, W)) with integer labels."""

    name: str
    train: Tensor
    train_labels: Tensor
    test: Tensor
    test_labels: Tensor
    levels: int  # number of intensity levels: 256 for CIFAR-10, 17 for digits
    flips: bool  # random horizontal flips are part of the paper's pre-processing (CIFAR-10 only)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(self.train.shape[1:])


@dataclass(frozen=True)
class Dequantize:
    """Levels (n, d) or (n, C, H, W) -> continuous pixels in [-1, 1] of the same shape, fresh noise per call."""

    levels: int
    image_shape: tuple[int, int, int]
    flips: bool = False

    def __post_init__(self) -> None:
        check_int("levels", self.levels, minimum=2)
        object.__setattr__(self, "image_shape", check_image_shape("image_shape", self.image_shape))

    def __call__(self, batch: Tensor, generator: torch.Generator) -> Tensor:
        images = batch.float().view(-1, *self.image_shape)
        if self.flips:
            flip = torch.rand(len(images), generator=generator, device=images.device) < 0.5
            images = torch.where(flip[:, None, None, None], images.flip(-1), images)
        noise = torch.rand(images.shape, generator=generator, device=images.device)
        return (2 * (images + noise) / self.levels - 1).view(batch.shape)

    def centres(self, batch: Tensor) -> Tensor:
        """The centre of each level's cell, 2 (v + 1/2) / L - 1: the noiseless pixels (what the noise averages to)."""
        return 2 * (batch.float() + 0.5) / self.levels - 1


def cifar10_folder(root: str | Path) -> Path:
    """The folder holding the six CIFAR-10 python batches, ``ROOT/cifar-10-batches-py`` or ``ROOT`` itself; raises
    ImageDataError naming the missing files (a cheap check, run before any work)."""
    if not isinstance(root, (str, Path)):
        raise ImageDataError(f"data_root must be a folder path (str or Path), got {type(root).__name__} {root!r}")
    root = Path(root).expanduser()
    folder = root / "cifar-10-batches-py" if (root / "cifar-10-batches-py").is_dir() else root
    missing = [name for name in CIFAR10_FILES if not (folder / name).is_file()]
    if missing:
        raise ImageDataError(
            f"CIFAR-10 not found: expected the files {', '.join(CIFAR10_FILES)} of the python version "
            f"(cifar-10-python.tar.gz, extracted) in {root / 'cifar-10-batches-py'} or {root} (data_root); missing: "
            f"{', '.join(missing)}. Nothing is downloaded: put a local copy there, or use dataset='digits'.")
    return folder


def load_cifar10(root: str | Path) -> ImageData:
    """CIFAR-10 from the standard python pickles ``ROOT/cifar-10-batches-py/{data_batch_1..5,test_batch}``
    (or directly under ROOT). Raises ImageDataError naming the missing files; never downloads."""
    folder = cifar10_folder(root)

    def read(names: list[str]) -> tuple[Tensor, Tensor]:
        images, labels = [], []
        for name in names:
            batch_images, batch_labels = read_cifar10_batch(folder / name)
            images.append(batch_images)
            labels.append(batch_labels)
        return torch.from_numpy(np.concatenate(images)), torch.from_numpy(np.concatenate(labels))

    train, train_labels = read(list(CIFAR10_FILES[:-1]))
    test, test_labels = read([CIFAR10_FILES[-1]])
    return ImageData("cifar10", train, train_labels, test, test_labels, levels=256, flips=True)


def read_cifar10_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One CIFAR-10 python batch: uint8 images (n, 3, 32, 32) and labels 0..9 (n,). A damaged file (truncated or
    not a pickle, wrong keys, float pixels instead of uint8 levels 0..255, wrong shapes, labels out of range)
    raises ImageDataError naming the file and how to get a good copy."""
    def damaged(what: str) -> ImageDataError:
        return ImageDataError(f"CIFAR-10 file {path} {what}: {CIFAR10_SOURCE}")

    try:
        with open(path, "rb") as handle:
            batch = pickle.load(handle, encoding="bytes")
    except OSError as error:
        raise damaged(f"cannot be read ({error.strerror or error})") from None
    except Exception as error:  # noqa: BLE001 - truncated, not a pickle, pickled objects that no longer exist
        raise damaged(f"is damaged ({type(error).__name__}: {' '.join(str(error).split())[:120]})") from None
    if not isinstance(batch, dict):
        raise damaged(f"holds a {type(batch).__name__}, not the batch dictionary of the python version")
    found = {key.decode() if isinstance(key, bytes) else str(key): value for key, value in batch.items()}
    missing = [key for key in ("data", "labels") if key not in found]
    if missing:
        raise damaged(f"has no {' and '.join(map(repr, missing))} entry (keys: {', '.join(sorted(found)) or 'none'})")
    data, labels = np.asarray(found["data"]), np.asarray(found["labels"])
    if data.dtype.kind == "f":
        low, high = (float(data.min()), float(data.max())) if data.size else (0.0, 0.0)
        raise damaged(f"holds {data.dtype} pixels in [{low:.3g}, {high:.3g}] instead of uint8 levels 0..255 "
                      f"(rescaled or converted copy)")
    if data.dtype.kind not in "iu" or (data.size and (data.min() < 0 or data.max() > 255)):
        raise damaged(f"holds pixels of dtype {data.dtype} outside the uint8 levels 0..255")
    if data.ndim not in (2, 4) or data[0:1].size not in (0, 3 * 32 * 32) or data.shape[0] == 0:
        raise damaged(f"holds images of shape {data.shape} instead of (n, 3072) (3 × 32 × 32 levels per row)")
    if labels.shape != (data.shape[0],) or labels.dtype.kind not in "iu" or labels.min() < 0 or labels.max() > 9:
        raise damaged(f"holds labels of shape {labels.shape} (dtype {labels.dtype}) instead of {data.shape[0]} "
                      f"integers 0..9, one per image")
    return data.astype(np.uint8).reshape(-1, 3, 32, 32), labels.astype(np.int64)


def load_digits(test_fraction: float, generator: torch.Generator) -> ImageData:
    """scikit-learn's 1797 8×8 digits (levels 0..16, shipped in the wheel), split at random into train/test.
    No flips: a mirrored digit is not a digit."""
    from sklearn.datasets import load_digits as sklearn_digits

    check_probability("test_fraction", test_fraction)
    check_generator(generator)
    bunch = sklearn_digits()
    images = torch.from_numpy(bunch.images.astype(np.uint8)).unsqueeze(1)
    labels = torch.from_numpy(bunch.target.astype(np.int64))
    order = torch.randperm(len(images), generator=generator)
    n_test = round(test_fraction * len(images))
    test, train = order[:n_test], order[n_test:]
    return ImageData("digits", images[train], labels[train], images[test], labels[test], levels=17, flips=False)


def load_images(dataset: str, data_root: str, generator: torch.Generator, test_fraction: float = 0.2) -> ImageData:
    """``dataset`` "digits" (offline default) or "cifar10" (read from ``data_root``)."""
    check_choice("dataset", dataset, ("digits", "cifar10"))
    if dataset == "digits":
        return load_digits(test_fraction, generator)
    return load_cifar10(data_root)


def imbalanced_subset(images: Tensor, labels: Tensor, classes: tuple[int, ...], proportions: tuple[float, ...],
                      generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """The largest subset of ``classes`` in exactly (up to rounding) the given ``proportions``.

    Returns the images and their labels re-indexed 0..len(classes)-1 (in the order of ``classes``).
    """
    check_generator(generator)
    if not isinstance(images, Tensor) or not isinstance(labels, Tensor) or len(images) != len(labels):
        raise InputError(f"images and labels must be tensors of the same length, got "
                         f"{getattr(images, 'shape', type(images).__name__)} and "
                         f"{getattr(labels, 'shape', type(labels).__name__)}")
    check_weights("proportions", proportions)
    if len(classes) != len(proportions) or len(set(classes)) != len(classes):
        raise InputError(f"need one proportion per distinct class, got classes {classes} and proportions "
                         f"{proportions}")
    available = [int((labels == c).sum()) for c in classes]
    missing = [c for c, n in zip(classes, available) if n == 0]
    if missing:
        raise InputError(f"class(es) {missing} have no image in this data set (labels present: "
                         f"{sorted(set(labels.tolist()))}); choose classes that exist")
    total = min(n / p for n, p in zip(available, proportions))
    chosen_images, chosen_labels = [], []
    for k, (c, p) in enumerate(zip(classes, proportions)):
        index = torch.nonzero(labels == c).squeeze(1)
        index = index[torch.randperm(len(index), generator=generator)[: int(round(total * p))]]
        chosen_images.append(images[index])
        chosen_labels.append(torch.full((len(index),), k, dtype=torch.int64))
    return torch.cat(chosen_images), torch.cat(chosen_labels)
