"""Whitened principal components of images: a small linear space in which EBMs on real digits train, and are
measured, within CPU minutes; samples are decoded back to images for display and classification."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from ..checks import InputError, check_generator, check_int

__all__ = ["PrincipalComponents"]


@dataclass(frozen=True)
class PrincipalComponents:
    """z = (x - mean) W / scale: the first k principal directions W (d, k), scaled to unit variance on the
    images they were fitted on; ``decode`` maps back to the images' affine subspace."""

    mean: Tensor  # (d,)
    directions: Tensor  # (d, k), orthonormal columns
    scale: Tensor  # (k,) standard deviation of the images along each direction

    @classmethod
    def fit(cls, images: Tensor, k: int) -> "PrincipalComponents":
        """The first ``k`` components of ``images`` (n, d)."""
        check_int("number of principal components", k)
        x = images.flatten(1).double()
        if not k <= min(x.shape):
            raise InputError(f"number of principal components must be at most {min(x.shape)} here, got {k}")
        mean = x.mean(0)
        _, singular, right = torch.linalg.svd(x - mean, full_matrices=False)
        return cls(mean.float(), right[:k].T.float(), (singular[:k] / (len(x) - 1) ** 0.5).float())

    @property
    def dim(self) -> int:
        return self.directions.shape[1]

    def encode(self, x: Tensor) -> Tensor:
        return ((x.flatten(1) - self.mean.to(x.device)) @ self.directions.to(x.device)) / self.scale.to(x.device)

    def decode(self, z: Tensor) -> Tensor:
        return self.mean.to(z.device) + (z * self.scale.to(z.device)) @ self.directions.T.to(z.device)

    def project(self, x: Tensor) -> Tensor:
        """The image of ``x`` in the components' subspace."""
        return self.decode(self.encode(x))

    def dequantizer(self, levels: int):
        """A batch transform z -> z + encode-direction of fresh dequantisation noise: encoding the centres of
        the intensity levels (``Dequantize.centres``) and then this equals encoding dequantised images."""
        weights = self.directions / self.scale

        def transform(z: Tensor, generator: torch.Generator) -> Tensor:
            check_generator(generator)
            u = torch.rand(len(z), len(weights), generator=generator, device=z.device) - 0.5
            return z + (2 / levels) * u @ weights.to(z.device)

        return transform
