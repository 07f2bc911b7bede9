"""The high-dimensional mixture experiment: target separation, R-hat, flows of Table 6, configuration."""
import math

import pytest
import torch
from scipy.stats import norm

from ebmflow.config import ConfigError, resolve_config
from ebmflow.experiments import high_dim
from ebmflow.flows import DiagonalGaussian


@pytest.mark.parametrize("dim", high_dim.DIMS)
def test_mean_scaling_meets_the_requested_misassignment_bound(dim):
    magnitude = high_dim.coordinate_magnitude(dim, 1e-10)
    target = high_dim.four_mode_mixture(dim, magnitude)
    gaps = torch.cdist(target.means, target.means)
    closest = gaps[gaps > 0].min().item()
    assert closest == pytest.approx(magnitude * math.sqrt(2 * dim), rel=1e-5)
    assert 2 * norm.sf(closest / 2) == pytest.approx(1e-10, rel=1e-3)
    assert target.max_coordinate_variance() == pytest.approx(1 + magnitude**2, rel=1e-5)


def test_means_follow_the_papers_sign_pattern():
    means = high_dim.four_mode_mixture(8, 1.0).means
    assert torch.equal(means[0], torch.ones(8)) and torch.equal(means[3], -torch.ones(8))
    assert torch.equal(means[1], torch.tensor([-1.0] * 4 + [1.0] * 4)) and torch.equal(means[2], -means[1])
    with pytest.raises(ValueError, match="even dimension"):
        high_dim.four_mode_mixture(7, 1.0)


def test_measured_misassignment_matches_the_bound_where_it_is_measurable():
    # the paper's literal a = 0.5919 in d = 16: about 10% misassigned, which 40 000 samples resolve
    target = high_dim.four_mode_mixture(16, high_dim.PAPER_A)
    wrong = high_dim._measured_misassignment(target, 40_000, torch.Generator().manual_seed(0))
    assert wrong / 40_000 == pytest.approx(high_dim._misassignment_bound(target), rel=0.1)


def test_max_rhat_is_one_for_mixed_chains_and_large_for_stuck_ones():
    generator = torch.Generator().manual_seed(0)
    mixed = torch.randn(64, 128, 4, generator=generator)
    assert high_dim.max_rhat(mixed) < 1.05
    stuck = mixed * 0.01 + torch.randn(1, 128, 4, generator=generator)  # each chain frozen at its start
    assert high_dim.max_rhat(stuck) > 5
    two_modes = mixed + 5 * torch.sign(torch.randn(1, 128, 4, generator=generator))  # no jumps between modes
    assert high_dim.max_rhat(two_modes) > 1.3
    assert high_dim.max_rhat(torch.randn(512, 128, 2, generator=generator)) < 1.05  # thinned to 64 draws
    with pytest.raises(ValueError, match="at least 4 draws"):
        high_dim.max_rhat(mixed[:3])
    assert high_dim.max_rhat(mixed.clone().index_fill_(0, torch.tensor([5]), math.nan)) == math.inf


def test_table6_reads_the_sizes_back_from_the_flows():
    table = high_dim.table6()
    for dim, (hidden, blocks) in high_dim.FLOW_SIZES.items():
        assert table.loc[dim, "Size of hidden layers"] == hidden
        assert table.loc[dim, "# RealNVP blocks"] == blocks


def test_config_rejects_rhat_chains_too_short_for_rhat():
    with pytest.raises(ConfigError, match="rhat_sweeps"):
        resolve_config(high_dim.HighDimConfig, high_dim.PROFILES, "smoke", rhat_sweeps=1)


def test_config_rejects_an_unknown_pretraining_objective():
    with pytest.raises(ConfigError, match="pretrain_objective"):
        resolve_config(high_dim.HighDimConfig, high_dim.PROFILES, "smoke", pretrain_objective="forward")


@pytest.mark.slow
def test_data_pretraining_covers_every_mode_where_reverse_kl_collapses_to_one():
    from ebmflow.training import MethodSpec, pretrain_reverse_kl

    dim = 16
    target = high_dim.four_mode_mixture(dim, high_dim.coordinate_magnitude(dim, 1e-10))
    base = DiagonalGaussian(dim, math.sqrt(target.max_coordinate_variance()))
    generator = torch.Generator().manual_seed(0)
    data = target.sample(4096, generator)
    spec = MethodSpec("coopflow", 1e-3, n_steps=1, pretrain_steps=300, pretrain_lr=1e-2)
    occupancy = {}
    for objective in ("data", "reverse_kl"):
        flow = high_dim.make_flow(dim, base)
        if objective == "data":
            high_dim.pretrain_on_data(flow, data, spec, generator)
        else:
            pretrain_reverse_kl(flow, target.log_prob, n_steps=300, lr=1e-2, batch_size=256, generator=generator)
        with torch.no_grad():
            samples = flow.sample_with_log_prob(2048, generator)[0]
        occupancy[objective] = target.assign_mode(samples).bincount(minlength=4) / 2048
    assert occupancy["data"].min() > 0.1
    assert occupancy["reverse_kl"].max() > 0.9
