"""The training loop (Algorithm 1): divergence recorded (never raised), input checks before any step, history,
seeds and devices."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from extra_methods import Independent
from test_methods import build, gaussian_data, prepared, train_small

from ebmflow.checks import InputError
from ebmflow.experiments.common import train
from ebmflow.models import DiagonalGaussian, ToyEnergy
from ebmflow.seeding import MAX_SEED, make_generator, resolve_device
from ebmflow.training import Divergence, DivergenceRule, History, fit_ebm


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


# --- the divergence rule ----------------------------------------------------------------------------------

NEGATIVES = torch.zeros(4, 2)


@pytest.mark.parametrize("energy_pos, energy_neg, quantity", [
    (math.nan, 0.0, "mean energy of the data batch"),
    (0.0, math.inf, "mean energy of the negatives"),
    (-math.inf, 0.0, "mean energy of the data batch"),
])
def test_rule_fires_on_non_finite_energies(energy_pos, energy_neg, quantity):
    divergence = DivergenceRule().check(7, energy_pos, energy_neg, NEGATIVES)
    assert divergence.iteration == 7 and divergence.quantity == quantity and "learning rate" in divergence.cause


def test_rule_fires_on_non_finite_chains_on_the_energy_gap_and_on_the_box():
    nan_chain = NEGATIVES.clone()
    nan_chain[2, 1] = math.nan
    assert "chain overflowed" in DivergenceRule().check(1, 0.0, 0.0, nan_chain).cause
    gap = DivergenceRule(max_energy_gap=10.0).check(2, 1.0, 12.5, NEGATIVES)
    assert gap.quantity.startswith("energy gap") and gap.value == 11.5 and "above 10" in gap.cause
    assert DivergenceRule(max_energy_gap=10.0).check(2, 1.0, 10.5, NEGATIVES) is None
    outside = NEGATIVES.clone()
    outside[0, 0] = -5.0
    boxed = DivergenceRule(box=4.0).check(3, 0.0, 0.0, outside)
    assert boxed.value == 5.0 and "left the box [-4, 4]^d" in boxed.cause
    assert DivergenceRule().check(3, 0.0, 0.0, outside) is None  # no box: no criterion
    assert "diverged at iteration 3" in str(boxed)


@pytest.mark.parametrize("shift", [-1e6, 1e3, 1e8])
def test_rule_never_fires_on_a_constant_shift_of_the_energy(shift):
    rule = DivergenceRule(max_energy_gap=1.0)
    assert rule.check(1, 0.2 + shift, 0.5 + shift, NEGATIVES) is None


def test_a_constant_added_to_the_energys_last_bias_does_not_diverge():
    """E + c is the same model: the gradient of the loss, the chains and the gap do not change."""
    shifted, plain = ToyEnergy(2, generator=gen()), ToyEnergy(2, generator=gen())
    with torch.no_grad():
        shifted.net[-1].bias.fill_(1e4)
    histories = []
    for energy in (shifted, plain):
        method = build("ula")
        histories.append(train(method, gaussian_data(2), energy=energy, base=DiagonalGaussian(2), seed=0, epochs=2,
                               batch_size=16, n_persistent=32, divergence=DivergenceRule(max_energy_gap=10.0)).history)
    assert histories[0].divergence is None and histories[0].completed
    assert min(histories[0].steps["energy_pos"]) > 9e3
    # same chains and same gaps: the constant moves nothing (up to float32 rounding of E + 1e4)
    gaps = [np.subtract(h.steps["energy_neg"], h.steps["energy_pos"]) for h in histories]
    np.testing.assert_allclose(gaps[0], gaps[1], atol=5e-3)


# --- a divergence during training is recorded, never raised ------------------------------------------------

class Exploding(Independent):
    """Negatives turn NaN from the ``at``-th call of ``sample`` on."""

    at = 3

    def __post_init__(self):
        super().__post_init__()
        self.calls = 0

    def sample(self, chains, generator):
        self.calls += 1
        negatives = super().sample(chains, generator)
        if self.calls >= self.at:
            return negatives._replace(negatives=negatives.negatives * math.nan)
        return negatives


def test_a_divergence_is_recorded_with_its_iteration_quantity_and_cause_and_training_stops():
    evaluated = []
    run = train(Exploding(lr=1e-2), gaussian_data(2), energy=ToyEnergy(2, generator=gen()),
                base=DiagonalGaussian(2), seed=0, epochs=2, batch_size=16, n_persistent=32,
                evaluate=lambda state: evaluated.append(state.iteration) or {}, eval_every=1)
    divergence = run.divergence
    assert isinstance(divergence, Divergence) and divergence.iteration == 3
    assert divergence.quantity == "mean energy of the negatives" and "learning rate" in divergence.cause
    assert not run.history.completed and run.history.iterations == 3
    assert all(len(column) == 3 for column in run.history.steps.values())
    assert evaluated == [0, 1, 2]  # no evaluation of the diverged model
    assert run.history.final_chains.shape == (32, 2)


class FailingUpdate(Exploding):
    """The method's own update refuses the negatives from the ``at``-th iteration on (a flow fitted to negatives
    outside its support); ``updated`` counts the updates that ran."""

    def __post_init__(self):
        super().__post_init__()
        self.updated = 0

    def sample(self, chains, generator):
        return Independent.sample(self, chains, generator)

    def update(self, negatives):
        if self.updated + 1 >= self.at:
            raise InputError("the flow's negative log-likelihood is inf on finite samples")
        self.updated += 1
        return {}


def test_a_failure_of_the_methods_own_update_is_a_divergence_and_a_diverged_iteration_trains_no_flow():
    run = train(FailingUpdate(lr=1e-2), gaussian_data(2), energy=ToyEnergy(2, generator=gen()),
                base=DiagonalGaussian(2), seed=0, epochs=2, batch_size=16, n_persistent=32)
    assert run.divergence.iteration == 3 and "own update" in run.divergence.quantity
    assert "negative log-likelihood is inf" in run.divergence.cause and run.history.iterations == 3
    exploding = Exploding(lr=1e-2)
    updates = []
    exploding.update = lambda negatives: updates.append(bool(negatives.isfinite().all())) or {}
    run = train(exploding, gaussian_data(2), energy=ToyEnergy(2, generator=gen()), base=DiagonalGaussian(2), seed=0,
                epochs=2, batch_size=16, n_persistent=32)
    assert run.divergence.iteration == 3 and updates == [True, True]  # never on the NaN negatives


def test_energy_gap_and_box_divergences_through_training():
    gap = train_small(build("ula"), divergence=DivergenceRule(max_energy_gap=1e-9)).divergence
    assert gap.iteration == 2 and gap.quantity.startswith("energy gap")  # E = 0 exactly at iteration 1
    boxed = train_small(build("ula", box=4.0), divergence=DivergenceRule(box=0.5)).divergence
    assert boxed.iteration == 1 and "left the box" in boxed.cause


# --- input checks, before any training step ----------------------------------------------------------------

class Spy(Independent):
    def sample(self, chains, generator):
        raise AssertionError("a training step ran before the input was checked")


def fit(data=None, **overrides):
    method = Spy(lr=1e-2)
    energy = ToyEnergy(2, generator=gen())
    data = gaussian_data(2) if data is None else data
    method.prepare(energy, DiagonalGaussian(2), gaussian_data(2), gen(1))
    before = [p.clone() for p in energy.parameters()]
    kwargs = {"epochs": 1, "batch_size": 16, "n_persistent": 32, "generator": gen(2), **overrides}
    try:
        return fit_ebm(data, energy, method, **kwargs)
    finally:
        assert all(torch.equal(a, b) for a, b in zip(before, energy.parameters()))


def with_nan_row(row=7):
    data = gaussian_data(2)
    data[row, 1] = math.nan
    return data


@pytest.mark.parametrize("data, overrides, message", [
    (with_nan_row(7), {}, "data has non-finite values .* first in row 7"),
    (gaussian_data(3), {}, "data has dimension 3 but the model expects 2"),
    (gaussian_data(2).double(), {}, "data must have dtype torch.float32"),
    (gaussian_data(2)[0], {}, r"data must have shape \(n, d\)"),
    (None, {"batch_size": 65, "n_persistent": 128}, r"batch_size \(65\) exceeds the data set \(64 points\)"),
    (None, {"batch_size": 33}, r"batch_size \(33\) cannot exceed n_persistent \(32\)"),
    (None, {"generator": np.random.default_rng(0)}, "generator must be a torch.Generator"),
    (None, {"generator": 0}, "generator must be a torch.Generator"),
    (None, {"epochs": 0}, "epochs must be an integer >= 1"),
    (None, {"n_persistent": 2.5}, "n_persistent must be an integer >= 1"),
    (None, {"energy_l2": -1.0}, "energy_l2 must be a finite number >= 0"),
    (None, {"lr_decay": (2.0, 10)}, "lr_decay must be"),
    (None, {"lr_decay": (0.5, 0)}, "lr_decay must be"),
    (None, {"stop_after": 0}, "stop_after must be an integer >= 1"),
])
def test_bad_input_raises_before_any_training_step(data, overrides, message):
    with pytest.raises(InputError, match=message):
        fit(data, **overrides)


@pytest.mark.parametrize("name", ["ntebm", "coopflow"])
def test_bad_data_is_refused_before_the_flow_is_pretrained(name, monkeypatch):
    import ebmflow.methods.coopflow
    import ebmflow.methods.ntebm

    def no_pretraining(*args, **kwargs):
        raise AssertionError("the flow was pre-trained on bad data")

    for module in (ebmflow.methods.ntebm, ebmflow.methods.coopflow):
        monkeypatch.setattr(module, "pretrain_maximum_likelihood", no_pretraining)
    for data, message in [(with_nan_row(5), "row 5"), (gaussian_data(3), "dimension 3")]:
        with pytest.raises(InputError, match=message):
            train(build(name), data, energy=ToyEnergy(2, generator=gen()), base=DiagonalGaussian(2), seed=0,
                  epochs=1, batch_size=16, n_persistent=32)


# --- the loop's bookkeeping ---------------------------------------------------------------------------------

def test_evaluations_at_start_every_eval_every_and_end_with_iteration_and_epoch():
    run = train_small(build("ula"), evaluate=lambda state: {"bank_mean": float(state.bank.mean())}, eval_every=3)
    evaluations = run.history.evaluations
    assert evaluations["iteration"] == [0, 3, 6, 8] and evaluations["epoch"] == [0, 0.75, 1.5, 2.0]
    assert len(evaluations["bank_mean"]) == 4


def test_stop_after_ends_early_and_batch_transform_sees_every_batch():
    seen = []

    def transform(batch, generator):
        seen.append(batch.shape)
        return batch + 0.01 * torch.randn(batch.shape, generator=generator)

    run = train_small(build("ula"), stop_after=5, batch_transform=transform)
    assert run.history.iterations == 5 and not run.history.completed and seen == [(16, 2)] * 5


def test_energy_l2_regularises_the_energies():
    plain = train_small(build("ula", lr=0.1), epochs=4).history.steps
    regular = train_small(build("ula", lr=0.1), epochs=4, energy_l2=1.0).history.steps
    assert plain["loss"][:1] == regular["loss"][:1] and plain["loss"][1:] != regular["loss"][1:]
    size = lambda steps: np.abs(steps["energy_pos"][-4:]).mean() + np.abs(steps["energy_neg"][-4:]).mean()  # noqa
    assert size(regular) < size(plain)


def test_lr_decay_reaches_the_energys_optimizer(tmp_path):
    from ebmflow.checkpoint import Checkpoint

    checkpoint = Checkpoint(tmp_path / "run.pt", {}, every_seconds=None)
    method = build("flowmc")
    train_small(method, lr_decay=(0.5, 4), checkpoint=checkpoint)
    saved = torch.load(checkpoint.path, weights_only=True)
    assert saved["optimizer"]["param_groups"][0]["lr"] == pytest.approx(method.lr * 0.25)
    assert method.optimizers[0].param_groups[0]["lr"] == pytest.approx(method.lr * 0.25)


def test_history_round_trips_through_its_dict():
    history = History({"loss": [0.5, math.nan]}, {"iteration": [0, 2], "w": [0.1, 0.2]}, None,
                      Divergence(2, "q", 3.0, "c"), 2, False)
    again = History.from_dict(history.as_dict())
    assert again.divergence == history.divergence and again.iterations == 2 and again.evaluations == history.evaluations
    assert again.steps["loss"][0] == 0.5 and math.isnan(again.steps["loss"][1])


# --- seeds and devices --------------------------------------------------------------------------------------

def test_same_seed_same_run_different_seed_different_run():
    def losses(seed):
        energy = ToyEnergy(2, generator=make_generator(seed, stream="energy"))
        run = train(build("flowmc"), gaussian_data(2), energy=energy, base=DiagonalGaussian(2), seed=seed, epochs=1,
                    batch_size=16, n_persistent=32)
        return run.history.steps, run.history.final_chains

    (steps_a, bank_a), (steps_b, bank_b), (steps_c, bank_c) = losses(0), losses(0), losses(1)
    assert steps_a == steps_b and torch.equal(bank_a, bank_b)
    assert steps_a["loss"] != steps_c["loss"] and not torch.equal(bank_a, bank_c)


@pytest.mark.parametrize("seed", [True, False, -1, 2**70, MAX_SEED, 1.0, 0.5, "0", None, np.int64(3)])
def test_make_generator_rejects_what_is_not_a_seed(seed):
    with pytest.raises(InputError, match=r"seed must be an integer in \[0, 2\*\*62\)"):
        make_generator(seed)


def test_make_generator_streams_differ_and_repeat_and_leave_the_global_rng_alone():
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    draws = {stream: torch.rand(4, generator=make_generator(0, stream=stream)) for stream in ("", "data", "energy")}
    assert torch.equal(torch.rand(3), expected)
    assert not torch.equal(draws[""], draws["data"]) and not torch.equal(draws["data"], draws["energy"])
    assert torch.equal(draws["data"], torch.rand(4, generator=make_generator(0, stream="data")))
    assert not torch.equal(draws["data"], torch.rand(4, generator=make_generator(1, stream="data")))
    assert torch.rand(1, generator=make_generator(MAX_SEED - 1, stream="x")).isfinite().all()


def test_auto_device_resolves_to_cpu_without_a_gpu_and_bad_devices_are_refused():
    assert resolve_device("auto") == torch.device("cuda" if torch.cuda.is_available() else "cpu")
    assert resolve_device("cpu") == torch.device("cpu")
    for bad in ("tpu", "cudafoo", "meta", "gpu"):
        with pytest.raises(InputError, match="device must be 'cpu', 'cuda' .* or 'auto'"):
            resolve_device(bad)
    with pytest.raises(InputError, match="no CUDA GPU is available" if not torch.cuda.is_available() else "GPU"):
        resolve_device("cuda:99")
    if not torch.cuda.is_available():
        with pytest.raises(InputError, match="no CUDA GPU is available"):
            resolve_device("cuda")


def test_data_and_generator_on_different_devices_are_refused():
    meta = gaussian_data(2).to("meta")
    method = prepared("ula")
    with pytest.raises(InputError, match="must live on one device"):
        fit_ebm(meta, method.energy, method, epochs=1, batch_size=16, n_persistent=32, generator=gen())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU on this machine")
def test_train_on_cuda_matches_its_own_rerun_and_keeps_everything_on_the_gpu():
    def run():
        return train_small(build("flowmc"), device="cuda")

    a, b = run(), run()
    assert a.history.final_chains.device.type == "cuda"
    assert a.history.steps == b.history.steps  # the same seed on the same device gives the same numbers
