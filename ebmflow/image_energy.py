"""Convolutional energy network for images (paper §3.5: the Du & Mordatch 2019 architecture as used by
CoopFlow, ≈4.5 M parameters; exact widths UNKNOWN, so ``width`` scales it from CPU to paper size)."""
from __future__ import annotations

import math

from torch import Tensor, nn

__all__ = ["ConvEnergy"]


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

    A 3×3 stem to ``width`` channels, then residual stages at H, H/2, ... down to 4×4 (average pooling
    between stages, widths doubling up to 4·width), global average pooling and a small two-layer head.
    The last layer starts at zero, so E_theta ≡ 0 and the tilted model equals rho at initialisation.
    """

    def __init__(self, image_shape: tuple[int, int, int], width: int = 32) -> None:
        super().__init__()
        channels, height, width_px = image_shape
        if height != width_px or height < 4 or height & (height - 1):
            raise ValueError(f"ConvEnergy needs square images with a power-of-two side >= 4, got {image_shape}")
        if width <= 0:
            raise ValueError(f"width must be positive, got {width}")
        self.image_shape = tuple(image_shape)
        n_stages = int(math.log2(height // 4)) + 1
        layers: list[nn.Module] = [nn.Conv2d(channels, width, 3, padding=1)]
        n_in = width
        for stage in range(n_stages):
            n_out = width * min(2**stage, 4)
            layers.append(ResidualBlock(n_in, n_out))
            if stage < n_stages - 1:
                layers.append(nn.AvgPool2d(2))
            n_in = n_out
        self.features = nn.Sequential(*layers)
        last = nn.Linear(width, 1)
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)
        self.head = nn.Sequential(nn.SiLU(), nn.Linear(n_in, width), nn.SiLU(), last)

    def forward(self, x: Tensor) -> Tensor:
        features = self.features(x.view(-1, *self.image_shape))
        return self.head(features.mean(dim=(2, 3))).squeeze(-1)
