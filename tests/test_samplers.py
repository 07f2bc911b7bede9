"""Every kernel of ``ebmflow.samplers.KERNELS``: invariance, NaN -> rejection, seeds, image-shaped chains.

Each registered builder has one or more cases in ``CASES`` (a builder with options, such as MALA with a target
acceptance or flowMC with an IMH global move, gets one case per option). A builder registered without a case
fails ``test_every_registered_kernel_has_a_case``, and every parametrised test below runs on every case.
"""
from __future__ import annotations

import math

import pytest
import torch

from ebmflow.metrics import zone_weights_of_samples
from ebmflow.models import ConvEnergy, DiagonalGaussian
from ebmflow.samplers import KERNELS, ChainState, flowmc, imh, isir, mala, run_chains, ula
from ebmflow.seeding import make_generator
from ebmflow.targets import GaussianMixture, two_mode_mixture

MEAN = torch.tensor([1.0, -0.5])
STD = torch.tensor([1.0, 0.5])


def gaussian_log_density(x):
    """log N(MEAN, diag(STD^2)) up to a constant (flattened inputs of any event shape work too)."""
    return -0.5 * (((x - MEAN) / STD) ** 2).sum(-1)


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


# name -> (registry key, builder(log_density, proposal) -> Kernel, is it a global kernel, steps for invariance).
# The proposal of the global kernels is a broad Gaussian N(0, 2^2 I) that covers the targets.
CASES = {
    "mala": ("mala", lambda log_p, q: mala(log_p, 0.2), False, 100),
    "mala-adapted": ("mala", lambda log_p, q: mala(log_p, 0.02, target_acceptance=0.75), False, 150),
    "ula": ("ula", lambda log_p, q: ula(log_p, 0.005), False, 600),
    "imh": ("imh", lambda log_p, q: imh(log_p, q), True, 100),
    "isir": ("isir", lambda log_p, q: isir(log_p, q, 8), True, 30),
    "flowmc": ("flowmc", lambda log_p, q: flowmc("LLGLL", mala(log_p, 0.05), isir(log_p, q, 8)), True, 30),
    "flowmc-imh": ("flowmc", lambda log_p, q: flowmc("LLGLL", mala(log_p, 0.05), imh(log_p, q)), True, 60),
}
GLOBAL = [name for name, case in CASES.items() if case[2]]


def build(name, log_density, proposal=None):
    _, builder, _, _ = CASES[name]
    return builder(log_density, proposal if proposal is not None else DiagonalGaussian(2, std=2.0))


@pytest.mark.parametrize("key", KERNELS)
def test_every_registered_kernel_has_a_case(key):
    assert any(case[0] == key for case in CASES.values()), f"kernel {key!r} is registered but has no test case"
    assert all(case[0] in KERNELS for case in CASES.values()), "a test case names a kernel that is not registered"


@pytest.mark.parametrize("name", CASES)
def test_kernel_samples_a_known_gaussian_from_a_point_start(name):
    """4000 independent chains, all started at the origin (off the target), must end distributed as
    N(MEAN, diag(STD^2)): this checks both that the kernel moves and that it leaves the target invariant."""
    n_steps = CASES[name][3]
    state, _, _ = run_chains(build(name, gaussian_log_density), torch.zeros(4000, 2), n_steps, gen(1))
    x = state.position
    # Standard error of a mean over 4000 independent chains: STD / sqrt(4000) <= 0.016; of a standard deviation
    # about STD / sqrt(2 * 4000) <= 0.011. The tolerances are about 4 standard errors, plus for ULA its O(step)
    # bias: its stationary std is STD / sqrt(1 - step / (2 STD^2)), 1% above STD at step 0.005.
    assert torch.isfinite(x).all()
    torch.testing.assert_close(x.mean(0), MEAN, atol=0.065, rtol=0)
    torch.testing.assert_close(x.std(0), STD, atol=0.05, rtol=0.01 if name == "ula" else 0)


class BalancedMixture:
    """A proposal with the target's two modes at equal weights 1/2 : 1/2 and 1.5 times their spread."""

    def __init__(self, target):
        self.mixture = GaussianMixture(target.means, 1.5 * target.stds, torch.tensor([0.5, 0.5]))

    def log_prob(self, x):
        return self.mixture.log_prob(x)

    def sample_with_log_prob(self, n, generator):
        x = self.mixture.sample(n, generator)
        return x, self.log_prob(x)


@pytest.mark.parametrize("name", GLOBAL)
def test_global_kernel_restores_the_mode_weights_from_chains_in_one_mode(name):
    """All chains start in the 1/3 mode of the two-mode mixture and the proposal puts 1/2 on each mode: the
    accept/reject (or resampling) step alone must restore the target's 1/3 : 2/3."""
    target = two_mode_mixture()
    start = target.means[0].repeat(4000, 1)
    state, _, _ = run_chains(build(name, target.log_prob, BalancedMixture(target)), start, 40, gen(2))
    weights = zone_weights_of_samples(state.position, target.assign_mode, 2)
    # Binomial standard error sqrt((1/3)(2/3) / 4000) = 0.0075; 0.03 is 4 standard errors.
    torch.testing.assert_close(weights, target.weights, atol=0.03, rtol=0)


def nan_right_half(x):
    """A log-density that is NaN (value and gradient) for x_0 > 0.5, a standard normal elsewhere (value and
    gradient; a ``torch.where`` would put NaN into the gradient of every row)."""
    return -0.5 * (x**2).sum(-1) + 0 * torch.sqrt(0.5 - x[:, 0])


@pytest.mark.parametrize("name", CASES)
def test_a_nan_log_density_proposal_is_a_rejection(name):
    """Accept/reject kernels never move to a NaN proposal (a NaN ratio is a rejection). ULA has no accept/reject
    step, so the rejection rule does not apply to it: a chain that steps where log pi is NaN turns NaN (the
    training loop's divergence rule catches it) but leaves every other chain exactly as it would have been."""
    start = torch.zeros(500, 2)
    if name == "ula":
        kernel, clean = build(name, nan_right_half), build(name, lambda x: -0.5 * (x**2).sum(-1))
        state, _, _ = run_chains(kernel, start, 40, gen(3))
        reference, trajectory, _ = run_chains(clean, start, 40, gen(3), record=True)
        visited = (trajectory[..., 0] > 0.5).any(0)
        assert visited.any() and not visited.all()  # the test exercises both kinds of chain
        assert torch.equal(state.position[~visited], reference.position[~visited])
        finite = torch.isfinite(state.position).all(1) & torch.isfinite(state.log_density)
        assert not finite[visited].any()
        return
    kernel = build(name, nan_right_half, DiagonalGaussian(2, std=1.0))
    state = kernel.init(start)
    moved, generator = torch.zeros(500, dtype=torch.bool), gen(4)
    for _ in range(30):
        before = state.position
        state, info = kernel.step(state, generator)
        moved |= (state.position != before).any(1)
        probabilities = getattr(info, "acceptance_probability", None)
        if probabilities is not None:
            assert torch.isfinite(probabilities).all()
    assert moved.any(), "the chains never moved: the test would pass for a kernel that rejects everything"
    assert (state.position[:, 0] <= 0.5).all(), "a chain moved where the log-density is NaN"
    assert torch.isfinite(state.log_density).all() and torch.isfinite(state.grad).all()


def test_isir_keeps_the_state_when_no_candidate_has_a_finite_weight():
    kernel = isir(lambda y: y.sum(-1) * math.nan, DiagonalGaussian(2), 8)
    x = torch.randn(50, 2, generator=gen(5))
    state = ChainState(x, torch.full((50,), -math.inf), torch.zeros(50, 2))
    new_state, info = kernel.step(state, gen(6))
    assert torch.equal(new_state.position, x) and not info.is_accepted.any()


@pytest.mark.parametrize("name", CASES)
def test_same_seed_same_chains_different_seed_different_chains(name):
    kernel = build(name, gaussian_log_density)
    start = torch.randn(64, 2, generator=gen(7))

    def chains(seed):
        return run_chains(kernel, start, 5, make_generator(seed, stream="chains"), record=True)[1]

    assert torch.equal(chains(3), chains(3))
    assert not torch.equal(chains(3), chains(4))


@pytest.mark.parametrize("name", CASES)
def test_image_shaped_chains(name):
    """Chains of flattened images (n, C*H*W) on a convolutional EBM tilted by N(0, I)."""
    shape, n = (1, 8, 8), 6
    energy = ConvEnergy(shape, width=4, generator=gen(8))
    with torch.no_grad():  # a non-trivial energy (its last layer starts at zero)
        energy.head[-1].weight.normal_(generator=gen(9))
    base = DiagonalGaussian(math.prod(shape))

    def log_density(x):
        return -energy(x) + base.log_prob(x)

    start = 0.1 * torch.randn(n, math.prod(shape), generator=gen(10))
    state, trajectory, _ = run_chains(build(name, log_density, base), start, 3, gen(11), record=True)
    assert state.position.shape == (n, 64) and state.grad.shape == (n, 64) and state.log_density.shape == (n,)
    assert trajectory.shape == (3, n, 64)
    assert torch.isfinite(state.position).all() and torch.isfinite(state.log_density).all()
    assert not torch.equal(state.position, start)
    torch.testing.assert_close(state.log_density, log_density(state.position).detach())


@pytest.mark.parametrize("initial", [1e-3, 5.0])
def test_adapted_mala_step_converges_towards_the_target_acceptance(initial):
    """From a step far too small (acceptance ~1) or far too large (acceptance ~0), the adapted step moves
    towards the step whose acceptance is the target, and the acceptance then settles near the target."""
    kernel = mala(gaussian_log_density, initial, target_acceptance=0.75)
    start = MEAN + STD * torch.randn(1000, 2, generator=gen(12))  # stationary start: only the step adapts
    state, _, infos = run_chains(kernel, start, 250, gen(13))
    assert (state.step_size > 10 * initial) if initial < 1 else (state.step_size < initial / 10)
    late = torch.tensor([info.acceptance_rate for info in infos[-50:]])
    # the rule multiplies the step by 1.05 when the batch acceptance is off by more than 0.03, so it oscillates
    # within a few percent of the target; 1000 chains give a batch acceptance standard error of about 0.014.
    assert abs(float(late.mean()) - 0.75) < 0.05


def test_flowmc_records_every_substep():
    kernel = flowmc("LLGL", mala(gaussian_log_density, 0.1), isir(gaussian_log_density, DiagonalGaussian(2), 4),
                    record=True)
    state, _, (info,) = run_chains(kernel, torch.zeros(10, 2), 1, gen(14))
    assert info.trajectory.shape == (4, 10, 2)
    assert torch.equal(info.trajectory[-1], state.position)
    assert 0 <= info.local_acceptance <= 1 and 0 <= info.global_acceptance <= 1


@pytest.mark.parametrize("builder, message", [
    (lambda: mala(gaussian_log_density, 0.0), "MALA step_size must be a finite number > 0"),
    (lambda: mala(gaussian_log_density, 0.1, target_acceptance=1.5), "target_acceptance must be in"),
    (lambda: ula(gaussian_log_density, 0.1, bounds=(1.0, -1.0)), "bounds must be"),
    (lambda: isir(gaussian_log_density, DiagonalGaussian(2), 1), "n_particles must be an integer >= 2"),
    (lambda: flowmc("LLX", None, None), "non-empty string of 'L'"),
    (lambda: flowmc("LLL", None, None), "no global step"),
])
def test_bad_kernel_arguments_are_explained(builder, message):
    with pytest.raises(ValueError, match=message):
        builder()


@pytest.mark.parametrize("global_move", ["isir", "imh"])
def test_flowmc_carries_the_adapted_mala_step_across_global_moves(global_move):
    local = mala(gaussian_log_density, 0.1, target_acceptance=0.75)
    proposal = DiagonalGaussian(2, std=2.0)
    global_ = isir(gaussian_log_density, proposal, 4) if global_move == "isir" else imh(gaussian_log_density, proposal)
    state, _, _ = run_chains(flowmc("LGL", local, global_), torch.zeros(100, 2), 3, gen(15))
    assert state.step_size is not None and state.step_size != 0.1


def test_run_chains_with_no_step_and_a_negative_number_of_steps():
    kernel = mala(gaussian_log_density, 0.1)
    state, trajectory, infos = run_chains(kernel, torch.zeros(3, 2), 0, gen(16), record=True)
    assert trajectory.shape == (0, 3, 2) and infos == [] and torch.equal(state.position, torch.zeros(3, 2))
    try:
        run_chains(kernel, torch.zeros(3, 2), -2, gen(16))
    except ValueError as error:
        assert "n_steps" in str(error)
    else:
        raise AssertionError("a negative n_steps was accepted")

