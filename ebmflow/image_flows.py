"""RealNVP for images on nflows (paper §3.5, Appendix C.6) with the fixed pre-processing of Dinh et al. 2017.

Pixels x in [-1, 1] are mapped to u = (x + 1) / 2 in [0, 1] (the affine layer) and then to
y = logit(alpha + (1 - 2 alpha) u) (the logit layer, alpha = 0.05 as in fmu2/realNVP). The flow T acts on y
with base N(0, I). The EBM's tilt rho is that base pushed through the fixed layers only (``LogitGaussian``),
so the flow equals rho at initialisation. Both work on flattened images (n, C·H·W) and implement the
proposal protocol ``log_prob`` / ``sample_with_log_prob``.
"""
from __future__ import annotations

import math

import torch
from nflows.nn.nets import ConvResidualNet
from nflows.transforms import CompositeTransform, SqueezeTransform
from torch import Tensor, nn

from .flows import ExpandingAffineCoupling

__all__ = ["LogitPreprocessing", "LogitGaussian", "ImageRealNVP"]


class LogitPreprocessing(nn.Module):
    """Fixed bijection [-1, 1]^d -> R^d, y = logit(alpha + (1 - 2 alpha)(x + 1) / 2); positions outside the
    open interval it maps from have no image (NaN), which MCMC steps treat as rejections."""

    def __init__(self, alpha: float = 0.05) -> None:
        super().__init__()
        if not 0 < alpha < 0.5:
            raise ValueError(f"alpha must be in (0, 0.5), got {alpha}")
        self.alpha = alpha

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """y and log|dy/dx| summed over pixels."""
        v = self.alpha + (1 - 2 * self.alpha) * (x + 1) / 2
        logdet = math.log((1 - 2 * self.alpha) / 2) - torch.log(v) - torch.log1p(-v)
        return torch.log(v) - torch.log1p(-v), logdet.flatten(1).sum(-1)

    def inverse(self, y: Tensor) -> tuple[Tensor, Tensor]:
        """x and log|dx/dy| summed over pixels."""
        v = torch.sigmoid(y)
        x = 2 * (v - self.alpha) / (1 - 2 * self.alpha) - 1
        logdet = math.log(2 / (1 - 2 * self.alpha)) + nn.functional.logsigmoid(y) + nn.functional.logsigmoid(-y)
        return x, logdet.flatten(1).sum(-1)


def _standard_normal_log_prob(z: Tensor) -> Tensor:
    return -0.5 * (z.flatten(1).pow(2).sum(-1) + z[0].numel() * math.log(2 * math.pi))


class LogitGaussian(nn.Module):
    """rho for images: N(0, I) in logit space pushed to pixel space through ``LogitPreprocessing``."""

    def __init__(self, image_shape: tuple[int, int, int], alpha: float = 0.05) -> None:
        super().__init__()
        self.image_shape = tuple(image_shape)
        self.dim = math.prod(image_shape)
        self.preprocessing = LogitPreprocessing(alpha)

    def log_prob(self, x: Tensor) -> Tensor:
        y, logdet = self.preprocessing(x)
        return _standard_normal_log_prob(y) + logdet

    def sample_with_log_prob(self, n: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        y = torch.randn(n, self.dim, generator=generator)
        x, logdet = self.preprocessing.inverse(y)
        return x, _standard_normal_log_prob(y) - logdet


class ImageRealNVP(nn.Module):
    """lambda(x) = N(T^{-1}(y(x)); 0, I) |J_{T^{-1}}| |dy/dx|, T = affine couplings on squeezed images.

    The image is squeezed (C, H, W) -> (4C, H/2, W/2) and ``n_couplings`` affine couplings with
    convolutional residual coupling nets (``n_blocks`` blocks of ``hidden`` channels, no batch norm so the
    density does not depend on train/eval mode) alternate four channel masks (mixing both the pixels of
    each 2×2 block and the colour channels). Coupling nets end at zero: T = Id at initialisation.
    """

    def __init__(self, base: LogitGaussian, n_couplings: int = 4, hidden: int = 32, n_blocks: int = 2) -> None:
        super().__init__()
        if n_couplings <= 0 or hidden <= 0 or n_blocks <= 0:
            raise ValueError("n_couplings, hidden and n_blocks must be positive")
        channels, height, width = base.image_shape
        if height % 2 or width % 2:
            raise ValueError(f"ImageRealNVP needs even image sides, got {base.image_shape}")
        self.base = base
        squeezed = 4 * channels
        index = torch.arange(squeezed)
        masks = [index % 2, 1 - index % 2, (index // 2) % 2, 1 - (index // 2) % 2]

        def coupling_net(n_in: int, n_out: int) -> nn.Module:
            net = ConvResidualNet(n_in, n_out, hidden_channels=hidden, num_blocks=n_blocks)
            nn.init.zeros_(net.final_layer.weight)
            nn.init.zeros_(net.final_layer.bias)
            return net

        layers = [SqueezeTransform()] + [ExpandingAffineCoupling(masks[i % 4], coupling_net)
                                          for i in range(n_couplings)]
        self.transform = CompositeTransform(layers)  # logit space -> latent (nflows convention)

    @property
    def dim(self) -> int:
        return self.base.dim

    def log_prob(self, x: Tensor) -> Tensor:
        y, logdet_pre = self.base.preprocessing(x)
        z, logdet = self.transform(y.view(-1, *self.base.image_shape))
        return _standard_normal_log_prob(z) + logdet + logdet_pre

    def sample_with_log_prob(self, n: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        z = torch.randn(n, *self._latent_shape(), generator=generator)
        y, logdet = self.transform.inverse(z)
        x, logdet_post = self.base.preprocessing.inverse(y.flatten(1))
        return x, _standard_normal_log_prob(z) - logdet - logdet_post

    def _latent_shape(self) -> tuple[int, int, int]:
        channels, height, width = self.base.image_shape
        return 4 * channels, height // 2, width // 2
