"""NT-EBM, CoopFlow, flowMC subsampling, reverse-KL pre-training and the by-name entry point."""
import math

import pytest
import torch

from ebmflow.energy import ToyEnergy
from ebmflow.flows import DiagonalGaussian, RealNVP
from ebmflow.samplers import FlowMCKernel
from ebmflow.training import (METHODS, CoopFlowNegatives, FlowMCNegatives, MethodSpec, NTEBMNegatives,
                              chain_starts, fit_ebm, latent_log_density, make_sampler, pretrain_reverse_kl)

SPECS = {
    "ula": MethodSpec("ula", lr=1e-2, n_steps=5, step_size=1e-2),
    "ntebm": MethodSpec("ntebm", lr=1e-2, n_steps=5, step_size=1e-2, pretrain_steps=5),
    "coopflow": MethodSpec("coopflow", lr=1e-3, n_steps=5, step_size=5e-4, pretrain_steps=5, freeze_iterations=1),
    "flowmc": MethodSpec("flowmc", lr=1e-3, schedule="GLLL", step_size=1e-2, n_particles=8, keep=2),
}


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def standard_normal(x):
    return -0.5 * (x**2).sum(-1)


@pytest.mark.parametrize("dim", [2, 5])
@pytest.mark.parametrize("name", METHODS)
def test_every_method_trains_in_any_dimension(name, dim):
    base = DiagonalGaussian(dim)
    energy = ToyEnergy(dim)
    sampler, flow = make_sampler(SPECS[name], base, gen(), pretrain_target=standard_normal)
    assert (flow is None) == (name == "ula")
    history = fit_ebm(torch.randn(64, dim, generator=gen(1)) + 1.0, energy, base, sampler, epochs=2,
                      batch_size=16, n_persistent=32, lr=SPECS[name].lr, generator=gen(2))
    assert len(history.steps["loss"]) == 8
    assert history.final_chains.shape == (32, dim) and torch.isfinite(history.final_chains).all()


def test_unknown_method_and_missing_pretrain_target_are_explained():
    with pytest.raises(ValueError, match="unknown method 'nce'; accepted: ula, ntebm, coopflow, flowmc"):
        MethodSpec("nce", lr=1e-2, n_steps=1)
    with pytest.raises(ValueError, match="needs a pretrain_target"):
        make_sampler(SPECS["ntebm"], DiagonalGaussian(2), gen())
    with pytest.raises(ValueError, match="flowmc needs a schedule"):
        MethodSpec("flowmc", lr=1e-3)


def test_latent_target_is_the_pull_back_through_the_flow():
    flow = RealNVP(DiagonalGaussian(2))
    with torch.no_grad():  # a non-trivial flow
        for p in flow.parameters():
            p.add_(0.3 * torch.randn(p.shape, generator=gen(3)))
    z = torch.randn(100, 2, generator=gen(4))
    x, logdet = flow.from_latent(z)
    expected = standard_normal(x) + logdet
    torch.testing.assert_close(latent_log_density(flow, standard_normal)(z), expected)
    # with pi = lambda itself the pull-back is rho (up to its normaliser)
    pulled = latent_log_density(flow, flow.log_prob)(z).detach()
    torch.testing.assert_close(pulled, flow.base.log_prob(z), atol=1e-4, rtol=0)


def test_ntebm_mala_samples_the_target_and_adapts_to_75_percent():
    flow = RealNVP(DiagonalGaussian(2))
    sampler = NTEBMNegatives(flow, n_steps=400, step_size=1e-3, record=True)
    mean = torch.tensor([1.0, -2.0])
    target = lambda x: -0.5 * ((x - mean) ** 2).sum(-1) / 0.25  # noqa: E731  N(mean, 0.5^2 I)
    x, stats = sampler.sample(torch.zeros(2000, 2), target, gen(5))
    torch.testing.assert_close(x.mean(0), mean, atol=0.05, rtol=0)
    torch.testing.assert_close(x.std(0), torch.full((2,), 0.5), atol=0.05, rtol=0)
    assert stats["step_size"] > 1e-2  # grew from 1e-3 towards the 75% step
    assert 0.6 < stats["local_acceptance"] < 0.85
    assert sampler.trajectory.shape == (401, 2000, 2)


def test_coopflow_restarts_from_the_flow_without_noise_and_freezes_the_flow():
    flow = RealNVP(DiagonalGaussian(2))
    sampler = CoopFlowNegatives(flow, step_size=0.1, n_steps=3, lr=1e-2, freeze_iterations=1)
    far = torch.full((500, 2), 50.0)
    x1, _ = sampler.sample(far, standard_normal, gen(6))
    x2, _ = sampler.sample(far, standard_normal, gen(6))
    torch.testing.assert_close(x1, x2)  # no Langevin noise: the flow draws fix the negatives
    start = flow.sample_with_log_prob(500, gen(6))[0].detach()
    torch.testing.assert_close(x1, start * 0.9**3)  # three noiseless steps on N(0, I): x <- (1 - 0.1) x
    assert chain_starts(sampler, far, gen(7)).abs().max() < 10  # starts ignore the persistent states
    before = [p.clone() for p in flow.parameters()]
    assert sampler.update(x1) == {}
    assert all(torch.equal(a, b) for a, b in zip(before, flow.parameters()))
    assert "flow_nll" in sampler.update(x1)
    assert any(not torch.equal(a, b) for a, b in zip(before, flow.parameters()))


def test_flowmc_keeps_k_evenly_spaced_states_per_chain():
    flow = RealNVP(DiagonalGaussian(2))
    kernel = FlowMCKernel("GLLLGLLL", step_size=0.05, n_particles=4)
    sampler = FlowMCNegatives(flow, kernel, lr=1e-3, keep=2)
    x = torch.randn(10, 2, generator=gen(8))
    negatives, _ = sampler.sample(x, standard_normal, gen(9))
    assert negatives.shape == (10, 2)
    # the same chains re-run with record=True: states after step 4 and step 8 of the first 5 chains
    from ebmflow.samplers import init_state
    _, info = kernel.step(init_state(x[:5], standard_normal), standard_normal, flow, gen(9), record=True)
    torch.testing.assert_close(negatives, torch.cat([info.trajectory[3], info.trajectory[7]]))
    with pytest.raises(ValueError, match="must be a multiple of keep"):
        sampler.sample(x[:7], standard_normal, gen(9))
    with pytest.raises(ValueError, match="divide the schedule length"):
        FlowMCNegatives(flow, FlowMCKernel("GLL", 0.05), lr=1e-3, keep=2)


def test_reverse_kl_pretraining_moves_the_flow_onto_the_target():
    flow = RealNVP(DiagonalGaussian(2))
    mean = torch.tensor([1.0, -1.0])
    target = lambda x: -0.5 * ((x - mean) ** 2).sum(-1) / 0.25  # noqa: E731
    losses = pretrain_reverse_kl(flow, target, n_steps=300, lr=1e-2, batch_size=256, generator=gen(10))
    with torch.no_grad():
        x = flow.sample_with_log_prob(4000, gen(11))[0]
    torch.testing.assert_close(x.mean(0), mean, atol=0.1, rtol=0)
    # KL(lambda || N(mean, 0.25 I)) >= 0, so the loss is bounded below by -log Z = -log(2 pi 0.25)
    assert losses[-1] < losses[0] and losses[-1] > -math.log(2 * math.pi * 0.25) - 0.1

