"""Every training method of ``ebmflow.methods.METHODS``, plus a test-only one (tests/extra_methods.py).

Each method has small settings in ``CASES``; every parametrised test runs on every registered method and on the
test-only method. A method registered without a case fails every parametrised test with a message saying so:
adding a method is one file and one registry line, and adding it to the tests is one line of ``CASES``.
"""
from __future__ import annotations

import io
import re
import sys
from pathlib import Path

import pytest
import torch
from extra_methods import Independent
from torch.overrides import TorchFunctionMode

import ebmflow
from ebmflow.checks import InputError
from ebmflow.experiments.common import train
from ebmflow.methods import DESCRIBE_COLUMNS, METHODS, CoopFlow, FlowMCEBM, NTEBM, ULAEBM
from ebmflow.models import DiagonalGaussian, RealNVP, ToyEnergy
from ebmflow.samplers import run_chains
from ebmflow.seeding import make_generator
from ebmflow.training import fit_ebm


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def small_flow(base, generator):
    return RealNVP(base, n_couplings=2, hidden=8, generator=generator)


PRETRAIN = dict(pretrain_steps=20, pretrain_batch=32, make_flow=small_flow)
# name -> (class, small settings). The registered methods take their class from the registry.
CASES = {
    "flowmc": (METHODS["flowmc"], dict(lr=1e-3, schedule="GLLL", step_size=1e-2, n_particles=8, keep=2,
                                       make_flow=small_flow)),
    "ntebm": (METHODS["ntebm"], dict(lr=1e-2, n_steps=5, step_size=1e-2, **PRETRAIN)),
    "coopflow": (METHODS["coopflow"], dict(lr=1e-3, n_steps=5, step_size=5e-4, freeze_iterations=2, max_drift=0.1,
                                           **PRETRAIN)),
    "ula": (METHODS["ula"], dict(lr=1e-2, step_size=1e-2, n_steps=5)),
    "independent": (Independent, dict(lr=1e-2)),  # the test-only method: this line is all it takes
}
NAMES = list(dict.fromkeys([*METHODS, *CASES]))
EXTRA = [name for name in CASES if name not in METHODS]


def build(name, **overrides):
    if name not in CASES:
        pytest.fail(f"method {name!r} is registered in METHODS but has no test case in CASES")
    cls, settings = CASES[name]
    return cls(**{**settings, **overrides})


def gaussian_data(dim, n=64, seed=1):
    return 1.0 + 0.5 * torch.randn(n, dim, generator=gen(seed))


def reference(x):  # the exact log-density of gaussian_data, for reverse-KL pre-training
    return -2 * ((x - 1.0) ** 2).sum(-1)


def train_small(method, dim=2, *, epochs=2, **kwargs):
    """Two epochs of 4 iterations (64 points, batches of 16, 32 persistent chains) through ``common.train``."""
    energy = ToyEnergy(dim, generator=make_generator(0, stream="energy"))
    return train(method, gaussian_data(dim), energy=energy, base=DiagonalGaussian(dim), seed=0, epochs=epochs,
                 batch_size=16, n_persistent=32, reference=reference, **kwargs)


def prepared(name, dim=2, seed=0, **overrides):
    method = build(name, **overrides)
    energy = ToyEnergy(dim, generator=make_generator(seed, stream="energy"))
    method.prepare(energy, DiagonalGaussian(dim), gaussian_data(dim), make_generator(seed, stream="prepare"),
                   reference)
    return method


def flat_state(state, prefix=""):
    """Every leaf of a (nested) state dict, keyed by its path."""
    if isinstance(state, dict):
        out = {}
        for key, value in state.items():
            out.update(flat_state(value, f"{prefix}{key}."))
        return out
    if isinstance(state, (list, tuple)):
        out = {}
        for i, value in enumerate(state):
            out.update(flat_state(value, f"{prefix}{i}."))
        return out
    return {prefix.rstrip("."): state}


def assert_same_state(a, b):
    a, b = flat_state(a), flat_state(b)
    assert a.keys() == b.keys()
    for key in a:
        if isinstance(a[key], torch.Tensor):
            assert torch.equal(a[key], b[key]), key
        else:
            assert a[key] == b[key], key


# --- the registry -----------------------------------------------------------------------------------------

def test_the_registry_is_in_the_papers_figure_order_and_the_cases_use_its_classes():
    assert list(METHODS) == ["flowmc", "ntebm", "coopflow", "ula"]
    assert all(CASES[name][0] is METHODS[name] for name in METHODS if name in CASES)
    assert all(cls.name == name for name, (cls, _) in CASES.items())


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("dim", [2, 5])
def test_method_trains_a_few_iterations_and_leaves_a_finite_bank(name, dim):
    run = train_small(build(name), dim)
    history = run.history
    assert history.completed and history.divergence is None and history.iterations == 8
    assert all(len(values) == 8 for values in history.steps.values()) and "loss" in history.steps
    assert history.final_chains.shape[0] == 32 and torch.isfinite(history.final_chains).all()
    assert run.bank_positions().shape == (32, dim) and torch.isfinite(run.bank_positions()).all()
    assert all(isinstance(v, float) for values in history.steps.values() for v in values)


@pytest.mark.parametrize("name", NAMES)
def test_method_has_a_label_a_colour_and_a_row_of_the_hyper_parameter_tables(name):
    method = build(name)
    assert isinstance(method.label, str) and method.label
    assert re.fullmatch(r"#[0-9a-f]{6}", method.color)
    row = method.describe()
    assert list(row) == list(DESCRIBE_COLUMNS)
    assert row["learning rate"] == method.lr and all(str(value) for value in row.values())


def test_labels_and_colours_tell_the_methods_apart():
    classes = [build(name) for name in NAMES]
    assert len({m.label for m in classes}) == len({m.color for m in classes}) == len(classes)


@pytest.mark.parametrize("name", NAMES)
def test_starts_and_sample_have_the_banks_shapes(name):
    method = prepared(name)
    bank = method.init_chains(32, gen(1))
    batch = bank[:8]
    assert method.starts(batch, gen(2)).shape == batch.shape
    negatives = method.sample(batch, gen(3))
    assert negatives.chains.shape == batch.shape
    assert negatives.negatives.shape == (8, 2) and torch.isfinite(negatives.negatives).all()
    assert method.positions(bank).shape == (32, 2)
    assert all(isinstance(value, float) for value in negatives.stats.values())


@pytest.mark.parametrize("name", NAMES)
def test_optimizers_are_decayed_by_lr_decay(name):
    method = build(name)
    train_small(method, lr_decay=(0.5, 2))  # 8 iterations: 4 halvings
    for optimizer in method.optimizers:
        assert all(group["lr"] == pytest.approx(method.lr * 0.5**4) for group in optimizer.param_groups)


@pytest.mark.parametrize("name", NAMES)
def test_state_dict_round_trip(name):
    """A second instance, prepared from another seed, continues exactly like the first once it loads its state
    (through torch.save and a weights-only load, as a checkpoint does)."""
    first = train_small(build(name)).method
    second = prepared(name, seed=1)
    second.energy = first.energy
    buffer = io.BytesIO()
    torch.save(first.state_dict(), buffer)
    buffer.seek(0)
    second.load_state_dict(torch.load(buffer, weights_only=True))
    assert_same_state(second.state_dict(), first.state_dict())
    chains = first.init_chains(8, gen(4))
    a, b = first.sample(chains, gen(5)), second.sample(chains, gen(5))
    assert torch.equal(a.negatives, b.negatives) and torch.equal(a.chains, b.chains) and a.stats == b.stats
    assert_same_state(second.state_dict(), first.state_dict())


@pytest.mark.parametrize("name", NAMES)
def test_kernel_continues_chains_on_the_trained_model(name):
    run = train_small(build(name))
    positions = run.continue_chains(6, 3, gen(6))
    assert positions.shape == (6, 2) and torch.isfinite(positions).all()
    recorded = run.continue_chains(6, 3, gen(6), record=True)
    assert recorded.shape[1:] == (6, 2) and recorded.shape[0] >= 3
    torch.testing.assert_close(recorded[-1], positions)  # the same states (mapped in a larger batch)


# --- devices ----------------------------------------------------------------------------------------------

FACTORIES = {torch.randn, torch.rand, torch.randint, torch.randperm, torch.zeros, torch.ones, torch.full,
             torch.empty, torch.arange, torch.tensor, torch.linspace, torch.eye, torch.normal}
PACKAGE = str(Path(ebmflow.__file__).parent)


class DeviceAudit(TorchFunctionMode):
    """Records every tensor factory called from ebmflow's code without an explicit ``device``: such a tensor
    lands on the default device (the CPU) whatever the data's device, which fails on a GPU."""

    def __init__(self):
        super().__init__()
        self.missing = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in FACTORIES and "device" not in kwargs:
            frame = sys._getframe(1)
            while frame is not None and "/torch/" in frame.f_code.co_filename:
                frame = frame.f_back
            if frame is not None and frame.f_code.co_filename.startswith(PACKAGE):
                self.missing.append(f"{frame.f_code.co_filename}:{frame.f_lineno} torch.{func.__name__}")
        return func(*args, **kwargs)


def test_the_device_audit_catches_a_factory_without_device():
    with DeviceAudit() as audit:
        torch.zeros(2)  # from the tests: not ebmflow's code
    assert audit.missing == []
    with DeviceAudit() as audit:
        ebmflow.models.DiagonalGaussian(2)  # a module's buffer: moved by .to(device) afterwards
    assert audit.missing and "bases.py" in audit.missing[0]


@pytest.mark.parametrize("name", NAMES)
def test_every_tensor_created_while_training_follows_the_datas_device(name):
    """During training (after ``prepare``, which builds modules that ``train`` moves to the device), every
    tensor ebmflow creates names its device; and everything the method holds lives on the data's device."""
    method = prepared(name)
    data = gaussian_data(2)
    with DeviceAudit() as audit:
        history = fit_ebm(data, method.energy, method, epochs=1, batch_size=16, n_persistent=32,
                          generator=make_generator(0, stream="training"))
        run_chains(method.kernel(), method.starts(history.final_chains[:4], gen(7)), 2, gen(8))
    assert audit.missing == []
    tensors = [t for t in flat_state(method.state_dict()).values() if isinstance(t, torch.Tensor)]
    assert all(t.device == data.device for t in [history.final_chains, *tensors])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU on this machine")
@pytest.mark.parametrize("name", NAMES)
def test_method_trains_on_cuda(name):
    run = train_small(build(name), device="cuda")
    assert run.history.completed and run.history.final_chains.device.type == "cuda"
    assert all(p.device.type == "cuda" for p in run.energy.parameters())
    tensors = [t for t in flat_state(run.method.state_dict()).values() if isinstance(t, torch.Tensor)]
    assert all(t.device.type == "cuda" for t in tensors)


# --- NT-EBM -----------------------------------------------------------------------------------------------

def perturb_energy(energy, seed=9):
    with torch.no_grad():  # the energy's last layer starts at zero; give it a shape
        energy.net[-1].weight.normal_(generator=gen(seed))
        energy.net[-1].bias.fill_(0.3)
    return energy


def test_ntebm_latent_target_is_the_pull_back_of_the_flow_tilted_model():
    """-E(Tz) + log rho(z) = log p(Tz) + log|det dT/dz| with log p = -E + log lambda (the Jacobian cancels)."""
    method = prepared("ntebm")
    perturb_energy(method.energy)
    z = method.flow.latent.sample_with_log_prob(200, gen(10))[0]
    with torch.no_grad():
        x, logdet = method.flow.from_latent(z)
        assert logdet.std() > 1e-2  # the pre-trained flow is not volume-preserving: the test has teeth
        difference = method.latent_log_target(z) - (method.log_target(x) + logdet)
    torch.testing.assert_close(difference, torch.full_like(difference, float(difference.mean())), atol=1e-4, rtol=0)
    torch.testing.assert_close(method.positions(z), x)


@pytest.mark.parametrize("pretrain", ["data", "reverse_kl"])
def test_ntebm_pretrains_both_ways_and_freezes_its_flow(pretrain):
    method = build("ntebm", pretrain=pretrain)
    initial = small_flow(DiagonalGaussian(2), generator=make_generator(0, "cpu", "ntebm/prepare"))
    run = train_small(method)
    assert run.history.completed
    trained = dict(run.method.flow.named_parameters())
    moved = any(not torch.equal(p, trained[k]) for k, p in initial.named_parameters())
    assert moved, "pre-training did not move the flow"
    assert not any(p.requires_grad for p in run.method.flow.parameters())
    assert run.method.step_size != CASES["ntebm"][1]["step_size"]  # adapted and carried across iterations


def test_ntebm_flow_is_frozen_during_training():
    method = prepared("ntebm")
    after_pretraining = {k: v.clone() for k, v in method.flow.state_dict().items()}
    fit_ebm(gaussian_data(2), method.energy, method, epochs=2, batch_size=16, n_persistent=32,
            generator=gen(11))
    assert_same_state(method.flow.state_dict(), after_pretraining)


def test_ntebm_reverse_kl_needs_a_reference_and_the_two_pretrainings_differ():
    data_method, kl_method = prepared("ntebm"), prepared("ntebm", pretrain="reverse_kl")
    assert any(not torch.equal(p, q) for p, q in zip(data_method.flow.parameters(), kl_method.flow.parameters()))
    method = build("ntebm", pretrain="reverse_kl")
    with pytest.raises(InputError, match="needs the data's exact log-density"):
        method.prepare(ToyEnergy(2, generator=gen()), DiagonalGaussian(2), gaussian_data(2), gen(1), None)


# --- CoopFlow ---------------------------------------------------------------------------------------------

def test_coopflow_starts_afresh_from_the_flow_every_iteration():
    method = prepared("coopflow")
    far = torch.full((200, 2), 50.0)
    a, b = method.starts(far, gen(12)), method.starts(far, gen(13))
    assert a.abs().max() < 10 and not torch.equal(a, b)  # the persistent states are ignored
    negatives = method.sample(far, gen(14)).negatives
    assert negatives.abs().max() < 10
    # with the same generator, the negatives are the flow's draws revised by the noiseless Langevin steps
    starts = method.starts(far, gen(14))
    state, _, _ = run_chains(method.kernel(), starts, method.n_steps, gen(99))
    assert torch.equal(method.sample(far, gen(14)).negatives, state.position)


def test_coopflow_flow_is_frozen_for_freeze_iterations_then_learns():
    method = prepared("coopflow")  # freeze_iterations = 2
    negatives = method.sample(method.init_chains(16, gen(15)), gen(16)).negatives
    before = [p.clone() for p in method.flow.parameters()]
    assert method.update(negatives) == {} and method.update(negatives) == {}
    assert all(torch.equal(a, b) for a, b in zip(before, method.flow.parameters()))
    assert "flow_nll" in method.update(negatives)
    assert any(not torch.equal(a, b) for a, b in zip(before, method.flow.parameters()))
    assert method.state_dict()["iteration"] == 3


def test_coopflow_max_drift_clamps_every_coordinate_of_every_step():
    method = prepared("coopflow", step_size=1.0, max_drift=0.05)
    perturb_energy(method.energy)
    with torch.no_grad():
        method.energy.net[-1].weight.mul_(100)  # steep: unclamped drifts are far above 0.05
    start = method.starts(torch.zeros(64, 2), gen(17))
    state, trajectory, _ = run_chains(method.kernel(), start, 3, gen(18), record=True)
    steps = torch.diff(torch.cat([start[None], trajectory]), dim=0)
    assert steps.abs().max() <= 0.05 + 1e-6
    assert (steps.abs() > 0.05 - 1e-6).float().mean() > 0.5  # the clamp is active


# --- flowMC-EBM -------------------------------------------------------------------------------------------

def test_flowmc_keep_k_gives_k_evenly_spaced_states_per_chain():
    method = prepared("flowmc", schedule="GLLLGLLL", keep=2)
    chains = torch.randn(10, 2, generator=gen(19))
    negatives = method.sample(chains, gen(20))
    assert negatives.negatives.shape == (10, 2) and torch.equal(negatives.chains, negatives.negatives)
    # the same 5 chains re-run with every sub-step recorded: the states after steps 4 and 8
    _, _, (info,) = run_chains(method.kernel(substeps=True), chains[:5], 1, gen(20))
    torch.testing.assert_close(negatives.negatives, torch.cat([info.trajectory[3], info.trajectory[7]]))
    with pytest.raises(InputError, match="must be a multiple of keep"):
        method.sample(chains[:7], gen(20))
    with pytest.raises(InputError, match="divide the schedule length"):
        build("flowmc", schedule="GLL", keep=2)


def test_flowmc_with_imh_global_moves_trains_and_says_so():
    method = build("flowmc", global_move="imh", keep=1)
    run = train_small(method)
    assert run.history.completed and torch.isfinite(run.history.final_chains).all()
    acceptance = run.history.steps["global_acceptance"]
    assert all(0 <= a <= 1 for a in acceptance) and "IMH" in method.describe()["MCMC sampler"]
    # IMH and i-SIR give different chains from the same start and seed: the option is really used
    isir = prepared("flowmc", keep=1)
    imh = prepared("flowmc", keep=1, global_move="imh")
    chains = torch.randn(16, 2, generator=gen(21))
    assert not torch.equal(isir.sample(chains, gen(22)).negatives, imh.sample(chains, gen(22)).negatives)
    with pytest.raises(InputError, match="global_move must be 'isir' or 'imh'"):
        build("flowmc", global_move="hmc")


# --- ULA-EBM ----------------------------------------------------------------------------------------------

def test_ula_chains_start_uniformly_in_the_box_or_from_rho_and_clip_keeps_them_there():
    uniform = prepared("ula", box=2.0)
    bank = uniform.init_chains(4000, gen(23))
    assert bank.abs().max() <= 2.0 and abs(float(bank.abs().mean()) - 1.0) < 0.03  # U[-2, 2]: E|x| = 1
    rho = prepared("ula", init="rho").init_chains(4000, gen(24))
    assert rho.abs().max() > 2.5 and abs(float(rho.std()) - 1.0) < 0.03
    clipped = prepared("ula", box=0.5, clip=True, step_size=0.5)
    state, _, _ = run_chains(clipped.kernel(), torch.zeros(100, 2), 5, gen(25))
    assert state.position.abs().max() <= 0.5


@pytest.mark.parametrize("cls, settings, message", [
    (FlowMCEBM, dict(lr=1e-3, schedule="LLL", step_size=0.1), "no global step"),
    (FlowMCEBM, dict(lr=0.0, schedule="GL", step_size=0.1), "lr must be a finite number > 0"),
    (NTEBM, dict(lr=1e-3, n_steps=5, step_size=0.1, pretrain="both"), "pretrain must be 'data' or 'reverse_kl'"),
    (NTEBM, dict(lr=1e-3, n_steps=5, step_size=0.1, target_acceptance=1.0), "target_acceptance"),
    (CoopFlow, dict(lr=1e-3, n_steps=5, step_size=0.1, freeze_iterations=-1), "freeze_iterations"),
    (CoopFlow, dict(lr=1e-3, n_steps=5, step_size=0.1, max_drift=0.0), "max_drift"),
    (ULAEBM, dict(lr=1e-3, n_steps=5, step_size=0.1, init="gauss"), "init must be 'uniform' or 'rho'"),
])
def test_bad_method_settings_are_explained(cls, settings, message):
    with pytest.raises(InputError, match=message):
        cls(**settings)
