import pytest
import torch

from ebmflow.config import resolve_config
from ebmflow.energy import ToyEnergy
from ebmflow.experiments import motivating
from ebmflow.flows import DiagonalGaussian
from ebmflow.training import TrainingDivergedError, ULANegatives, fit_ebm


def tiny_config(**overrides):
    return resolve_config(motivating.MotivatingConfig, motivating.PROFILES, "smoke",
                          **{"n_data": 256, "epochs": 1, "n_persistent": 64, "grid_size": 16, **overrides})


def test_same_seed_same_numbers_different_seed_different_numbers():
    def run(seed):
        config = tiny_config(seed=seed)
        result = motivating.run_method(config, "flowmc", motivating.make_data(config))
        return result.history.steps["loss"], result.history.evaluations["weight"]

    assert run(0) == run(0)
    assert run(0) != run(1)


def test_divergence_stops_training_with_the_iteration():
    class ExplodingSampler(ULANegatives):
        def sample(self, x, log_target, generator):
            return x * float("nan"), {}

    sampler = ExplodingSampler(step_size=0.01, n_steps=1, init_low=-1, init_high=1)
    with pytest.raises(TrainingDivergedError, match=r"diverged at iteration 1: .* Try a smaller learning rate"):
        fit_ebm(torch.randn(128, 2), ToyEnergy(2), DiagonalGaussian(2), sampler, epochs=1, batch_size=32,
                n_persistent=64, lr=0.01, generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("name, value", [("epochs", 0), ("batch_size", -1), ("n_persistent", 0)])
def test_non_positive_sizes_are_rejected(name, value):
    kwargs = {"epochs": 1, "batch_size": 16, "n_persistent": 32, name: value}
    sampler = ULANegatives(step_size=0.01, n_steps=1, init_low=-1, init_high=1)
    with pytest.raises(ValueError, match=f"{name} must be positive"):
        fit_ebm(torch.randn(64, 2), ToyEnergy(2), DiagonalGaussian(2), sampler, lr=0.01,
                generator=torch.Generator().manual_seed(0), **kwargs)
