"""Flows (every entry of ``ebmflow.models.FLOWS``), energies, bases and flow fitting.

Each registered flow constructor has one or more cases in ``CASES``; a constructor registered without a case
fails ``test_every_registered_flow_has_a_case``, and every parametrised test runs on every case (zuko's shape).
"""
from __future__ import annotations

import io
import math

import pytest
import torch

from ebmflow.checks import InputError
from ebmflow.metrics import Grid2D
from ebmflow.models import (FLOWS, ConvEnergy, DiagonalGaussian, ImageRealNVP, LogitGaussian, RealNVP, ToyEnergy,
                            maximum_likelihood_step, pretrain_maximum_likelihood, pretrain_reverse_kl)
from ebmflow.seeding import make_generator


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


# name -> (registry key, constructor(generator) -> Flow, scale of the random perturbation that makes it
# "trained-looking"). The image flow's convolutional nets amplify more: 0.05 keeps its logit-space values within
# |y| < 16, where float32 pixels (which saturate at sigmoid(y) = 1) still tell them apart.
CASES = {
    "RealNVP-2d": ("RealNVP", lambda g: RealNVP(DiagonalGaussian(2, std=1.5), n_couplings=4, hidden=16, generator=g),
                   0.15),
    "RealNVP-5d": ("RealNVP", lambda g: RealNVP(DiagonalGaussian(5), n_couplings=3, hidden=8, n_hidden_layers=2,
                                                generator=g), 0.15),
    "ImageRealNVP": ("ImageRealNVP", lambda g: ImageRealNVP(LogitGaussian((3, 4, 4)), n_couplings=4, hidden=8,
                                                            n_blocks=1, generator=g), 0.05),
}


def make(name, seed=0):
    return CASES[name][1](make_generator(seed, stream="flow"))


def perturbed(name, seed=0):
    return perturb(make(name, seed), scale=CASES[name][2])


@torch.no_grad()
def perturb(module, scale=0.15, seed=1, only_zero_layers=False):
    """Move the parameters off their initialisation (a "trained-looking" flow), from an explicit generator."""
    generator = gen(seed)
    layers = [m for m in module.modules() if getattr(m, "zero_init", False)] if only_zero_layers else [module]
    for layer in layers:
        for p in layer.parameters():
            p.add_(scale * torch.randn(p.shape, generator=generator))
    return module


def points(flow, n=256, seed=2):
    """Points where the flow is evaluated: draws of its base rho (pixels in (-1, 1) for images)."""
    with torch.no_grad():
        return flow.base.sample_with_log_prob(n, gen(seed))[0]


@pytest.mark.parametrize("key", FLOWS)
def test_every_registered_flow_has_a_case(key):
    assert any(case[0] == key for case in CASES.values()), f"flow {key!r} is registered but has no test case"
    assert all(case[0] in FLOWS for case in CASES.values()), "a test case names a flow that is not registered"


@pytest.mark.parametrize("name", CASES)
def test_flow_is_its_base_at_initialisation(name):
    flow = make(name)
    x = points(flow)
    with torch.no_grad():
        torch.testing.assert_close(flow.log_prob(x), flow.base.log_prob(x), atol=1e-4, rtol=1e-6)
        if flow.preprocessing is None:  # no fixed layer before the couplings: T is the identity itself
            z, logdet = flow.to_latent(x)
            torch.testing.assert_close(z, x)
            torch.testing.assert_close(logdet, torch.zeros(len(x)))


@pytest.mark.parametrize("name", CASES)
def test_log_prob_agrees_with_sample_with_log_prob(name):
    flow = perturbed(name)
    with torch.no_grad():
        x, log_q = flow.sample_with_log_prob(300, gen(3))
        assert x.shape == (300, flow.dim) and log_q.shape == (300,)
        torch.testing.assert_close(flow.log_prob(x), log_q, atol=1e-3, rtol=1e-4)


@pytest.mark.parametrize("name", CASES)
def test_to_latent_and_from_latent_invert_each_other_with_opposite_log_dets(name):
    flow = perturbed(name)
    with torch.no_grad():
        x = points(flow)
        z, logdet_to = flow.to_latent(x)
        x_back, logdet_from = flow.from_latent(z)
        torch.testing.assert_close(x_back, x, atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(logdet_from, -logdet_to, atol=1e-3, rtol=1e-4)
        assert logdet_to.abs().max() > 1e-2  # the perturbed flow is not volume-preserving: the test has teeth
        z2 = flow.latent.sample_with_log_prob(100, gen(4))[0]
        x2, _ = flow.from_latent(z2)
        torch.testing.assert_close(flow.to_latent(x2)[0], z2, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("name", CASES)
def test_every_parameter_gets_a_gradient_once_the_zero_last_layers_move(name):
    flow = perturb(make(name), scale=CASES[name][2], only_zero_layers=True)
    (-flow.log_prob(points(flow)).mean()).backward()
    for parameter_name, parameter in flow.named_parameters():
        assert parameter.grad is not None and parameter.grad.abs().max() > 0, parameter_name


@pytest.mark.parametrize("name", CASES)
def test_state_dict_round_trip(name):
    flow = perturbed(name)
    buffer = io.BytesIO()
    torch.save(flow.state_dict(), buffer)
    buffer.seek(0)
    other = make(name, seed=1)
    other.load_state_dict(torch.load(buffer, weights_only=True))
    x = points(flow)
    with torch.no_grad():
        assert torch.equal(other.log_prob(x), flow.log_prob(x))
    assert other.sizes == flow.sizes and other.n_parameters() == flow.n_parameters()


@pytest.mark.parametrize("name", CASES)
def test_same_generator_same_initialisation_and_no_global_random_state(name):
    torch.manual_seed(123)
    expected_global_draw = torch.rand(3)
    torch.manual_seed(123)
    a, b, c = make(name, seed=0), make(name, seed=0), make(name, seed=1)
    assert torch.equal(torch.rand(3), expected_global_draw), "building a flow drew from the global RNG"
    for (key, p), q, r in zip(a.state_dict().items(), b.state_dict().values(), c.state_dict().values()):
        assert torch.equal(p, q), key
    assert any(not torch.equal(p, r) for p, r in zip(a.parameters(), c.parameters()))


def test_realnvp_density_integrates_to_one_after_a_random_perturbation():
    flow = perturb(RealNVP(DiagonalGaussian(2), n_couplings=4, hidden=16, generator=gen(5)), seed=6)
    grid = Grid2D(-12, 12, 600)
    with torch.no_grad():
        assert flow.to_latent(grid.points)[1].std() > 0.05  # the perturbed flow is far from the identity
        mass = flow.log_prob(grid.points).exp().sum() * grid.cell_area
    assert abs(float(mass) - 1) < 0.01  # Riemann sum on a 0.04-wide grid; the mass beyond |x| = 12 is negligible


def test_coupling_can_expand_and_contract():
    flow = perturbed("RealNVP-2d")
    with torch.no_grad():
        _, logdet = flow.to_latent(torch.randn(2000, 2, generator=gen(7)) * 3)
    assert logdet.max() > 0.05 and logdet.min() < -0.05  # nflows 0.14's own coupling only contracts


def test_flow_sizes_are_its_constructor_arguments():
    assert make("RealNVP-5d").sizes == {"n_couplings": 3, "hidden": 8, "n_hidden_layers": 2}
    assert make("ImageRealNVP").sizes == {"n_couplings": 4, "hidden": 8, "n_blocks": 1}


@pytest.mark.parametrize("build, message", [
    (lambda: RealNVP(DiagonalGaussian(1), generator=gen()), "dimension >= 2"),
    (lambda: RealNVP(DiagonalGaussian(2), n_couplings=0, generator=gen()), "n_couplings must be an integer >= 1"),
    (lambda: ImageRealNVP(LogitGaussian((1, 3, 3)), generator=gen()), "image sides must be even"),
    (lambda: RealNVP(DiagonalGaussian(2), generator=0), "generator must be a torch.Generator"),
])
def test_bad_flow_arguments_are_explained(build, message):
    with pytest.raises(InputError, match=message):
        build()


# --- energies ---------------------------------------------------------------------------------------------

def test_toy_energy_starts_at_zero_with_the_papers_size():
    energy = ToyEnergy(2, generator=gen())
    assert sum(p.numel() for p in energy.parameters()) == 10593  # "about 10k" (ebm-anatomy ToyNet)
    assert torch.equal(energy(torch.randn(100, 2, generator=gen(1)) * 5), torch.zeros(100))


def test_conv_energy_starts_at_zero_and_reads_flat_or_shaped_images():
    energy = ConvEnergy((3, 8, 8), width=4, generator=gen())
    images = torch.rand(5, 3, 8, 8, generator=gen(1)) * 2 - 1
    assert torch.equal(energy(images), torch.zeros(5))
    perturb(energy, seed=2)
    torch.testing.assert_close(energy(images), energy(images.flatten(1)))
    with pytest.raises(InputError, match="power-of-two side"):
        ConvEnergy((3, 6, 6), generator=gen())


@pytest.mark.parametrize("build", [lambda g: ToyEnergy(3, generator=g),
                                   lambda g: ConvEnergy((1, 4, 4), width=4, generator=g)])
def test_energies_are_initialised_from_their_generator(build):
    torch.manual_seed(123)
    expected_global_draw = torch.rand(3)
    torch.manual_seed(123)
    a, b, c = build(gen(0)), build(gen(0)), build(gen(1))
    assert torch.equal(torch.rand(3), expected_global_draw), "building an energy drew from the global RNG"
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    assert any(not torch.equal(p, r) for p, r in zip(a.parameters(), c.parameters()))


# --- bases ------------------------------------------------------------------------------------------------

def test_diagonal_gaussian_is_normalised_and_its_draws_have_its_std():
    base = DiagonalGaussian(2, std=0.7)
    grid = Grid2D(-6, 6, 300)
    mass = base.log_prob(grid.points).exp().sum() * grid.cell_area
    assert abs(float(mass) - 1) < 1e-3
    x, log_rho = base.sample_with_log_prob(20000, gen())
    torch.testing.assert_close(log_rho, base.log_prob(x))
    assert abs(float(x.std()) - 0.7) < 0.01  # 40000 coordinates: standard error 0.0025


def test_logit_gaussian_log_prob_agrees_with_its_samples_and_the_preprocessing_inverts():
    base = LogitGaussian((1, 2, 2), alpha=0.05)
    x, log_rho = base.sample_with_log_prob(500, gen())
    # the logit layer maps (-1 - 2a/(1-2a), 1 + 2a/(1-2a)) onto R ([-1, 1] onto [logit a, logit(1-a)])
    assert x.abs().max() < 1 + 0.1 / 0.9 and x.abs().max() > 1
    torch.testing.assert_close(base.log_prob(x), log_rho, atol=1e-4, rtol=1e-5)
    y, logdet = base.preprocessing(x)
    x_back, logdet_back = base.preprocessing.inverse(y)
    torch.testing.assert_close(x_back, x, atol=1e-5, rtol=0)
    torch.testing.assert_close(logdet_back, -logdet, atol=1e-4, rtol=1e-5)
    # 1-D check of the change of variables: the density of one pixel integrates to 1 over its support
    pixel, edge = LogitGaussian((1, 1, 1)), 1 + 0.1 / 0.9
    t = torch.linspace(-edge, edge, 200001, dtype=torch.float64)[1:-1, None].float()
    assert abs(float(pixel.log_prob(t).double().exp().sum()) * 2 * edge / 200000 - 1) < 1e-3


# --- fitting ----------------------------------------------------------------------------------------------

def test_maximum_likelihood_step_refuses_non_finite_samples_and_leaves_the_flow_untouched():
    flow = make("RealNVP-2d")
    optimizer = torch.optim.Adam(flow.parameters(), lr=1e-2)
    before = [p.clone() for p in flow.parameters()]
    samples = torch.randn(8, 2, generator=gen())
    samples[5, 1] = math.nan
    with pytest.raises(InputError, match="row 5"):
        maximum_likelihood_step(flow, optimizer, samples)
    assert all(torch.equal(a, b) for a, b in zip(before, flow.parameters()))


def test_maximum_likelihood_pretraining_moves_the_flow_onto_the_data():
    flow = make("RealNVP-2d")
    data = torch.tensor([2.0, -1.0]) + 0.5 * torch.randn(4096, 2, generator=gen(1))
    losses = pretrain_maximum_likelihood(flow, data, n_steps=150, lr=1e-2, batch_size=256, generator=gen(2))
    with torch.no_grad():
        x = flow.sample(4000, gen(3))
    torch.testing.assert_close(x.mean(0), torch.tensor([2.0, -1.0]), atol=0.15, rtol=0)
    assert losses[-1] < losses[0]


def test_reverse_kl_pretraining_moves_the_flow_onto_the_target():
    flow = make("RealNVP-2d")
    mean = torch.tensor([1.0, -1.0])

    def target(x):  # N(mean, 0.5^2 I), unnormalised
        return -0.5 * ((x - mean) ** 2).sum(-1) / 0.25

    losses = pretrain_reverse_kl(flow, target, n_steps=200, lr=1e-2, batch_size=256, generator=gen(4))
    with torch.no_grad():
        x = flow.sample(4000, gen(5))
    torch.testing.assert_close(x.mean(0), mean, atol=0.1, rtol=0)
    # KL(lambda || N(mean, 0.25 I)) >= 0, so the loss is bounded below by -log Z = -log(2 pi 0.25)
    assert losses[-1] < losses[0] and losses[-1] > -math.log(2 * math.pi * 0.25) - 0.1
