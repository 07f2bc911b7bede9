"""Every kernel leaves a known target invariant."""
import pytest
import torch

from ebmflow.flows import DiagonalGaussian
from ebmflow.metrics import zone_weights_of_samples
from ebmflow.samplers import FlowMCKernel, imh_step, init_state, isir_step, mala_step, ula_step
from ebmflow.targets import two_mode_mixture

MEAN = torch.tensor([1.0, -0.5])
STD = torch.tensor([1.0, 0.5])


def gaussian_log_density(x):
    return -0.5 * (((x - MEAN) / STD) ** 2).sum(-1)


def run_chains(step, n_steps, n_chains=4000, seed=0):
    generator = torch.Generator().manual_seed(seed)
    state = init_state(torch.zeros(n_chains, 2), gaussian_log_density)
    for _ in range(n_steps):
        state = step(state, generator)
    return state.position


@pytest.mark.parametrize("kernel", ["mala", "ula"])
def test_langevin_kernels_sample_a_gaussian(kernel):
    # MALA is exact; ULA with step 0.005 has an O(step) bias (< 0.01 on these variances).
    if kernel == "mala":
        step = lambda s, g: mala_step(s, gaussian_log_density, 0.1, g)[0]  # noqa: E731
        n_steps = 300
    else:
        step = lambda s, g: ula_step(s, gaussian_log_density, 0.005, g)[0]  # noqa: E731
        n_steps = 2000
    x = run_chains(step, n_steps)
    # 4000 independent chains: standard error of the mean <= 1/sqrt(4000) = 0.016; tolerance about 4 SE.
    torch.testing.assert_close(x.mean(0), MEAN, atol=0.06, rtol=0)
    torch.testing.assert_close(x.std(0), STD, atol=0.05, rtol=0)


# kernel, number of steps: plain IMH accepts about 4% of these broad proposals, so it needs more steps.
GLOBAL_KERNELS = {
    "imh": (lambda s, t, q, g: imh_step(s, t, q, g)[0], 400),
    "isir": (lambda s, t, q, g: isir_step(s, t, q, 16, g)[0], 60),
    "flowmc": (lambda s, t, q, g: FlowMCKernel("LLGLL", step_size=0.01, n_particles=8).step(s, t, q, g)[0], 60),
}


@pytest.mark.parametrize("name", sorted(GLOBAL_KERNELS))
def test_global_kernels_recover_mode_weights_from_one_mode(name):
    """All chains start in the 1/3 mode; a fixed proposal covering both modes must restore 1/3 : 2/3."""
    target = two_mode_mixture()
    proposal = DiagonalGaussian(dim=2, std=2.0)
    generator = torch.Generator().manual_seed(1)
    n_chains = 4000
    state = init_state(target.means[0].repeat(n_chains, 1), target.log_prob)
    kernel, n_steps = GLOBAL_KERNELS[name]
    for _ in range(n_steps):
        state = kernel(state, target.log_prob, proposal, generator)
    weights = zone_weights_of_samples(state.position, target.assign_mode, 2)
    # binomial standard error sqrt(2/9 / 4000) = 0.0075; 0.03 is 4 standard errors.
    torch.testing.assert_close(weights, target.weights, atol=0.03, rtol=0)


def test_mala_rejects_nan_proposals():
    def log_density(x):
        return torch.where(x[:, 0] > 0.5, torch.full_like(x[:, 0], float("nan")), -0.5 * (x**2).sum(-1))

    generator = torch.Generator().manual_seed(0)
    state = init_state(torch.zeros(500, 2), log_density)
    for _ in range(20):
        state, info = mala_step(state, log_density, 0.5, generator)
        assert torch.isfinite(info.acceptance_probability).all()
    assert (state.position[:, 0] <= 0.5).all() and torch.isfinite(state.log_density).all()


def test_same_seed_same_chains():
    step = lambda s, g: mala_step(s, gaussian_log_density, 0.1, g)[0]  # noqa: E731
    assert torch.equal(run_chains(step, 20, 100, seed=3), run_chains(step, 20, 100, seed=3))
    assert not torch.equal(run_chains(step, 20, 100, seed=3), run_chains(step, 20, 100, seed=4))


def test_isir_keeps_the_state_when_no_candidate_has_a_finite_weight():
    def log_density(x):
        return x.sum(-1) * float("nan")

    proposal = DiagonalGaussian(dim=2, std=1.0)
    x = torch.randn(50, 2)
    state = init_state(x, lambda y: -0.5 * (y**2).sum(-1))
    state.log_density = torch.full((50,), -float("inf"))
    new_state, info = isir_step(state, log_density, proposal, 8, torch.Generator().manual_seed(0))
    assert torch.equal(new_state.position, x) and not info.is_accepted.any()
