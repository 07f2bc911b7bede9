"""Energy networks E_theta (paper §3.1: the Nijkamp et al. 2020a toy parameterisation, ~10k parameters)."""
from __future__ import annotations

from torch import Tensor, nn

__all__ = ["ToyEnergy"]


class ToyEnergy(nn.Module):
    """MLP dim -> 32 -> 64 -> 64 -> 64 -> 1 with LeakyReLU(0.05).

    Same function class as ebm-anatomy's ``ToyNet`` (1x1 convolutions on (B, dim, 1, 1) inputs are
    dense layers); 10 593 parameters for dim = 2. The last layer starts at zero so that E_theta ≡ 0
    at initialisation and the tilted model p^rho_theta equals rho (paper §2.3, Eq. 6).
    """

    def __init__(self, dim: int, width: int = 32, leak: float = 0.05) -> None:
        super().__init__()
        widths = [dim, width, 2 * width, 2 * width, 2 * width]
        layers: list[nn.Module] = []
        for n_in, n_out in zip(widths[:-1], widths[1:]):
            layers += [nn.Linear(n_in, n_out), nn.LeakyReLU(leak)]
        last = nn.Linear(widths[-1], 1)
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)
        self.net = nn.Sequential(*layers, last)

    def forward(self, x: Tensor) -> Tensor:
        """Energies, shape (n,)."""
        return self.net(x).squeeze(-1)
