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

from ..checks import InputError, check_generator, check_probability, check_weights

__all__ = ["CIFAR10_FILES", "ImageData", "ImageDataError", "Dequantize", "imbalanced_subset", "load_cifar10",
           "load_digits", "load_images"]

CIFAR10_FILES = tuple(f"data_batch_{i}" for i in range(1, 6)) + ("test_batch",)


class ImageDataError(InputError, FileNotFoundError):
    """A data set that is not on this machine (nothing is ever downloaded)."""


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


def load_cifar10(root: str | Path) -> ImageData:
    """CIFAR-10 from the standard python pickles ``ROOT/cifar-10-batches-py/{data_batch_1..5,test_batch}``
    (or directly under ROOT). Raises ImageDataError naming the missing files; never downloads."""
    root = Path(root).expanduser()
    folder = root / "cifar-10-batches-py" if (root / "cifar-10-batches-py").is_dir() else root
    missing = [name for name in CIFAR10_FILES if not (folder / name).is_file()]
    if missing:
        raise ImageDataError(
            f"CIFAR-10 not found: expected the files {', '.join(CIFAR10_FILES)} of the python version "
            f"(cifar-10-python.tar.gz, extracted) in {root / 'cifar-10-batches-py'} or {root}; missing: "
            f"{', '.join(missing)}. Nothing is downloaded: put a local copy there, or use dataset='digits'.")

    def read(names: list[str]) -> tuple[Tensor, Tensor]:
        images, labels = [], []
        for name in names:
            with open(folder / name, "rb") as handle:
                batch = pickle.load(handle, encoding="bytes")
            images.append(np.asarray(batch[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
            labels.append(np.asarray(batch[b"labels"], dtype=np.int64))
        return torch.from_numpy(np.concatenate(images)), torch.from_numpy(np.concatenate(labels))

    train, train_labels = read(list(CIFAR10_FILES[:-1]))
    test, test_labels = read([CIFAR10_FILES[-1]])
    return ImageData("cifar10", train, train_labels, test, test_labels, levels=256, flips=True)


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
    if dataset == "digits":
        return load_digits(test_fraction, generator)
    if dataset == "cifar10":
        return load_cifar10(data_root)
    raise InputError(f"unknown dataset {dataset!r}; accepted: 'digits', 'cifar10'")


def imbalanced_subset(images: Tensor, labels: Tensor, classes: tuple[int, ...], proportions: tuple[float, ...],
                      generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """The largest subset of ``classes`` in exactly (up to rounding) the given ``proportions``.

    Returns the images and their labels re-indexed 0..len(classes)-1 (in the order of ``classes``).
    """
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
