"""Chapter 07 (beyond the paper): the two mode-weight estimators, flowMC-EBM's stabiliser, the chapter's keys."""
import math

import pytest
import torch

from ebmflow.book.claims import render
from ebmflow.book.config import ConfigError, resolve_config
from ebmflow.checks import InputError
from ebmflow.estimators import annealed_mode_weights, snis_mode_weights
from ebmflow.experiments import mode_weights as chapter
from ebmflow.experiments.common import train
from ebmflow.methods import METHODS, FlowMCEBM
from ebmflow.models import DiagonalGaussian, ToyEnergy
from ebmflow.seeding import make_generator
from ebmflow.targets import coordinate_magnitude, four_mode_mixture
from ebmflow.training import Divergence

WEIGHTS = (0.1, 0.2, 0.3, 0.4)


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


class EqualMixture:
    """A proposal: the target's means with equal weights and wider components (``log_prob``, sampling)."""

    def __init__(self, means, std):
        self.means, self.std = means, std

    def log_prob(self, x):
        sq = torch.cdist(x, self.means) ** 2
        log_n = -0.5 * sq / self.std**2 - x.shape[1] * math.log(self.std * math.sqrt(2 * math.pi))
        return torch.logsumexp(log_n, 1) - math.log(len(self.means))

    def sample_with_log_prob(self, n, generator):
        labels = torch.randint(len(self.means), (n,), generator=generator)
        x = self.means[labels] + self.std * torch.randn(n, self.means.shape[1], generator=generator)
        return x, self.log_prob(x)


@pytest.fixture(scope="module")
def mixture():
    return four_mode_mixture(8, coordinate_magnitude(8, 1e-4), WEIGHTS)


def exact_ebm(mixture):
    return lambda x: mixture.log_prob(x) + 7.0  # -E = log p* up to a constant: an EBM with exact weights


@pytest.mark.parametrize("n_steps", [0, 4])
def test_per_mode_annealing_recovers_the_weights_of_an_exact_mixture(mixture, n_steps):
    data = mixture.sample(4000, gen(1))
    estimate = annealed_mode_weights(exact_ebm(mixture), data, mixture.assign_mode, 4, 2000, gen(2), n_steps=n_steps)
    truth = torch.tensor(WEIGHTS)
    assert ((estimate.weights - truth).abs() <= 4 * estimate.stderr).all(), (estimate.weights, estimate.stderr)
    assert (estimate.stderr < 0.02).all() and (estimate.stderr > 0).all()
    assert abs(float(estimate.weights.sum()) - 1) < 1e-5


def test_flow_importance_sampling_recovers_the_weights_with_a_good_proposal(mixture):
    proposal = EqualMixture(mixture.means, 1.2)
    estimate = snis_mode_weights(exact_ebm(mixture), proposal, mixture.assign_mode, 4, 8000, gen(3))
    truth = torch.tensor(WEIGHTS)
    assert ((estimate.weights - truth).abs() <= 4 * estimate.stderr).all(), (estimate.weights, estimate.stderr)
    assert (estimate.stderr < 0.02).all()
    assert estimate.ess > 1000


def test_effective_sample_size_falls_when_the_proposal_is_bad(mixture):
    good = snis_mode_weights(exact_ebm(mixture), EqualMixture(mixture.means, 1.2), mixture.assign_mode, 4, 4000,
                             gen(4))
    broad = DiagonalGaussian(8, 3 * mixture.max_coordinate_variance() ** 0.5)
    bad = snis_mode_weights(exact_ebm(mixture), broad, mixture.assign_mode, 4, 4000, gen(4))
    assert bad.ess < good.ess / 20
    assert bad.stderr.max() > 3 * good.stderr.max()  # and the standard error says so


def test_a_mode_the_proposal_misses_is_invisible_to_importance_sampling_but_not_to_annealing(mixture):
    """The two estimators fail differently: a proposal without mode 4 gives that mode (weight 0.4) no mass."""
    proposal = EqualMixture(mixture.means[:3], 1.2)
    snis = snis_mode_weights(exact_ebm(mixture), proposal, mixture.assign_mode, 4, 4000, gen(5))
    ais = annealed_mode_weights(exact_ebm(mixture), mixture.sample(4000, gen(6)), mixture.assign_mode, 4, 1000,
                                gen(7), n_steps=0)
    assert snis.weights[3] < 0.1 and abs(float(ais.weights[3]) - 0.4) < 0.05  # truth 0.4


def test_estimators_refuse_bad_input_and_report_nan_without_mass(mixture):
    with pytest.raises(InputError, match="n_samples"):
        snis_mode_weights(exact_ebm(mixture), EqualMixture(mixture.means, 1.0), mixture.assign_mode, 4, 1, gen())
    with pytest.raises(InputError, match="mode 0 has 0 data points"):
        annealed_mode_weights(exact_ebm(mixture), mixture.means[1:], mixture.assign_mode, 4, 100, gen())
    nothing = snis_mode_weights(lambda x: torch.full((len(x),), -math.inf), EqualMixture(mixture.means, 1.0),
                                mixture.assign_mode, 4, 100, gen())
    assert torch.isnan(nothing.weights).all() and math.isnan(nothing.ess)


def _train_flowmc(ebm_average, evaluate=None):
    data = torch.randn(256, 2, generator=gen(8)) + 1.0
    method = FlowMCEBM(lr=1e-2, schedule="GLL", step_size=0.05, n_particles=4, ebm_average=ebm_average)
    run = train(method, data, energy=ToyEnergy(2, generator=make_generator(0, stream="energy")),
                base=DiagonalGaussian(2), seed=0, epochs=2, batch_size=32, n_persistent=64, evaluate=evaluate,
                eval_every=1 if evaluate else 0)
    return run


def test_the_parameter_average_is_the_default_and_an_exact_moving_average():
    assert FlowMCEBM(lr=1e-3, schedule="GL", step_size=0.1).ebm_average == 0.95
    snapshots = []

    def record(state):
        snapshots.append([p.detach().clone() for p in state.energy.parameters()])
        return {}

    run = _train_flowmc(0.5, record)
    expected = snapshots[1]  # the first update copies E_theta after the first step (snapshot 0: initialisation)
    for snapshot in snapshots[2:]:
        expected = [0.5 * a + 0.5 * b for a, b in zip(expected, snapshot)]
    averaged = list(run.method.model_energy.module.parameters())
    for a, b in zip(averaged, expected):
        torch.testing.assert_close(a, b)
    raw = list(run.energy.parameters())
    assert any(not torch.equal(a, b) for a, b in zip(averaged, raw))
    x = torch.randn(10, 2, generator=gen(9))
    assert not torch.allclose(run.log_density(x), run.method.log_target(x))  # the run reports the average


def test_the_average_changes_what_is_reported_not_what_is_trained():
    with_average, without = _train_flowmc(0.95), _train_flowmc(0.0)
    for a, b in zip(with_average.energy.parameters(), without.energy.parameters()):
        assert torch.equal(a, b)
    assert with_average.history.steps == without.history.steps
    assert without.method.model_energy is without.energy
    x = torch.randn(10, 2, generator=gen(10))
    torch.testing.assert_close(without.log_density(x), without.method.log_target(x))
    assert with_average.method.averaged is not None and without.method.averaged is None
    with pytest.raises(InputError, match="ebm_average"):
        FlowMCEBM(lr=1e-3, schedule="GL", step_size=0.1, ebm_average=1.0)


def test_config_checks_dimensions_and_weights():
    with pytest.raises(ConfigError, match="dims"):
        resolve_config(chapter.Config, chapter.PROFILES, "smoke", dims=(8, 7))
    with pytest.raises(ConfigError, match="weights"):
        resolve_config(chapter.Config, chapter.PROFILES, "smoke", weights=(0.5, 0.5))
    config = resolve_config(chapter.Config, chapter.PROFILES, "cpu")
    assert config.dims == chapter.DIMS and config.weights == WEIGHTS


def _glued(maxerr):
    glued = {chapter.key("maxerr", m, d): maxerr(m, d) for m in METHODS for d in chapter.DIMS}
    best = {chapter.key("maxerr", "best_baseline", d): min((maxerr(m, d) for m in chapter.BASELINES
                                                            if not math.isnan(maxerr(m, d))), default=math.nan)
            for d in chapter.DIMS}  # as numbers() glues it: the claim's text shows the best baseline
    return {**glued, **best}


def test_the_claim_counts_a_diverged_baseline_as_worst_and_needs_every_dimension():
    claim = chapter.ITEMS[0].claims[0]
    assert claim.check(_glued(lambda m, d: 0.02 if m == "flowmc" else math.nan))
    assert not claim.check(_glued(lambda m, d: 0.06 if m == "flowmc" else 0.3))  # above 0.05
    assert not claim.check(_glued(lambda m, d: 0.04 if m == "flowmc" or d != 64 else 0.03))  # beaten in d = 64
    assert not claim.check(_glued(lambda m, d: math.nan))  # flowMC-EBM diverged
    assert "0.020" in render(claim.ours, _glued(lambda m, d: 0.02))


@pytest.mark.slow
def test_every_method_and_dimension_has_its_keys_and_a_divergence_gives_nan():
    config = resolve_config(chapter.Config, chapter.PROFILES, "smoke", stop_after=2)
    runs = chapter.train_all(config)
    runs["ula", 16].history.divergence = Divergence(2, "energy gap", 2e4, "test")
    estimates = chapter.estimate_all(runs, config)
    numbers = chapter.numbers(runs, estimates, config)
    for method in METHODS:
        for dim in chapter.DIMS:
            value = numbers[chapter.key("maxerr", method, dim)]
            assert isinstance(value, float) and math.isnan(value) == ((method, dim) == ("ula", 16))
            for quantity in ("estimator_gap", "ess", "ais_ess", "stderr", "swing", "diverged_at"):
                assert chapter.key(quantity, method, dim) in numbers
    assert numbers[chapter.key("diverged_at", "ula", 16)] == 2
    assert chapter.key("maxerr", chapter.UNSTABILISED, 8) in numbers
    table = chapter.weight_table(runs, estimates, config)
    assert table.loc["ULA-EBM", "d = 16"] == "diverged (it. 2)"
    render(chapter.ITEMS[0].claims[0].ours, numbers)
