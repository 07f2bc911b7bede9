"""The high-dimensional chapter: mode separation, the mixing diagnostics behind Table 2, divergences recorded and
shown, the sizes of Table 6, the configuration, R-hat measurements that repeat when a run is resumed."""
import dataclasses
import math

import pytest
import torch

from ebmflow.book.config import ConfigError, resolve_config
from ebmflow.experiments import high_dim
from ebmflow.metrics import mixing_diagnostics, thin
from ebmflow.methods import METHODS
from ebmflow.models import DiagonalGaussian
from ebmflow.targets import coordinate_magnitude, four_mode_mixture
from ebmflow.training import DivergenceRule


def smoke(**overrides):
    return resolve_config(high_dim.Config, high_dim.PROFILES, "smoke", **overrides)


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def test_misassignment_bound_matches_the_measured_rate_for_the_papers_constant():
    # a = 0.5919 in d = 16: about 9% of samples are nearer another mean, which 40 000 samples resolve to ±3%
    target = four_mode_mixture(16, high_dim.PAPER_A)
    measured = target.misassignment(40_000, gen())
    assert 0.05 < measured < 0.15
    assert measured == pytest.approx(target.misassignment_bound(), rel=0.15)
    assert measured <= target.misassignment_bound() * 1.05  # a union bound (up to sampling noise)


@pytest.mark.parametrize("dim", high_dim.DIMS)
def test_our_scaling_meets_the_papers_separation_in_every_dimension(dim):
    target = four_mode_mixture(dim, coordinate_magnitude(dim, 1e-10))
    assert target.misassignment_bound() == pytest.approx(1e-10, rel=0.01)
    assert target.misassignment(20_000, gen()) == 0
    closest = torch.cdist(target.means, target.means).topk(2, largest=False).values[:, 1].min()
    assert float(closest) == pytest.approx(12.93, abs=0.01)  # the same gap in every dimension


def test_separation_table_compares_both_scalings():
    table = high_dim.separation(smoke())
    assert list(table.index) == [(d, s) for d in high_dim.DIMS for s in ("paper", "ours")]
    paper, ours = table.xs("paper", level="scaling"), table.xs("ours", level="scaling")
    assert (paper["measured"] > 1e-4).all() and (ours["measured"] == 0).all()
    assert paper["measured"].is_monotonic_decreasing  # the literal constant separates better as d grows


def test_rhat_is_near_one_for_independent_draws_and_large_for_chains_stuck_in_different_modes():
    target = four_mode_mixture(16, coordinate_magnitude(16, 1e-10))
    labels = torch.arange(128) % 4
    mixed = target.sample(64 * 128, gen()).view(64, 128, 16)  # independent exact draws: every chain mixes
    stuck = target.means[labels] + torch.randn(64, 128, 16, generator=gen(1))  # each chain in its own mode
    good, bad = mixing_diagnostics(mixed, target.assign_mode), mixing_diagnostics(stuck, target.assign_mode)
    assert good["rhat"] < 1.05 and bad["rhat"] > 1.3  # even though each chain mixes perfectly within its mode
    assert good["switches"] > 30 and bad["switches"] == 0
    assert good["moved"] > 1 and bad["moved"] == pytest.approx(math.sqrt(2), rel=0.05)
    frozen = mixing_diagnostics(stuck[:1] + 1e-3 * torch.randn(64, 128, 16, generator=gen(2)), target.assign_mode)
    assert frozen["moved"] < 0.01 and frozen["rhat"] > 10  # chains that hardly move (CoopFlow's)
    nan = stuck.clone()
    nan[5, 3, 0] = math.nan
    assert mixing_diagnostics(nan, target.assign_mode)["rhat"] == math.inf


def test_thinning_keeps_evenly_spaced_draws_and_the_last_one():
    trajectory = torch.arange(10.0)[:, None, None].expand(10, 2, 1)
    assert thin(trajectory, 4)[:, 0, 0].tolist() == [3.0, 5.0, 7.0, 9.0]
    assert thin(trajectory, 64).shape == trajectory.shape


def test_table6_sizes_are_read_from_the_flows_the_methods_build():
    config = smoke()
    table = high_dim.table6(config)
    for dim, (hidden, blocks) in high_dim.PAPER_TABLE6.items():
        assert table.loc[dim, "size of hidden layers"] == hidden == table.loc[dim, "paper: size"]
        assert table.loc[dim, "# RealNVP blocks"] == blocks
        for name in ("flowmc", "ntebm", "coopflow"):
            method = high_dim.methods(config, dim)[name]
            flow = method.make_flow(DiagonalGaussian(dim), generator=gen())
            assert flow.sizes["hidden"] == hidden and flow.sizes["n_couplings"] == 2 * blocks
            assert flow.n_parameters() == table.loc[dim, "parameters"]


def test_methods_follow_the_registry_and_the_config_knobs():
    config = smoke(coopflow_freeze_fraction=0.25, pretrain_batch=32, coopflow_max_drift=0.1)
    built = high_dim.methods(config, 16)
    assert list(built) == list(METHODS)
    assert built["coopflow"].freeze_iterations == round(0.25 * config.iterations)  # no hidden iterations // 25
    assert built["coopflow"].max_drift == 0.1 and high_dim.methods(smoke(), 16)["coopflow"].max_drift is None
    assert built["ntebm"].pretrain_batch == built["coopflow"].pretrain_batch == 32
    assert built["ula"].init == "rho"  # Table 7's "gaussian" start
    table = high_dim.table7(config)
    assert list(table.index) == [(METHODS[m].label, source) for m in METHODS for source in ("paper", "ours")]
    assert table.loc[("flowMC-EBM", "paper"), "# MCMC steps"] == "16 stacked"
    assert table.loc[("ULA-EBM", "paper"), "# MCMC steps"] == "512"


def test_config_rejects_rhat_chains_too_short_and_bad_method_knobs():
    with pytest.raises(ConfigError, match="rhat_length"):
        smoke(rhat_length=0.01)
    with pytest.raises(ConfigError, match="n_particles"):
        smoke(n_particles=1)


def test_a_divergence_is_recorded_shown_and_counted_as_worst(monkeypatch):
    monkeypatch.setattr(high_dim, "DIVERGENCE", DivergenceRule(max_energy_gap=1e3, box=0.5))  # every chain leaves
    config = smoke()
    run = high_dim.train_run(config, "ula", 16)  # never raises
    assert run.divergence is not None and run.divergence.iteration == 1
    assert "box" in run.divergence.cause and run.history.iterations == 1
    runs = {(m, d): run for m in METHODS for d in high_dim.DIMS}
    values = high_dim.numbers(runs, high_dim.separation(config))
    assert math.isnan(values[high_dim.table2_key("ula", 16)])
    assert values[high_dim.table2_key("ula", 16, "diverged_at")] == 1
    assert (high_dim.table2(runs).loc["ULA-EBM", ("Dim 16", "ours")]) == "diverged (it. 1)"
    assert "box" in high_dim.diagnostics_table(runs).loc[("ULA-EBM", 16), "stopped"]


@pytest.mark.parametrize("flowmc, baselines, holds", [
    (1.05, (1.5, 20.0, 7.0), True),
    (1.05, (math.nan, math.nan, 7.0), True),  # a diverged baseline counts as worst
    (math.nan, (1.5, 20.0, 7.0), False),  # a diverged flowMC-EBM never mixes
    (1.2, (1.5, 20.0, 7.0), False),  # lowest, but above 1.1
    (1.05, (1.04, 20.0, 7.0), False),  # a baseline mixes better
])
def test_table2_claims_need_flowmc_at_most_1_1_and_below_every_baseline(flowmc, baselines, holds):
    claim = high_dim.ITEMS[0].claims[0]
    glued = {high_dim.table2_key(m, 16): v for m, v in zip(METHODS, (flowmc, *baselines))}
    assert claim.check(glued) is holds


def test_rhat_measurements_repeat_exactly_when_a_run_is_resumed(tmp_path, monkeypatch):
    config = smoke(rhat_evals=4)
    straight = high_dim.train_run(config, "ntebm", 16).history
    monkeypatch.setenv("EBMFLOW_CHECKPOINT_DIR", str(tmp_path))
    first = high_dim.train_run(dataclasses.replace(config, stop_after=5), "ntebm", 16).history
    assert not first.completed and first.iterations == 5
    resumed = high_dim.train_run(config, "ntebm", 16).history
    assert resumed.completed and resumed.evaluations == straight.evaluations
    assert resumed.steps == straight.steps
    assert len(set(straight.evaluations["rhat"])) == len(straight.evaluations["rhat"])  # fresh draws each time
