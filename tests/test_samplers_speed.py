"""The fast paths of the samplers and the flow (issue 16) give the chains of the plain implementations, or leave
the target invariant where they draw their random numbers in another order.

Plain implementations (the textbook formulas, one full evaluation of log pi and its gradient per new state) are
written out here and run with the same random numbers as the library's kernels.
"""
from __future__ import annotations

import importlib
import math

import pytest
import torch
from nflows.transforms import CompositeTransform
from torch import nn

from ebmflow.metrics import zone_weights_of_samples
from ebmflow.models import DiagonalGaussian, RealNVP
from ebmflow.samplers import flowmc, imh, init_state, isir, mala, run_chains, ula
from ebmflow.targets import two_mode_mixture

from test_samplers import BalancedMixture  # the proposal at equal weights, 1.5 times the spread

MEAN = torch.tensor([1.0, -0.5])
STD = torch.tensor([1.0, 0.5])


def gaussian(x):
    return -0.5 * (((x - MEAN) / STD) ** 2).sum(-1)


def gen(seed):
    return torch.Generator().manual_seed(seed)


def perturbed_flow(dim, seed=0, hidden=16, layers=2):
    flow = RealNVP(DiagonalGaussian(dim, std=1.5), 4, hidden, layers, generator=gen(seed))
    with torch.no_grad():
        for p in flow.parameters():
            p.add_(0.2 * torch.randn(p.shape, generator=gen(seed + 1)))
    return flow


# --- plain implementations -----------------------------------------------------------------------------------
def plain_mala_step(state, log_density, eta, generator):
    def log_q(to, frm, grad_frm):
        return -((to - frm - eta * grad_frm) ** 2).sum(-1) / (4 * eta)

    noise = torch.randn(state.position.shape, generator=generator)
    proposal = init_state(state.position + eta * state.grad + math.sqrt(2 * eta) * noise, log_density)
    log_ratio = (proposal.log_density - state.log_density + log_q(state.position, proposal.position, proposal.grad)
                 - log_q(proposal.position, state.position, state.grad))
    accepted = torch.log(torch.rand(len(log_ratio), generator=generator)) < torch.nan_to_num(log_ratio, nan=-math.inf)
    return _select(accepted, proposal, state), accepted


def plain_imh_step(state, log_density, proposal, generator):
    with torch.no_grad():
        candidate, log_q_candidate = proposal.sample_with_log_prob(len(state.position), generator)
        log_q_current = proposal.log_prob(state.position)
    candidate = init_state(candidate, log_density)
    log_ratio = (candidate.log_density - log_q_candidate) - (state.log_density - log_q_current)
    accepted = torch.log(torch.rand(len(log_ratio), generator=generator)) < log_ratio
    return _select(accepted, candidate, state), accepted


def plain_isir_step(state, log_density, proposal, n_particles, generator):
    n = len(state.position)
    with torch.no_grad():
        fresh, log_q_fresh = proposal.sample_with_log_prob(n * (n_particles - 1), generator)
        log_pi_fresh = log_density(fresh)
        log_q_current = proposal.log_prob(state.position)
    log_w = torch.cat([(state.log_density - log_q_current)[:, None],
                       (log_pi_fresh - log_q_fresh).view(n, n_particles - 1)], dim=1)
    log_w = torch.nan_to_num(log_w, nan=-math.inf)
    log_w[~torch.isfinite(log_w).any(dim=1), 0] = 0.0
    weights = torch.softmax(log_w, dim=1)
    u = torch.rand(n, generator=generator)
    choice = torch.tensor([int((torch.cumsum(w, 0) <= u_i * w.sum()).sum()) for w, u_i in zip(weights, u)])
    candidates = torch.cat([state.position[:, None], fresh.view(n, n_particles - 1, -1)], dim=1)
    return init_state(candidates[torch.arange(n), choice], log_density), choice > 0


def plain_ula_step(state, log_density, eta, generator):
    drift = eta * state.grad + math.sqrt(2 * eta) * torch.randn(state.position.shape, generator=generator)
    return init_state(state.position + drift, log_density)


def _select(accepted, new, old):
    rows = accepted[:, None]
    return type(old)(torch.where(rows, new.position, old.position),
                     torch.where(accepted, new.log_density, old.log_density), torch.where(rows, new.grad, old.grad))


def run_plain(step, state, n_steps, generator):
    positions = []
    for _ in range(n_steps):
        state = step(state, generator)
        state = state[0] if isinstance(state, tuple) else state
        positions.append(state.position)
    return torch.stack(positions)


def library_positions(kernel, start, n_steps, generator):
    state, positions = kernel.init(start), []
    for _ in range(n_steps):
        state, _ = kernel.step(state, generator)
        positions.append(state.position)
    return torch.stack(positions), state


# --- same chains as the plain implementations ----------------------------------------------------------------
def test_mala_gives_the_chains_of_the_textbook_formula():
    target = two_mode_mixture()
    start = target.sample(400, gen(0))
    expected = run_plain(lambda s, g: plain_mala_step(s, target.log_prob, 0.05, g), init_state(start, target.log_prob),
                         30, gen(1))
    actual, state = library_positions(mala(target.log_prob, 0.05), start, 30, gen(1))
    assert torch.equal(actual, expected)
    torch.testing.assert_close(state.log_density, target.log_prob(state.position))


def test_ula_gives_bit_identical_chains():
    start = torch.randn(300, 2, generator=gen(2))
    expected = run_plain(lambda s, g: plain_ula_step(s, gaussian, 0.01, g), init_state(start, gaussian), 20, gen(3))
    actual, _ = library_positions(ula(gaussian, 0.01), start, 20, gen(3))
    assert torch.equal(actual, expected)


@pytest.mark.parametrize("dim", [2, 5])
def test_imh_step_gives_the_chains_of_the_plain_step(dim):
    flow = perturbed_flow(dim)
    start = torch.randn(300, dim, generator=gen(4))
    log_density = lambda x: -0.5 * (x**2).sum(-1) - 0.1 * x[:, 0] ** 4  # noqa: E731
    expected = run_plain(lambda s, g: plain_imh_step(s, log_density, flow, g), init_state(start, log_density), 15,
                         gen(5))
    actual, state = library_positions(imh(log_density, flow), start, 15, gen(5))
    assert torch.equal(actual, expected)
    torch.testing.assert_close(state.grad, init_state(state.position, log_density).grad)


@pytest.mark.parametrize("dim", [2, 5])
def test_isir_gives_the_chains_of_the_plain_step(dim):
    flow = perturbed_flow(dim)
    start = torch.randn(200, dim, generator=gen(6))
    log_density = lambda x: -0.5 * (x**2).sum(-1) - 0.1 * x[:, 0] ** 4  # noqa: E731
    expected = run_plain(lambda s, g: plain_isir_step(s, log_density, flow, 8, g), init_state(start, log_density),
                         10, gen(7))
    actual, state = library_positions(isir(log_density, flow, 8), start, 10, gen(7))
    assert torch.equal(actual, expected)
    reference = init_state(state.position, log_density)
    torch.testing.assert_close(state.log_density, reference.log_density)
    torch.testing.assert_close(state.grad, reference.grad)


def test_proposals_in_blocks_give_the_chains_of_one_batch(monkeypatch):
    """A flow draws only its base's normals: blocks of a multiple of 16 rows draw the same numbers."""
    base = importlib.import_module("ebmflow.samplers.base")
    flow = perturbed_flow(3)
    start = torch.randn(40, 3, generator=gen(30))
    whole, _ = library_positions(isir(gaussian3, flow, 8), start, 4, gen(31))
    monkeypatch.setattr(base, "PROPOSAL_BLOCK", 48)  # 280 candidates per step: blocks of 48 and a rest
    blocks, state = library_positions(isir(gaussian3, flow, 8), start, 4, gen(31))
    torch.testing.assert_close(blocks, whole)
    torch.testing.assert_close(state.log_density, gaussian3(state.position))


def gaussian3(x):
    return -0.5 * (x**2).sum(-1)


# --- the batched IMH run: other random numbers, same kernel --------------------------------------------------

def test_imh_run_restores_the_mode_weights_from_chains_in_one_mode():
    target = two_mode_mixture()
    kernel = imh(target.log_prob, BalancedMixture(target))
    assert kernel.run is not None
    state, _, infos = run_chains(kernel, target.means[0].repeat(4000, 1), 40, gen(8))
    assert len(infos) == 40
    weights = zone_weights_of_samples(state.position, target.assign_mode, 2)
    # binomial standard error sqrt((1/3)(2/3) / 4000) = 0.0075; 0.03 is 4 standard errors
    torch.testing.assert_close(weights, target.weights, atol=0.03, rtol=0)


@pytest.mark.parametrize("schedule", ["GGGG", "LLGGGLL"])
def test_batched_global_steps_sample_a_gaussian_from_a_point_start(schedule):
    proposal = DiagonalGaussian(2, std=2.0)
    kernel = flowmc(schedule, mala(gaussian, 0.1), imh(gaussian, proposal))
    state, _, _ = run_chains(kernel, torch.zeros(4000, 2), 60 // len(schedule) + 10, gen(9))
    # 4000 chains: standard error of the mean <= 0.016, of the std about 0.011; tolerances about 4 of them
    torch.testing.assert_close(state.position.mean(0), MEAN, atol=0.065, rtol=0)
    torch.testing.assert_close(state.position.std(0), STD, atol=0.05, rtol=0)
    torch.testing.assert_close(state.grad, init_state(state.position, gaussian).grad)


def test_imh_run_records_every_step_and_repeats_with_the_seed():
    kernel = imh(gaussian, DiagonalGaussian(2, std=2.0))
    start = torch.randn(50, 2, generator=gen(10))
    state, trajectory, infos = run_chains(kernel, start, 7, gen(11), record=True)
    again, trajectory_again, _ = run_chains(kernel, start, 7, gen(11), record=True)
    assert trajectory.shape == (7, 50, 2) and torch.equal(trajectory[-1], state.position)
    assert torch.equal(trajectory, trajectory_again)
    moved = torch.cat([start[None], trajectory]).diff(dim=0).abs().sum(-1) > 0
    assert torch.equal(moved, torch.stack([info.is_accepted for info in infos]))
    torch.testing.assert_close(state.log_density, gaussian(state.position))


def test_imh_run_one_step_per_batch_gives_the_chains_of_the_steps(monkeypatch):
    """With batches of one step, ``run`` draws its numbers in the order of ``step``: the same chains, which
    checks its sequential accept/reject and its bookkeeping exactly."""
    imh_module = importlib.import_module("ebmflow.samplers.imh")
    flow = perturbed_flow(3)
    start = torch.randn(64, 3, generator=gen(12))
    log_density = lambda x: -0.5 * (x**2).sum(-1) - 0.1 * x[:, 0] ** 4  # noqa: E731
    steps, _ = library_positions(imh(log_density, flow), start, 6, gen(13))
    monkeypatch.setattr(imh_module, "MAX_BATCH_ELEMENTS", 64 * 3)
    state, trajectory, _ = run_chains(imh_module.imh(log_density, flow), start, 6, gen(13), record=True)
    assert torch.equal(trajectory, steps)
    torch.testing.assert_close(state.grad, init_state(state.position, log_density).grad)


# --- lazy gradients and the reused flow density --------------------------------------------------------------
def test_gradients_after_global_moves_are_the_gradients_at_the_positions():
    flow = perturbed_flow(2)
    kernel = flowmc("GLGGL", mala(gaussian, 0.05), isir(gaussian, flow, 4))
    state, _, _ = run_chains(kernel, torch.randn(100, 2, generator=gen(14)), 3, gen(15))
    for global_ in (isir(gaussian, flow, 4), imh(gaussian, flow)):
        state, _ = global_.step(state, gen(16))
        state, _ = global_.step(state, gen(17))
        reference = init_state(state.position, gaussian)
        torch.testing.assert_close(state.log_density, reference.log_density)
        torch.testing.assert_close(state.grad, reference.grad)


class CountingFlow(nn.Module):
    """A flow that counts the evaluations of its density at chain states."""

    def __init__(self, flow):
        super().__init__()
        self.flow, self.calls = flow, 0

    def log_prob(self, x):
        self.calls += 1
        return self.flow.log_prob(x)

    def sample_with_log_prob(self, n, generator):
        return self.flow.sample_with_log_prob(n, generator)


@pytest.mark.parametrize("builder", [lambda q: imh(gaussian, q), lambda q: isir(gaussian, q, 4)])
def test_the_flow_density_of_the_chains_is_reused_only_while_the_flow_is_unchanged(builder):
    proposal = CountingFlow(perturbed_flow(2))
    kernel = builder(proposal)
    state = kernel.init(torch.randn(30, 2, generator=gen(18)))
    state, _ = kernel.step(state, gen(19))
    assert proposal.calls == 1
    state, _ = kernel.step(state, gen(20))
    assert proposal.calls == 1  # reused: the flow did not change
    expected = proposal.flow.log_prob(state.position).detach()
    torch.testing.assert_close(state._proposal[1], expected, rtol=1e-5, atol=1e-5)
    with torch.no_grad():
        next(proposal.parameters()).add_(0.1)  # an optimiser step
    state, _ = kernel.step(state, gen(21))
    assert proposal.calls == 2
    proposal.flow.load_state_dict(perturbed_flow(2, seed=5).state_dict())
    state, _ = kernel.step(state, gen(22))
    assert proposal.calls == 3
    mala_state, _ = mala(gaussian, 0.1).step(state, gen(23))  # positions moved: evaluated again
    kernel.step(mala_state, gen(24))
    assert proposal.calls == 4


# --- the flow's couplings evaluated on halves ----------------------------------------------------------------
@pytest.mark.parametrize("dim", [2, 3, 16])
def test_alternating_couplings_equal_the_plain_composition(dim):
    flow = perturbed_flow(dim, hidden=8)
    plain = CompositeTransform(list(flow.transform._transforms))
    x = torch.randn(40, dim, generator=gen(25))
    for ours, theirs in ((flow.transform, plain), (flow.transform.inverse, plain.inverse)):
        y, logdet = ours(x)
        y_plain, logdet_plain = theirs(x)
        torch.testing.assert_close(y, y_plain, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(logdet, logdet_plain, rtol=1e-5, atol=1e-5)
    grads = torch.autograd.grad(flow.log_prob(x).sum(), list(flow.parameters()))
    z, logdet = plain(x)
    grads_plain = torch.autograd.grad((flow.latent.log_prob(z) + logdet).sum(), list(flow.parameters()))
    for g, g_plain in zip(grads, grads_plain):
        torch.testing.assert_close(g, g_plain, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("dim, layers", [(2, 1), (3, 2), (5, 3)])
def test_fused_couplings_backward_is_the_gradient(dim, layers):
    """RealNVP's couplings run as one autograd node with a written-out backward pass (``_FusedCouplings``):
    its gradients with respect to the inputs and every parameter are checked against finite differences."""
    flows = importlib.import_module("ebmflow.models.flows")
    flow = RealNVP(DiagonalGaussian(dim), 4, 5, layers, generator=gen(26)).double()
    with torch.no_grad():
        for p in flow.parameters():
            p.add_(0.3 * torch.randn(p.shape, generator=gen(27), dtype=torch.double))
    layout, linear = flow.transform._fused_layout()
    params = [t for layer in linear for t in (layer.weight, layer.bias)]
    x = torch.randn(6, dim, generator=gen(28), dtype=torch.double, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x, *ps: flows._FusedCouplings.apply(layout, x, *ps), (x, *params))


def test_fused_couplings_give_the_values_and_gradients_of_the_operator_path():
    flow = perturbed_flow(4)
    x = torch.randn(30, 4, generator=gen(29))
    with torch.no_grad():
        z_plain, logdet_plain = flow.transform(x)  # no graph: operator by operator
    z, logdet = flow.transform(x)
    assert z.grad_fn is not None and "Fused" in type(z.grad_fn).__name__
    assert torch.equal(z.detach(), z_plain) and torch.equal(logdet.detach(), logdet_plain)
    plain = CompositeTransform(list(flow.transform._transforms))
    for direction in ("params", "inputs"):
        x_in = x.clone().requires_grad_(direction == "inputs")
        wrt = [x_in] if direction == "inputs" else list(flow.parameters())
        z, logdet = flow.transform(x_in)
        grads = torch.autograd.grad((z.sin().sum() + logdet.sum()), wrt)
        z, logdet = plain(x_in)
        grads_plain = torch.autograd.grad((z.sin().sum() + logdet.sum()), wrt)
        for g, g_plain in zip(grads, grads_plain):
            torch.testing.assert_close(g, g_plain, rtol=1e-4, atol=1e-5)


def test_kernels_work_the_same_inside_no_grad():
    start = torch.randn(50, 2, generator=gen(32))
    kernel = flowmc("LLGL", mala(gaussian, 0.05), isir(gaussian, DiagonalGaussian(2, std=2.0), 4))
    expected = run_chains(kernel, start, 3, gen(33), record=True)[1]
    with torch.no_grad():
        state, trajectory, _ = run_chains(kernel, start, 3, gen(33), record=True)
        grad = state.grad
    assert torch.equal(trajectory, expected)
    torch.testing.assert_close(grad, init_state(state.position, gaussian).grad)


@pytest.mark.parametrize("dim, layers", [(2, 1), (3, 2)])
def test_fused_gaussian_log_prob_backward_is_the_gradient(dim, layers):
    flows = importlib.import_module("ebmflow.models.flows")
    flow = RealNVP(DiagonalGaussian(dim, std=1.3), 4, 5, layers, generator=gen(34)).double()
    with torch.no_grad():
        for p in flow.parameters():
            p.add_(0.3 * torch.randn(p.shape, generator=gen(35), dtype=torch.double))
    layout, linear = flow.transform._fused_layout()
    params = [t for layer in linear for t in (layer.weight, layer.bias)]
    x = torch.randn(6, dim, generator=gen(36), dtype=torch.double, requires_grad=True)
    var = flow.latent.std**2
    assert torch.autograd.gradcheck(lambda x, *ps: flows._FusedGaussianLogProb.apply(layout, var, x, *ps),
                                    (x, *params))


def test_flow_log_prob_with_a_graph_is_the_log_prob_without():
    flow = perturbed_flow(5)
    x = torch.randn(40, 5, generator=gen(37))
    log_prob = flow.log_prob(x)
    assert "Gaussian" in type(log_prob.grad_fn).__name__
    with torch.no_grad():
        z, logdet = flow.to_latent(x)
        expected = flow.latent.log_prob(z) + logdet
    torch.testing.assert_close(log_prob.detach(), expected)
    grads = torch.autograd.grad(log_prob.sum(), list(flow.parameters()))
    z, logdet = CompositeTransform(list(flow.transform._transforms))(x)
    plain = torch.autograd.grad((flow.latent.log_prob(z) + logdet).sum(), list(flow.parameters()))
    for g, g_plain in zip(grads, plain):
        torch.testing.assert_close(g, g_plain, rtol=1e-4, atol=1e-5)


def test_isir_moves_to_a_candidate_of_infinite_weight():
    """log pi = +inf at a candidate (an EBM gone wild): that candidate is chosen, without an error."""
    def log_density(x):
        return torch.where(x[:, 0] > 1.0, torch.full_like(x[:, 0], math.inf), -0.5 * (x**2).sum(-1))

    kernel = isir(log_density, DiagonalGaussian(2, std=2.0), 16)
    state, info = kernel.step(kernel.init(torch.zeros(300, 2)), gen(38))
    assert (state.position[:, 0] > 1.0).float().mean() > 0.95 and info.is_accepted.float().mean() > 0.95
