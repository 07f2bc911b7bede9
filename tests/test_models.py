"""The flow starts at the identity and is a density; the energy starts at zero."""
import torch

from ebmflow.energy import ToyEnergy
from ebmflow.flows import DiagonalGaussian, RealNVP
from ebmflow.metrics import Grid2D


def test_energy_starts_at_zero_with_the_papers_size():
    energy = ToyEnergy(dim=2)
    assert sum(p.numel() for p in energy.parameters()) == 10593  # "about 10k" (ebm-anatomy ToyNet)
    assert torch.equal(energy(torch.randn(100, 2) * 5), torch.zeros(100))


def test_flow_starts_at_identity():
    flow = RealNVP(DiagonalGaussian(dim=2, std=1.5))
    x = torch.randn(200, 2) * 3
    z, logdet = flow.to_latent(x)
    torch.testing.assert_close(z, x)
    torch.testing.assert_close(logdet, torch.zeros(200))
    torch.testing.assert_close(flow.log_prob(x), flow.base.log_prob(x))


def perturbed_flow(seed=0):
    torch.manual_seed(seed)
    flow = RealNVP(DiagonalGaussian(dim=2, std=1.0), n_couplings=4, hidden=16)
    with torch.no_grad():
        for p in flow.parameters():
            p.add_(0.15 * torch.randn_like(p))
    return flow


def test_trained_looking_flow_integrates_to_one_on_a_grid():
    flow = perturbed_flow()
    grid = Grid2D(-12, 12, 600)
    with torch.no_grad():
        mass = flow.log_prob(grid.points).exp().sum() * grid.cell_area
    assert abs(float(mass) - 1) < 0.01


def test_flow_is_invertible_and_log_probs_agree():
    flow = perturbed_flow(1)
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        x, log_q = flow.sample_with_log_prob(500, generator)
        z, _ = flow.to_latent(x)
        x_back, _ = flow.from_latent(z)
        torch.testing.assert_close(x_back, x, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(flow.log_prob(x), log_q, atol=1e-4, rtol=1e-4)


def test_coupling_can_expand_and_contract():
    flow = perturbed_flow(1)
    with torch.no_grad():
        _, logdet = flow.to_latent(torch.randn(2000, 2) * 3)
    assert logdet.max() > 0.05 and logdet.min() < -0.05  # nflows 0.14's own coupling only contracts
