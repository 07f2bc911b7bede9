"""RealNVP normalizing flows on nflows, with a configurable Gaussian base rho (paper §1.4, Eq. 6).

Both ``DiagonalGaussian`` (the base rho) and ``RealNVP`` (the flow lambda^rho_T) implement the proposal
protocol used by the global samplers: ``log_prob(x)`` and ``sample_with_log_prob(n, generator)``.
"""
from __future__ import annotations

import math
import warnings

import torch
from nflows.transforms import AffineCouplingTransform, CompositeTransform
from torch import Tensor, nn

__all__ = ["DiagonalGaussian", "RealNVP", "ExpandingAffineCoupling", "sample_flow", "maximum_likelihood_step"]

# nflows' LULinear.inverse warns with a message that contains the absolute install path.
warnings.filterwarnings("ignore", message=r".*torch\.triangular_solve is deprecated.*")


class DiagonalGaussian(nn.Module):
    """rho = N(0, std^2 I_d): the flow's base and the tilt of the EBM."""

    def __init__(self, dim: int, std: float = 1.0) -> None:
        super().__init__()
        if std <= 0:
            raise ValueError(f"base std must be positive, got {std}")
        self.dim = dim
        self.register_buffer("std", torch.tensor(float(std)))

    def log_prob(self, x: Tensor) -> Tensor:
        var = self.std**2
        return -0.5 * (x.pow(2).sum(-1) / var + self.dim * torch.log(2 * math.pi * var))

    def sample_with_log_prob(self, n: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        z = self.std * torch.randn(n, self.dim, generator=generator)
        return z, self.log_prob(z)


class ExpandingAffineCoupling(AffineCouplingTransform):
    """Affine coupling whose scale can expand as well as contract.

    nflows 0.14 uses ``sigmoid(s + 2) + 1e-3`` (always < 1.001 in the data-to-noise direction). Here
    scale = exp(bound · tanh(s / bound)): unconstrained near 0, bounded for numerical safety, and equal
    to 1 when the coupling net outputs 0 (identity at initialisation).
    """

    log_scale_bound: float = 3.0

    def _scale_and_shift(self, transform_params: Tensor) -> tuple[Tensor, Tensor]:
        unconstrained = transform_params[:, self.num_transform_features :, ...]
        shift = transform_params[:, : self.num_transform_features, ...]
        bound = self.log_scale_bound
        return torch.exp(bound * torch.tanh(unconstrained / bound)), shift


class CouplingMLP(nn.Module):
    """Coupling network: ``n_hidden_layers`` hidden layers of ``hidden`` ReLU units; last layer at zero."""

    def __init__(self, n_in: int, n_out: int, hidden: int, n_hidden_layers: int) -> None:
        super().__init__()
        sizes = [n_in] + [hidden] * n_hidden_layers
        layers: list[nn.Module] = []
        for a, b in zip(sizes[:-1], sizes[1:]):
            layers += [nn.Linear(a, b), nn.ReLU()]
        last = nn.Linear(sizes[-1], n_out)
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)
        self.net = nn.Sequential(*layers, last)

    def forward(self, x: Tensor, context: Tensor | None = None) -> Tensor:
        return self.net(x)


class RealNVP(nn.Module):
    """RealNVP (Dinh et al. 2017) lambda^rho_T(x) = rho(T^{-1}(x)) |J_{T^{-1}}(x)|, starting at T = Id.

    ``n_couplings`` affine couplings with alternating half masks (paper: 4 layers of 3×16 MLPs in 2-D).
    """

    def __init__(self, base: DiagonalGaussian, n_couplings: int = 4, hidden: int = 16,
                 n_hidden_layers: int = 3) -> None:
        super().__init__()
        if n_couplings <= 0 or hidden <= 0 or n_hidden_layers <= 0:
            raise ValueError("n_couplings, hidden and n_hidden_layers must be positive")
        self.base = base
        dim = base.dim
        couplings = []
        for i in range(n_couplings):
            mask = (torch.arange(dim) + i) % 2  # alternate which half is transformed
            if dim == 1:
                raise ValueError("coupling flows need dim >= 2")
            couplings.append(ExpandingAffineCoupling(
                mask, lambda n_in, n_out: CouplingMLP(n_in, n_out, hidden, n_hidden_layers)))
        self.transform = CompositeTransform(couplings)  # data -> latent (nflows convention)

    @property
    def dim(self) -> int:
        return self.base.dim

    def to_latent(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """z = T^{-1}(x) and log|det dT^{-1}/dx|."""
        return self.transform(x)

    def from_latent(self, z: Tensor) -> tuple[Tensor, Tensor]:
        """x = T(z) and log|det dT/dz|."""
        return self.transform.inverse(z)

    def log_prob(self, x: Tensor) -> Tensor:
        z, logdet = self.to_latent(x)
        return self.base.log_prob(z) + logdet

    def sample_with_log_prob(self, n: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        z, log_rho = self.base.sample_with_log_prob(n, generator)
        x, logdet = self.from_latent(z)
        return x, log_rho - logdet


@torch.no_grad()
def sample_flow(flow: nn.Module, n: int, generator: torch.Generator) -> Tensor:
    """n samples of any flow with ``sample_with_log_prob``, carrying no graph (chain starts)."""
    return flow.sample_with_log_prob(n, generator)[0]


def maximum_likelihood_step(flow: nn.Module, optimizer: torch.optim.Optimizer, samples: Tensor) -> float:
    """One forward-KL step of ``flow`` on ``samples`` (paper Algorithm 1, step 5); returns the NLL."""
    optimizer.zero_grad()
    nll = -flow.log_prob(samples).mean()
    nll.backward()
    optimizer.step()
    return nll.item()
