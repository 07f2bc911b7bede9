"""Energy networks E_theta: the toy MLP of the 2-D and high-dimensional experiments (paper §3.1) and the
convolutional net for images (paper §3.5). Both end with a layer at zero, so E_theta ≡ 0 at initialisation
and the tilted model p^rho_theta equals rho (paper §2.3, Eq. 6)."""
from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from ..checks import InputError, check_image_shape, check_int, check_number
from .init import global_rng_untouched, initialize, zero_last

__all__ = ["ToyEnergy", "ConvEnergy"]


class ToyEnergy(nn.Module):
    """MLP dim -> 32 -> 64 -> 64 -> 64 -> 1 with LeakyReLU(0.05).

    Same function class as ebm-anatomy's ``ToyNet`` (1x1 convolutions on (B, dim, 1, 1) inputs are dense
    layers); 10 593 parameters for dim = 2.
    """

    def __init__(self, dim: int, width: int = 32, leak: float = 0.05, *, generator: torch.Generator) -> None:
        super().__init__()
        self.dim = check_int("energy dim", dim)
        check_int("energy width", width)
        check_number("energy leak", leak)
        widths = [dim, width, 2 * width, 2 * width, 2 * width]
        layers: list[nn.Module] = []
        with global_rng_untouched():
            for n_in, n_out in zip(widths[:-1], widths[1:]):
                layers += [nn.Linear(n_in, n_out), nn.LeakyReLU(leak)]
            self.net = nn.Sequential(*layers, zero_last(nn.Linear(widths[-1], 1)))
        initialize(self, generator)

    def forward(self, x: Tensor) -> Tensor:
        """Energies, shape (n,)."""
        return self.net(x).squeeze(-1)


class ResidualBlock(nn.Module):
    """Two 3×3 convolutions with SiLU (swish, as in Du & Mordatch) and a 1×1 skip when widths differ."""

    def __init__(self, n_in: int, n_out: int) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.SiLU(), nn.Conv2d(n_in, n_out, 3, padding=1), nn.SiLU(),
                                  nn.Conv2d(n_out, n_out, 3, padding=1))
        self.skip = nn.Identity() if n_in == n_out else nn.Conv2d(n_in, n_out, 1)

    def forward(self, x: Tensor) -> Tensor:
        return self.skip(x) + self.body(x)


class ConvEnergy(nn.Module):
    """E_theta: images (n, C, H, W) or their flattening (n, C·H·W) -> energies (n,).

    The Du & Mordatch 2019 architecture as CoopFlow uses it (≈4.5 M parameters in the paper; exact widths
    UNKNOWN, so ``width`` scales it): a 3×3 stem to ``width`` channels, residual stages at H, H/2, ... down to
    4×4 (average pooling between stages, widths doubling up to 4·width), global average pooling and a small
    two-layer head whose last layer starts at zero.
    """

    def __init__(self, image_shape: tuple[int, int, int], width: int = 32, *, generator: torch.Generator) -> None:
        super().__init__()
        channels, height, width_px = check_image_shape("image_shape", image_shape)
        if height != width_px or height < 4 or height & (height - 1):
            raise InputError(f"ConvEnergy needs square images with a power-of-two side >= 4, got {image_shape}")
        check_int("energy width", width)
        self.image_shape = tuple(image_shape)
        self.dim = math.prod(image_shape)
        n_stages = int(math.log2(height // 4)) + 1
        with global_rng_untouched():
            layers: list[nn.Module] = [nn.Conv2d(channels, width, 3, padding=1)]
            n_in = width
            for stage in range(n_stages):
                n_out = width * min(2**stage, 4)
                layers.append(ResidualBlock(n_in, n_out))
                if stage < n_stages - 1:
                    layers.append(nn.AvgPool2d(2))
                n_in = n_out
            self.features = nn.Sequential(*layers)
            self.head = nn.Sequential(nn.SiLU(), nn.Linear(n_in, width), nn.SiLU(), zero_last(nn.Linear(width, 1)))
        initialize(self, generator)

    def forward(self, x: Tensor) -> Tensor:
        features = self.features(x.view(-1, *self.image_shape))
        return self.head(features.mean(dim=(2, 3))).squeeze(-1)
