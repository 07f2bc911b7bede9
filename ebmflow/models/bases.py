"""Base densities rho: the flow's base and the EBM's tilt (paper Eq. 6). Both implement the proposal protocol
``log_prob(x)`` / ``sample_with_log_prob(n, generator)``."""
from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from ..checks import InputError, check_generator, check_image_shape, check_int, check_positive

__all__ = ["DiagonalGaussian", "LogitPreprocessing", "LogitGaussian"]


class DiagonalGaussian(nn.Module):
    """rho = N(0, std^2 I_d)."""

    def __init__(self, dim: int, std: float = 1.0) -> None:
        super().__init__()
        self.dim = check_int("base dim", dim)
        check_positive("base std", std)
        self.register_buffer("std", torch.tensor(float(std)))

    def log_prob(self, x: Tensor) -> Tensor:
        var = self.std**2
        return -0.5 * (x.flatten(1).pow(2).sum(-1) / var + self.dim * torch.log(2 * math.pi * var))

    def sample_with_log_prob(self, n: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        check_int("number of samples", n, minimum=0)
        check_generator(generator)
        z = self.std * torch.randn(n, self.dim, generator=generator, device=self.std.device)
        return z, self.log_prob(z)


class LogitPreprocessing(nn.Module):
    """Fixed bijection y = logit(alpha + (1 - 2 alpha)(x + 1) / 2) (Dinh et al. 2017, alpha = 0.05 as in
    fmu2/realNVP): pixels [-1, 1] go to [logit alpha, logit(1 - alpha)], and the whole open interval
    ``|x| < 1 + 2 alpha / (1 - 2 alpha)`` onto R (so draws of rho can fall slightly outside [-1, 1]); positions beyond
    it have no image (NaN), which MCMC steps treat as rejections."""

    def __init__(self, alpha: float = 0.05) -> None:
        super().__init__()
        if not isinstance(alpha, (int, float)) or isinstance(alpha, bool) or not 0 < alpha < 0.5:
            raise InputError(f"alpha must be a number in (0, 0.5), got {alpha!r}")
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


class LogitGaussian(nn.Module):
    """rho for images: N(0, I) in logit space pushed to pixel space through ``LogitPreprocessing``."""

    def __init__(self, image_shape: tuple[int, int, int], alpha: float = 0.05) -> None:
        super().__init__()
        self.image_shape = check_image_shape("image_shape", image_shape)
        self.dim = math.prod(self.image_shape)
        self.preprocessing = LogitPreprocessing(alpha)
        self.latent = DiagonalGaussian(self.dim)

    def log_prob(self, x: Tensor) -> Tensor:
        y, logdet = self.preprocessing(x)
        return self.latent.log_prob(y) + logdet

    def sample_with_log_prob(self, n: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        y, log_rho = self.latent.sample_with_log_prob(n, generator)
        x, logdet = self.preprocessing.inverse(y)
        return x, log_rho - logdet
