"""Every bad input gets one clear sentence before any work starts (issue 14), as a table of cases by surface.

Each bad case asserts the error type, that the message names the offending parameter or file (and the value where
there is one), and that it happens before any work: spies fail the test if papermill starts a kernel, a method
samples negatives, an Adam step is taken (training or a flow's pre-training) or ``fit_ebm`` is reached from
``train`` (``no_work``). Beside them, the valid edge cases pass (seed 0, weights summing to 1 within 1e-6,
stop_after=0, a batch equal to n_data, ...) and the inputs accepted with a warning print it.

Surfaces (the count of each is checked by ``test_count_of_cases_by_surface`` and printed with ``pytest -s``):
  cli         ``ebmflow ...`` in-process (``main([...])`` with capsys): exit 2 and one ``ebmflow: error:`` line
  subprocess  ``python -m ebmflow ...``: the same seen from a terminal (a few, run concurrently)
  papermill   plain ``papermill`` on a chapter notebook: the set-up cell refuses, no later cell runs (a handful:
              each starts a kernel; run concurrently)
  report      ``ebmflow report`` / ``load_glued`` / ``read_glued`` on damaged notebooks and non-numbers
  config      ``resolve_config`` + ``Chapter.validate`` for every chapter of CHAPTERS (hand-written cross-parameter
              cases, and for every field a wrong type and an out-of-range or non-finite value) and
              ``chapter_config`` with names injected into the parameters cell
  library     constructors and entry points: targets, seeding, models, flows, fitting, samplers, methods,
              train/fit_ebm, divergence rule, metrics, estimators, checkpoints, records
  data        damaged CIFAR-10 pickles written into tmp_path, the digits loader, imbalanced subsets, damaged
              checkpoints, records and notebooks
  valid       edge cases that must pass (and inputs accepted with a warning)

Accepted with a warning, not refused (each has a test below):
  * a run estimated to last over a day (``-p epochs=1000000000``: "7.06e+04 days"), or, where the profile's runtime
    was never measured, doing over 1000 times its profile's work: the estimate scales a runtime measured on this
    machine, so a hard limit would refuse a command on one machine and accept it on another; long runs are
    legitimate (the paper profile on a CPU takes days); Ctrl-C stops it and --resume continues it.
  * ``report`` on a NaN or infinite glued value: a diverged run glues NaN by design and its claim counts it as the
    worst; the warning names the notebook, the key and the value (text that is not a number is refused).
  * ``--output`` into folders that do not exist yet: created (like any output file), after an existing ancestor was
    found writable; the run says "creating the folder ...".
  * ``sweep --inline --threads N``: the runs share this process, --threads is ignored, and the warning says so.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import pickle
import re
import subprocess
import sys
import time
import typing
from pathlib import Path

import nbformat
import numpy as np
import pytest
import torch

import ebmflow.experiments.common as common
import ebmflow.training as training
from ebmflow.book import chapters as chapters_module
from ebmflow.book.chapters import BOOK_DIR, CHAPTERS, chapter_config
from ebmflow.book.cli import main
from ebmflow.book.config import ConfigError, resolve_config
from ebmflow.book.glued import GluedError, check_numbers, read_glued
from ebmflow.book.records import MixedRecordsError, RecordError, read_record, summarize
from ebmflow.checkpoint import Checkpoint, CheckpointMismatch
from ebmflow.checks import InputError
from ebmflow.data import (CIFAR10_FILES, Dequantize, ImageDataError, imbalanced_subset, load_cifar10, load_digits,
                          load_images)
from ebmflow.estimators import annealed_mode_weights, snis_mode_weights
from ebmflow.experiments.common import chain_evaluation, train
from ebmflow.methods import METHODS, CoopFlow, FlowMCEBM, NTEBM, ULAEBM
from ebmflow.metrics import (Grid2D, log_normalizer_on_grid, max_rhat, median_squared_log_error, mixing_diagnostics,
                             normalized_log_density_at, thin, zone_mse, zone_weights_of_samples)
from ebmflow.models import (ConvEnergy, DiagonalGaussian, ImageRealNVP, LogitGaussian, RealNVP, ToyEnergy,
                            maximum_likelihood_step, pretrain_maximum_likelihood, pretrain_reverse_kl)
from ebmflow.samplers import flowmc, imh, isir, mala, run_chains, ula, validate_schedule
from ebmflow.seeding import make_generator, resolve_device
from ebmflow.targets import (GaussianMixture, Rings, coordinate_magnitude, four_collinear_modes, four_mode_mixture,
                             rings, two_mode_mixture)
from ebmflow.training import DivergenceRule

ROOT = BOOK_DIR.parent
FIT_EBM = training.fit_ebm  # the real one: the spy replaces the module attributes, not this name
SEED_2_70 = 2**70
EXPERIMENTS = [name for name, chapter in CHAPTERS.items() if not chapter.summary]


class WorkStarted(BaseException):
    """Raised by a spy: the work a bad input must never reach (a BaseException: no ``except Exception`` hides it)."""


def _spy(what: str):
    def spy(*args, **kwargs):
        raise WorkStarted(what)
    return spy


@pytest.fixture
def no_work(monkeypatch, tmp_path):
    """Spies on every kind of work; results and logs go to tmp_path."""
    import papermill

    monkeypatch.setattr(papermill, "execute_notebook", _spy("papermill started a kernel"))
    monkeypatch.setattr(torch.optim.Adam, "step", _spy("an Adam step (training or pre-training)"))
    monkeypatch.setattr(training, "fit_ebm", _spy("fit_ebm"))
    monkeypatch.setattr(common, "fit_ebm", _spy("fit_ebm reached from train"))
    for method in METHODS.values():
        monkeypatch.setattr(method, "sample", _spy(f"{method.label} sampled negatives"))
    monkeypatch.setenv("EBMFLOW_RESULTS_DIR", str(tmp_path / "results"))
    monkeypatch.setenv("EBMFLOW_LOG_DIR", str(tmp_path / "logs"))


def _names_all(message: str, names: tuple[str, ...]) -> None:
    """Each of ``names`` appears in ``message`` (case-insensitive; a parameter written with spaces for '_' counts:
    "flowMC schedule" names flowmc_schedule)."""
    text = message.lower()
    for name in names:
        wanted = str(name).lower()
        assert wanted in text or wanted.replace("_", " ") in text, f"{name!r} not named in: {message}"


def _sentence(message: str) -> None:
    assert message.strip() and len(message.strip().splitlines()) == 1, f"not one line: {message!r}"
    assert "Traceback" not in message


# --- small objects ----------------------------------------------------------------------------------------------

def g(seed: int = 0) -> torch.Generator:
    return make_generator(seed, stream="test")


def data2(n: int = 64, dim: int = 2) -> torch.Tensor:
    return torch.randn(n, dim, generator=g(1))


def nan_row(row: int = 5) -> torch.Tensor:
    x = data2()
    x[row, 1] = float("nan")
    return x


def energy2(dim: int = 2) -> ToyEnergy:
    return ToyEnergy(dim, width=4, generator=g(2))


def nan_energy() -> ToyEnergy:
    energy = energy2()
    with torch.no_grad():
        next(energy.parameters()).fill_(float("nan"))
    return energy


def log_p(x: torch.Tensor) -> torch.Tensor:
    return -0.5 * x.pow(2).sum(-1)


def ula_method(**kw) -> ULAEBM:
    return ULAEBM(**{"lr": 1e-3, "step_size": 0.01, "n_steps": 2, **kw})


def flowmc_method(**kw) -> FlowMCEBM:
    settings = {"lr": 1e-3, "schedule": "GL", "step_size": 0.01, "n_particles": 4, "ebm_average": 0.0,
                "make_flow": lambda base, generator: RealNVP(base, n_couplings=2, hidden=4, generator=generator)}
    return FlowMCEBM(**{**settings, **kw})


def ntebm_method(**kw) -> NTEBM:
    settings = {"lr": 1e-3, "n_steps": 2, "step_size": 0.1, "pretrain_steps": 3, "pretrain_batch": 8,
                "make_flow": lambda base, generator: RealNVP(base, n_couplings=2, hidden=4, generator=generator)}
    return NTEBM(**{**settings, **kw})


def coopflow_method(**kw) -> CoopFlow:
    settings = {"lr": 1e-3, "n_steps": 2, "step_size": 0.01, "pretrain_steps": 3, "pretrain_batch": 8,
                "make_flow": lambda base, generator: RealNVP(base, n_couplings=2, hidden=4, generator=generator)}
    return CoopFlow(**{**settings, **kw})


def prepared(method=None, energy=None):
    method = method or ula_method()
    energy = energy or energy2()
    method.prepare(energy, DiagonalGaussian(2), data2(), g())
    return method, energy


def flow2():
    return RealNVP(DiagonalGaussian(2), n_couplings=2, hidden=4, generator=g())


def kernel2():
    return mala(log_p, 0.1)


TRAIN = dict(seed=0, epochs=1, batch_size=16, n_persistent=32)


def do_train(method=None, data=None, energy=None, base=None, **kw):
    return train(method if method is not None else ntebm_method(), data if data is not None else data2(),
                 energy=energy if energy is not None else energy2(),
                 base=base if base is not None else DiagonalGaussian(2), **{**TRAIN, **kw})


def do_fit(method=None, energy=None, data=None, **kw):
    if method is None:
        method, energy = prepared()
    settings = dict(epochs=1, batch_size=16, n_persistent=32, generator=g())
    return FIT_EBM(data if data is not None else data2(), energy, method, **{**settings, **kw})


def mixture(**kw) -> GaussianMixture:
    settings = dict(means=torch.zeros(2, 2), stds=torch.ones(2), weights=torch.tensor([0.5, 0.5]))
    return GaussianMixture(**{**settings, **kw})


def ring(**kw) -> Rings:
    settings = dict(radii=torch.tensor([1.0, 2.0]), std=0.1, weights=torch.tensor([0.5, 0.5]))
    return Rings(**{**settings, **kw})


def mode_of(x: torch.Tensor) -> torch.Tensor:
    return (x[:, 0] > 0).long()


def snis(**kw):
    settings = dict(log_density=log_p, proposal=DiagonalGaussian(2), mode_of=mode_of, n_modes=2, n_samples=64,
                    generator=g())
    return snis_mode_weights(**{**settings, **kw})


def ais(**kw):
    settings = dict(log_density=log_p, data=data2(), mode_of=mode_of, n_modes=2, n_samples=16, generator=g(),
                    n_steps=1)
    return annealed_mode_weights(**{**settings, **kw})


# --- the library ------------------------------------------------------------------------------------------------
# (id, call, error type, strings the message must contain: the parameter, and the value where there is one)
NAN, INF = float("nan"), float("inf")
LIBRARY = [
    # targets
    ("two_mode weights sum 1.1", lambda: two_mode_mixture(weights=(0.5, 0.6)), InputError, ("weights", "1.1")),
    ("two_mode one weight", lambda: two_mode_mixture(weights=(1.0,)), InputError, ("weights", "1.0")),
    ("two_mode NaN weight", lambda: two_mode_mixture(weights=(NAN, 0.5)), InputError, ("weights", "nan")),
    ("two_mode text weights", lambda: two_mode_mixture(weights="ab"), InputError, ("weights", "ab")),
    ("two_mode offset -1", lambda: two_mode_mixture(offset=-1.0), InputError, ("offset", "-1")),
    ("two_mode offset inf", lambda: two_mode_mixture(offset=INF), InputError, ("offset", "inf")),
    ("four_collinear two weights", lambda: four_collinear_modes((0.5, 0.5)), InputError, ("weights", "2")),
    ("four_mode odd dim", lambda: four_mode_mixture(3, 1.0), InputError, ("dim", "3")),
    ("four_mode dim 0", lambda: four_mode_mixture(0, 1.0), InputError, ("dim", "0")),
    ("four_mode NaN magnitude", lambda: four_mode_mixture(4, NAN), InputError, ("magnitude", "nan")),
    ("four_mode weights sum 0.9", lambda: four_mode_mixture(4, 1.0, (0.2, 0.2, 0.2, 0.3)), InputError,
     ("weights", "0.9")),
    ("coordinate_magnitude 0.7", lambda: coordinate_magnitude(4, 0.7), InputError, ("max_misassignment", "0.7")),
    ("coordinate_magnitude dim 1", lambda: coordinate_magnitude(1, 0.1), InputError, ("dim", "1")),
    ("mixture NaN std", lambda: mixture(stds=torch.tensor([1.0, NAN])), InputError, ("stds", "nan")),
    ("mixture std -1", lambda: mixture(stds=torch.tensor([1.0, -1.0])), InputError, ("stds", "-1")),
    ("mixture 1-D means", lambda: mixture(means=torch.zeros(2)), InputError, ("means", "(2,)")),
    ("mixture K mismatch", lambda: mixture(weights=torch.tensor([0.2, 0.3, 0.5])), InputError, ("weights", "(3,)")),
    ("mixture lists", lambda: mixture(means=[[0.0, 0.0], [1.0, 1.0]]), InputError, ("means", "list")),
    ("mixture weights sum 0.8", lambda: mixture(weights=torch.tensor([0.4, 0.4])), InputError, ("weights", "0.8")),
    ("mixture.sample n 0", lambda: two_mode_mixture().sample(0, g()), InputError, ("number of samples", "0")),
    ("mixture.sample n 2.5", lambda: two_mode_mixture().sample(2.5, g()), InputError, ("number of samples", "2.5")),
    ("mixture.sample generator None", lambda: two_mode_mixture().sample(4, None), InputError,
     ("generator", "NoneType")),
    ("rings negative radius", lambda: ring(radii=torch.tensor([1.0, -1.0])), InputError, ("radii", "-1")),
    ("rings std 0", lambda: ring(std=0.0), InputError, ("std", "0")),
    ("rings weights shape", lambda: ring(weights=torch.tensor([0.2, 0.3, 0.5])), InputError, ("weights", "(3,)")),
    ("rings.sample generator int", lambda: rings().sample(4, 42), InputError, ("generator", "int")),
    # seeding
    ("seed 2**70", lambda: make_generator(SEED_2_70), InputError, ("seed", str(SEED_2_70))),
    ("seed -1", lambda: make_generator(-1), InputError, ("seed", "-1")),
    ("seed 1.5", lambda: make_generator(1.5), InputError, ("seed", "1.5")),
    ("seed True", lambda: make_generator(True), InputError, ("seed", "True")),
    ("seed text", lambda: make_generator("0"), InputError, ("seed", "'0'")),
    ("stream int", lambda: make_generator(0, stream=3), InputError, ("stream", "3")),
    ("device tpu", lambda: make_generator(0, device="tpu"), InputError, ("device", "tpu")),
    ("resolve_device cuda:x", lambda: resolve_device("cuda:x"), InputError, ("device", "cuda:x")),
    # models
    ("ToyEnergy dim 0", lambda: ToyEnergy(0, generator=g()), InputError, ("dim", "0")),
    ("ToyEnergy dim 2.0", lambda: ToyEnergy(2.0, generator=g()), InputError, ("dim", "2.0")),
    ("ToyEnergy width 0", lambda: ToyEnergy(2, width=0, generator=g()), InputError, ("width", "0")),
    ("ToyEnergy leak NaN", lambda: ToyEnergy(2, leak=NAN, generator=g()), InputError, ("leak", "nan")),
    ("ToyEnergy generator None", lambda: ToyEnergy(2, generator=None), InputError, ("generator", "NoneType")),
    ("ConvEnergy side 6", lambda: ConvEnergy((3, 6, 6), generator=g()), InputError, ("image", "(3, 6, 6)")),
    ("ConvEnergy 2-D shape", lambda: ConvEnergy((3, 8), generator=g()), InputError, ("image_shape", "(3, 8)")),
    ("ConvEnergy width -1", lambda: ConvEnergy((1, 8, 8), width=-1, generator=g()), InputError, ("width", "-1")),
    ("DiagonalGaussian dim 0", lambda: DiagonalGaussian(0), InputError, ("dim", "0")),
    ("DiagonalGaussian std NaN", lambda: DiagonalGaussian(2, std=NAN), InputError, ("std", "nan")),
    ("DiagonalGaussian std -1", lambda: DiagonalGaussian(2, std=-1.0), InputError, ("std", "-1")),
    ("DiagonalGaussian sample generator None", lambda: DiagonalGaussian(2).sample_with_log_prob(4, None),
     InputError, ("generator", "NoneType")),
    ("DiagonalGaussian sample n -1", lambda: DiagonalGaussian(2).sample_with_log_prob(-1, g()), InputError,
     ("number of samples", "-1")),
    ("LogitGaussian 2-D shape", lambda: LogitGaussian((1, 8)), InputError, ("image_shape", "(1, 8)")),
    ("LogitGaussian alpha 0.7", lambda: LogitGaussian((1, 8, 8), alpha=0.7), InputError, ("alpha", "0.7")),
    ("RealNVP base dim 1", lambda: RealNVP(DiagonalGaussian(1), generator=g()), InputError, ("dimension", "1")),
    ("RealNVP n_couplings 0", lambda: RealNVP(DiagonalGaussian(2), n_couplings=0, generator=g()), InputError,
     ("n_couplings", "0")),
    ("RealNVP hidden 2.5", lambda: RealNVP(DiagonalGaussian(2), hidden=2.5, generator=g()), InputError,
     ("hidden", "2.5")),
    ("RealNVP base text", lambda: RealNVP("base", generator=g()), InputError, ("base", "str")),
    ("RealNVP generator None", lambda: RealNVP(DiagonalGaussian(2), generator=None), InputError,
     ("generator", "NoneType")),
    ("ImageRealNVP tilt Gaussian", lambda: ImageRealNVP(DiagonalGaussian(4), generator=g()), InputError,
     ("tilt", "DiagonalGaussian")),
    ("ImageRealNVP odd sides", lambda: ImageRealNVP(LogitGaussian((1, 7, 7)), generator=g()), InputError,
     ("even", "(1, 7, 7)")),
    ("flow.sample n -1", lambda: flow2().sample(-1, g()), InputError, ("number of samples", "-1")),
    ("flow.sample generator None", lambda: flow2().sample(4, None), InputError, ("generator", "NoneType")),
    # fitting
    ("pretrain lr -1", lambda: pretrain_maximum_likelihood(flow2(), data2(), n_steps=2, lr=-1.0, batch_size=8,
                                                           generator=g()), InputError, ("lr", "-1")),
    ("pretrain NaN data row 5", lambda: pretrain_maximum_likelihood(flow2(), nan_row(5), n_steps=2, lr=1e-3,
                                                                    batch_size=8, generator=g()),
     InputError, ("data", "row 5")),
    ("pretrain float64 data", lambda: pretrain_maximum_likelihood(flow2(), data2().double(), n_steps=2, lr=1e-3,
                                                                  batch_size=8, generator=g()),
     InputError, ("data", "float64")),
    ("pretrain data of dim 3", lambda: pretrain_maximum_likelihood(flow2(), data2(dim=3), n_steps=2, lr=1e-3,
                                                                   batch_size=8, generator=g()),
     InputError, ("data", "dimension 3")),
    ("pretrain flow not a Flow", lambda: pretrain_maximum_likelihood(DiagonalGaussian(2), data2(), n_steps=2,
                                                                     lr=1e-3, batch_size=8, generator=g()),
     InputError, ("flow", "DiagonalGaussian")),
    ("pretrain n_steps -1", lambda: pretrain_maximum_likelihood(flow2(), data2(), n_steps=-1, lr=1e-3, batch_size=8,
                                                                generator=g()), InputError, ("n_steps", "-1")),
    ("reverse KL log_target text", lambda: pretrain_reverse_kl(flow2(), "p", n_steps=2, lr=1e-3, batch_size=8,
                                                               generator=g()), InputError, ("log_target", "str")),
    ("ML step NaN sample", lambda: maximum_likelihood_step(flow2(), torch.optim.SGD(flow2().parameters(), lr=0.1),
                                                           nan_row(3)), InputError, ("samples", "row 3")),
    # samplers
    ("mala step 0", lambda: mala(log_p, 0.0), InputError, ("step_size", "0")),
    ("mala step NaN", lambda: mala(log_p, NAN), InputError, ("step_size", "nan")),
    ("mala step inf", lambda: mala(log_p, INF), InputError, ("step_size", "inf")),
    ("mala target_acceptance 1.5", lambda: mala(log_p, 0.1, target_acceptance=1.5), InputError,
     ("target_acceptance", "1.5")),
    ("mala log_density text", lambda: mala("p", 0.1), InputError, ("log_density", "str")),
    ("ula step -1", lambda: ula(log_p, -1.0), InputError, ("step_size", "-1")),
    ("ula bounds reversed", lambda: ula(log_p, 0.1, bounds=(1.0, -1.0)), InputError, ("bounds", "(1.0, -1.0)")),
    ("ula bounds NaN", lambda: ula(log_p, 0.1, bounds=(0.0, NAN)), InputError, ("bounds", "nan")),
    ("ula max_drift 0", lambda: ula(log_p, 0.1, max_drift=0.0), InputError, ("max_drift", "0")),
    ("imh proposal object", lambda: imh(log_p, object()), InputError, ("proposal", "object")),
    ("isir n_particles 1", lambda: isir(log_p, DiagonalGaussian(2), 1), InputError, ("n_particles", "1")),
    ("isir proposal text", lambda: isir(log_p, "q", 4), InputError, ("proposal", "str")),
    ("flowmc schedule LLLL", lambda: flowmc("LLLL", kernel2(), kernel2()), InputError, ("schedule", "LLLL")),
    ("flowmc schedule GXL", lambda: flowmc("GXL", kernel2(), kernel2()), InputError, ("schedule", "GXL")),
    ("flowmc schedule empty", lambda: flowmc("", kernel2(), kernel2()), InputError, ("schedule", "''")),
    ("flowmc global_ text", lambda: flowmc("GL", kernel2(), "mala"), InputError, ("global_", "str")),
    ("validate_schedule int", lambda: validate_schedule(5), InputError, ("schedule", "5")),
    ("run_chains n_steps -1", lambda: run_chains(kernel2(), torch.zeros(4, 2), -1, g()), InputError,
     ("n_steps", "-1")),
    ("run_chains generator None", lambda: run_chains(kernel2(), torch.zeros(4, 2), 3, None), InputError,
     ("generator", "NoneType")),
    ("run_chains no chains", lambda: run_chains(kernel2(), torch.zeros(0, 2), 3, g()), InputError,
     ("start", "(0, 2)")),
    ("run_chains 1-D start", lambda: run_chains(kernel2(), torch.zeros(2), 3, g()), InputError, ("start", "(2,)")),
    ("run_chains kernel text", lambda: run_chains("mala", torch.zeros(4, 2), 3, g()), InputError,
     ("kernel", "str")),
    # methods: constructors
    ("FlowMCEBM lr 0", lambda: flowmc_method(lr=0.0), InputError, ("lr", "0")),
    ("FlowMCEBM lr NaN", lambda: flowmc_method(lr=NAN), InputError, ("lr", "nan")),
    ("FlowMCEBM schedule LLLL", lambda: flowmc_method(schedule="LLLL"), InputError, ("schedule", "LLLL")),
    ("FlowMCEBM n_particles 1", lambda: flowmc_method(n_particles=1), InputError, ("n_particles", "1")),
    ("FlowMCEBM step -0.1", lambda: flowmc_method(step_size=-0.1), InputError, ("step_size", "-0.1")),
    ("FlowMCEBM keep 3", lambda: flowmc_method(keep=3), InputError, ("keep", "3")),
    ("FlowMCEBM global_move hmc", lambda: flowmc_method(global_move="hmc"), InputError, ("global_move", "hmc")),
    ("FlowMCEBM make_flow 3", lambda: flowmc_method(make_flow=3), InputError, ("make_flow", "3")),
    ("FlowMCEBM ebm_average 1", lambda: flowmc_method(ebm_average=1.0), InputError, ("ebm_average", "1.0")),
    ("NTEBM pretrain kl", lambda: ntebm_method(pretrain="kl"), InputError, ("pretrain", "kl")),
    ("NTEBM target_acceptance 1.2", lambda: ntebm_method(target_acceptance=1.2), InputError,
     ("target_acceptance", "1.2")),
    ("NTEBM n_steps 0", lambda: ntebm_method(n_steps=0), InputError, ("n_steps", "0")),
    ("CoopFlow freeze -1", lambda: coopflow_method(freeze_iterations=-1), InputError, ("freeze_iterations", "-1")),
    ("CoopFlow max_drift 0", lambda: coopflow_method(max_drift=0.0), InputError, ("max_drift", "0")),
    ("CoopFlow noise text", lambda: coopflow_method(noise="yes"), InputError, ("noise", "yes")),
    ("ULAEBM init normal", lambda: ula_method(init="normal"), InputError, ("init", "normal")),
    ("ULAEBM box inf", lambda: ula_method(box=INF), InputError, ("box", "inf")),
    ("ULAEBM clip 1.5", lambda: ula_method(clip=1.5), InputError, ("clip", "1.5")),
    ("ULAEBM n_steps 2.0", lambda: ula_method(n_steps=2.0), InputError, ("n_steps", "2.0")),
    # methods: prepare
    ("prepare base of dim 3", lambda: ula_method().prepare(energy2(), DiagonalGaussian(3), data2(), g()),
     InputError, ("base", "dimension 3")),
    ("prepare data of dim 3", lambda: ula_method().prepare(energy2(), DiagonalGaussian(2), data2(dim=3), g()),
     InputError, ("data", "dimension 3")),
    ("prepare float64 data", lambda: ula_method().prepare(energy2(), DiagonalGaussian(2), data2().double(), g()),
     InputError, ("data", "float64")),
    ("prepare NaN row 5", lambda: ula_method().prepare(energy2(), DiagonalGaussian(2), nan_row(5), g()),
     InputError, ("data", "non-finite", "row 5")),
    ("prepare 1-D data", lambda: ula_method().prepare(energy2(), DiagonalGaussian(2), torch.zeros(8), g()),
     InputError, ("data", "(8,)")),
    ("prepare generator None", lambda: ula_method().prepare(energy2(), DiagonalGaussian(2), data2(), None),
     InputError, ("generator", "NoneType")),
    ("prepare energy text", lambda: ula_method().prepare("E", DiagonalGaussian(2), data2(), g()), InputError,
     ("energy", "str")),
    ("prepare reference 3", lambda: ula_method().prepare(energy2(), DiagonalGaussian(2), data2(), g(), 3),
     InputError, ("reference", "int")),
    # train: everything checked before the flow's pre-training (NT-EBM pre-trains: the Adam spy would fire)
    ("train NaN row 5", lambda: do_train(data=nan_row(5)), InputError, ("data", "non-finite", "row 5")),
    ("train epochs 0", lambda: do_train(epochs=0), InputError, ("epochs", "0")),
    ("train batch over n_data", lambda: do_train(batch_size=128, n_persistent=256), InputError,
     ("batch_size", "128", "64")),
    ("train batch over n_persistent", lambda: do_train(batch_size=16, n_persistent=8), InputError,
     ("n_persistent", "8")),
    ("train seed 2**70", lambda: do_train(seed=SEED_2_70), InputError, ("seed", str(SEED_2_70))),
    ("train device tpu", lambda: do_train(device="tpu"), InputError, ("device", "tpu")),
    ("train energy_l2 -1", lambda: do_train(energy_l2=-1.0), InputError, ("energy_l2", "-1")),
    ("train lr_decay factor 2", lambda: do_train(lr_decay=(2.0, 10)), InputError, ("lr_decay", "2.0")),
    ("train eval_every -1", lambda: do_train(eval_every=-1), InputError, ("eval_every", "-1")),
    ("train stop_after 0", lambda: do_train(stop_after=0), InputError, ("stop_after", "0")),
    ("train evaluate 3", lambda: do_train(evaluate=3), InputError, ("evaluate", "3")),
    ("train batch_transform text", lambda: do_train(batch_transform="flip"), InputError, ("batch_transform", "str")),
    ("train divergence 3", lambda: do_train(divergence=3), InputError, ("divergence", "int")),
    ("train checkpoint path", lambda: do_train(checkpoint="run.pt"), InputError, ("checkpoint", "str")),
    ("train method text", lambda: do_train(method="flowmc"), InputError, ("method", "str")),
    ("train numpy data", lambda: do_train(data=np.zeros((64, 2), np.float32)), InputError, ("data", "ndarray")),
    ("train int64 data", lambda: do_train(data=torch.zeros(64, 2, dtype=torch.int64)), InputError,
     ("data", "int64")),
    ("train NaN energy", lambda: do_train(energy=nan_energy()), InputError, ("energy", "non-finite")),
    ("train reference 3", lambda: do_train(reference=3), InputError, ("reference", "int")),
    ("train data of dim 3", lambda: do_train(data=data2(dim=3)), InputError, ("data", "dimension 3")),
    ("train base of dim 3", lambda: do_train(base=DiagonalGaussian(3)), InputError, ("base", "dimension 3")),
    ("train flowMC n_particles 1", lambda: do_train(method=flowmc_method(n_particles=1)), InputError,
     ("n_particles", "1")),
    # fit_ebm
    ("fit_ebm unprepared method", lambda: FIT_EBM(data2(), energy2(), ula_method(), epochs=1, batch_size=16,
                                                  n_persistent=32, generator=g()), InputError, ("prepare",)),
    ("fit_ebm other energy", lambda: do_fit(method=prepared()[0], energy=energy2()), InputError, ("prepare",)),
    ("fit_ebm generator None", lambda: do_fit(generator=None), InputError, ("generator", "NoneType")),
    ("fit_ebm batch_size 0", lambda: do_fit(batch_size=0), InputError, ("batch_size", "0")),
    ("fit_ebm n_persistent 2.5", lambda: do_fit(n_persistent=2.5), InputError, ("n_persistent", "2.5")),
    ("fit_ebm NaN row 7", lambda: do_fit(data=nan_row(7)), InputError, ("data", "row 7")),
    ("fit_ebm batch_transform gives NaN", lambda: do_fit(batch_transform=lambda x, gen: x * NAN), InputError,
     ("batch_transform", "non-finite", "row 0")),
    ("fit_ebm batch_transform gives float64", lambda: do_fit(batch_transform=lambda x, gen: x.double()), InputError,
     ("batch_transform", "float64")),
    ("fit_ebm batch_transform changes dim", lambda: do_fit(batch_transform=lambda x, gen: x[:, :1]), InputError,
     ("batch_transform", "dimension 1")),
    # divergence rule, checkpoint, estimators, metrics, records, callbacks
    ("DivergenceRule gap 0", lambda: DivergenceRule(max_energy_gap=0.0), InputError, ("max_energy_gap", "0")),
    ("DivergenceRule gap NaN", lambda: DivergenceRule(max_energy_gap=NAN), InputError, ("max_energy_gap", "nan")),
    ("DivergenceRule box -1", lambda: DivergenceRule(box=-1.0), InputError, ("box", "-1")),
    ("Checkpoint fingerprint list", lambda: Checkpoint("c.pt", [1]), InputError, ("fingerprint", "list")),
    ("Checkpoint every_iterations 0", lambda: Checkpoint("c.pt", {}, every_iterations=0), InputError,
     ("every_iterations", "0")),
    ("Checkpoint every_seconds -1", lambda: Checkpoint("c.pt", {}, every_seconds=-1), InputError,
     ("every_seconds", "-1")),
    ("Checkpoint path None", lambda: Checkpoint(None, {}), InputError, ("path", "None")),
    ("Grid2D NaN low", lambda: Grid2D(NAN, 1.0, 10), InputError, ("low", "nan")),
    ("Grid2D size 2.5", lambda: Grid2D(-1.0, 1.0, 2.5), InputError, ("grid size", "2.5")),
    ("Grid2D high < low", lambda: Grid2D(1.0, -1.0, 10), InputError, ("high", "-1.0")),
    ("zone weights no sample", lambda: zone_weights_of_samples(torch.zeros(0, 2), mode_of, 2), InputError,
     ("sample", "(0, 2)")),
    ("zone weights n_zones 0", lambda: zone_weights_of_samples(torch.zeros(3, 2), mode_of, 0), InputError,
     ("n_zones", "0")),
    ("median error empty", lambda: median_squared_log_error(torch.zeros(0), torch.zeros(0)), InputError,
     ("evaluation point",)),
    ("median error shapes", lambda: median_squared_log_error(torch.zeros(3), torch.zeros(4)), InputError,
     ("(3,)", "(4,)")),
    ("zone_mse shapes", lambda: zone_mse(torch.zeros(3), torch.zeros(4)), InputError, ("(3,)", "(4,)")),
    ("max_rhat 2 draws", lambda: max_rhat(torch.zeros(2, 4, 2)), InputError, ("draws", "(2, 4, 2)")),
    ("thin max_draws 0", lambda: thin(torch.zeros(5, 2, 2), 0), InputError, ("max_draws", "0")),
    ("log normalizer text", lambda: log_normalizer_on_grid("f", Grid2D(-1.0, 1.0, 4)), InputError,
     ("log_unnormalized", "str")),
    ("normalized density 3-D points", lambda: normalized_log_density_at(log_p, torch.zeros(3, 3),
                                                                        Grid2D(-1.0, 1.0, 4)), InputError,
     ("points", "(3, 3)")),
    ("mixing diagnostics 2-D", lambda: mixing_diagnostics(torch.zeros(5, 2), mode_of), InputError,
     ("trajectory", "(5, 2)")),
    ("snis n_modes 1", lambda: snis(n_modes=1), InputError, ("n_modes", "1")),
    ("snis n_samples 1", lambda: snis(n_samples=1), InputError, ("n_samples", "1")),
    ("snis generator None", lambda: snis(generator=None), InputError, ("generator", "NoneType")),
    ("ais inflation 0", lambda: ais(inflation=0.0), InputError, ("inflation", "0")),
    ("ais target_acceptance 1", lambda: ais(target_acceptance=1.0), InputError, ("target_acceptance", "1.0")),
    ("ais n_steps -1", lambda: ais(n_steps=-1), InputError, ("n_steps", "-1")),
    ("ais 3 samples for 2 modes", lambda: ais(n_samples=3), InputError, ("n_samples", "3")),
    ("ais a mode with 1 point", lambda: ais(data=torch.tensor([[1.0, 0.0], [2.0, 0.0], [-1.0, 0.0]])), InputError,
     ("mode", "1 data point")),
    ("chain_evaluation measure 3", lambda: chain_evaluation(3, 2, seed=0, stream="s", n_chains=4), InputError,
     ("measure", "3")),
    ("chain_evaluation seed -1", lambda: chain_evaluation(len, 2, seed=-1, stream="s", n_chains=4), InputError,
     ("seed", "-1")),
    ("summarize no records", lambda: summarize([]), MixedRecordsError, ("no records",)),
]


@pytest.mark.parametrize("call, error, names", [pytest.param(*case[1:], id=case[0]) for case in LIBRARY])
def test_library_refuses_bad_input_before_any_work(no_work, call, error, names):
    start = time.perf_counter()
    with pytest.raises(error) as raised:
        call()
    _sentence(str(raised.value))
    _names_all(str(raised.value), names)
    assert time.perf_counter() - start < 5, "a check must not wait for work"


# --- chapter configurations ---------------------------------------------------------------------------------------

def configure(name: str, profile: str = "smoke", **overrides):
    """What ``ebmflow run`` checks before starting a kernel (``normalized_overrides``)."""
    chapter = CHAPTERS[name]
    return chapter.validate(resolve_config(chapter.config_cls, chapter.profiles, profile, **overrides))


def _fields(name: str) -> dict[str, type]:
    cls = CHAPTERS[name].config_cls
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


CONFIG_CASES = []
for _name in EXPERIMENTS:
    _f = _fields(_name)
    CONFIG_CASES += [
        (_name, "unknown name epoch", dict(epoch=5), ("epoch", "epochs")),  # the accepted ones are listed
        (_name, "seed 2**70", dict(seed=SEED_2_70), ("seed", str(SEED_2_70))),
        (_name, "seed -1", dict(seed=-1), ("seed", "-1")),
        (_name, "seed True", dict(seed=True), ("seed", "True")),
        (_name, "device tpu", dict(device="tpu"), ("device", "tpu")),
        (_name, "stop_after -1", dict(stop_after=-1), ("stop_after", "-1")),
        (_name, "epochs 10**9 as text", dict(epochs="1000000000"), ("epochs", "'1000000000'")),
    ]
    if {"batch_size", "n_data"} <= set(_f):
        CONFIG_CASES.append((_name, "batch over n_data", dict(batch_size=10**6, n_persistent=10**6),
                             ("batch_size", "n_data")))
    if {"batch_size", "n_persistent"} <= set(_f):
        CONFIG_CASES.append((_name, "batch over n_persistent", dict(n_persistent=1), ("batch_size", "n_persistent")))
    if "flowmc_schedule" in _f:
        CONFIG_CASES.append((_name, "schedule without G", dict(flowmc_schedule="LLLL"), ("schedule", "LLLL")))
    if "n_particles" in _f:
        CONFIG_CASES.append((_name, "n_particles 1", dict(n_particles=1), ("n_particles", "1")))
    if "coopflow_freeze_fraction" in _f:
        CONFIG_CASES.append((_name, "freeze fraction 1", dict(coopflow_freeze_fraction=1.0),
                             ("coopflow_freeze_fraction", "1.0")))
    if "test_fraction" in _f:
        CONFIG_CASES.append((_name, "test_fraction 1", dict(test_fraction=1.0), ("test_fraction", "1.0")))
    if "lr_decay" in _f:
        CONFIG_CASES.append((_name, "lr_decay 2", dict(lr_decay=2.0), ("lr_decay", "2.0")))
CONFIG_CASES += [
    ("01_motivating_example", "grid_size 1", dict(grid_size=1), ("grid_size", "1")),
    ("02_toy_benchmarks", "flowmc_keep 7", dict(flowmc_keep=7), ("flowmc_keep", "7")),
    ("02_toy_benchmarks", "grid_size 1", dict(grid_size=1), ("grid_size", "1")),
    ("03_extended_example", "flowmc_keep 3", dict(flowmc_keep=3), ("flowmc_keep", "3")),
    ("04_high_dim_mixture", "rhat_length 0.001", dict(rhat_length=0.001), ("rhat_length",)),
    ("04_high_dim_mixture", "max_misassignment 2", dict(max_misassignment=2.0), ("max_misassignment", "2.0")),
    ("05_images", "dataset mnist", dict(dataset="mnist"), ("dataset", "mnist")),
    ("05_images", "cifar10 missing", dict(dataset="cifar10", data_root="/nonexistent/cifar"),
     ("data_root", "/nonexistent/cifar", "data_batch_1")),
    ("06_class_weights", "class 11", dict(classes=(0, 1, 11)), ("classes", "11")),
    ("06_class_weights", "classes as words", dict(classes=("a", "b", "c")), ("classes", "a")),
    ("06_class_weights", "proportions sum 1.1", dict(proportions=(0.5, 0.5, 0.1)), ("proportions", "1.1")),
    ("06_class_weights", "one proportion short", dict(proportions=(0.5, 0.5)), ("proportions", "0.5, 0.5")),
    ("06_class_weights", "repeated class", dict(classes=(1, 1, 7)), ("classes", "1, 1, 7")),
    ("06_class_weights", "measure_schedule LL", dict(measure_schedule="LL"), ("schedule", "LL")),
    ("06_class_weights", "confidence 1", dict(confidence=1.0), ("confidence", "1.0")),
    ("07_mode_weights", "weights sum 0.9", dict(weights=(0.1, 0.2, 0.3, 0.3)), ("weights", "0.9")),
    ("07_mode_weights", "three weights", dict(weights=(0.2, 0.3, 0.5)), ("weights", "3 numbers")),
    ("07_mode_weights", "odd dimension", dict(dims=(3,)), ("dims", "3")),
    ("07_mode_weights", "window 2", dict(window=2.0), ("window", "2.0")),
    ("07_mode_weights", "ebm_average 1", dict(ebm_average=1.0), ("ebm_average", "1.0")),
]


@pytest.mark.parametrize("name, overrides, names",
                         [pytest.param(c[0], c[2], c[3], id=f"{c[0]}-{c[1]}") for c in CONFIG_CASES])
def test_chapter_config_refuses_bad_parameters(no_work, name, overrides, names):
    with pytest.raises(ConfigError) as raised:
        configure(name, **overrides)
    _sentence(str(raised.value))
    _names_all(str(raised.value), names)


def _bad_value(kind: type, name: str, non_negative: tuple[str, ...]):
    """An out-of-range (int: below the minimum) or non-finite (float: NaN) value of a field, None for str."""
    if kind is int:
        return -1 if name in non_negative or name == "seed" else 0
    if kind is float:
        return NAN
    return None


FIELD_CASES = []  # for every field of every chapter: a wrong type, and a value out of range (int) or NaN (float)
for _name in EXPERIMENTS:
    _non_negative = getattr(CHAPTERS[_name].config_cls, "NON_NEGATIVE", ())
    for _field, _kind in _fields(_name).items():
        if typing.get_origin(_kind) is tuple:  # a list parameter (weights, dims, targets): a list of the wrong items
            _element = typing.get_args(_kind)[0]
            _wrong = [1, 2] if _element is str else ["a", "b"]
            FIELD_CASES.append((_name, _field, _wrong, (_field, repr(_wrong), _element.__name__)))
            continue  # its out-of-range values: tests/test_targets_params.py
        FIELD_CASES.append((_name, _field, [1, 2], (_field, "[1, 2]", _kind.__name__)))
        _value = _bad_value(_kind, _field, _non_negative)
        if _value is not None:
            FIELD_CASES.append((_name, _field, _value, (_field, repr(_value))))


@pytest.mark.parametrize("name, field, value, names",
                         [pytest.param(*c, id=f"{c[0]}-{c[1]}={c[2]!r}") for c in FIELD_CASES])
def test_every_chapter_field_refuses_a_wrong_type_and_a_bad_value(no_work, name, field, value, names):
    with pytest.raises(ConfigError) as raised:
        configure(name, **{field: value})
    _sentence(str(raised.value))
    _names_all(str(raised.value), names)


NAMESPACE_CASES = [(name, "epoch") for name in EXPERIMENTS] + [("01_motivating_example", "lr_flowmc"),
                                                                ("02_toy_benchmarks", "lr")]


@pytest.mark.parametrize("name, unknown", NAMESPACE_CASES)
def test_a_name_injected_into_the_parameters_cell_that_is_no_parameter_is_refused(no_work, name, unknown):
    """What plain ``papermill -p epoch 5`` does to the kernel: an extra assignment after the parameters cell."""
    namespace = {"_ih": ["", "# Parameters\nprofile = 'smoke'\n", f"# Parameters\nprofile = 'smoke'\n{unknown} = 5\n"]}
    with pytest.raises(ConfigError) as raised:
        chapter_config(name, "smoke", namespace)
    _sentence(str(raised.value))
    _names_all(str(raised.value), (unknown, "accepted parameters", "profile", "seed"))


# --- the command line, in-process ---------------------------------------------------------------------------------

def _cli_cases(tmp: Path) -> list[tuple[str, list[str], tuple[str, ...]]]:
    run = ["run", "01_motivating_example", "--profile", "smoke", "--output", str(tmp / "out.ipynb")]
    return [
        ("--seed 2**70", [*run, "--seed", str(SEED_2_70)], ("seed", str(SEED_2_70))),
        ("-p seed=2**70", [*run, "-p", f"seed={SEED_2_70}"], ("seed", str(SEED_2_70))),
        ("--seed -1", [*run, "--seed", "-1"], ("seed", "-1")),
        ("--seed abc", [*run, "--seed", "abc"], ("--seed", "abc")),
        ("-p seed=True", [*run, "-p", "seed=True"], ("seed", "True")),
        ("-p seed=1.5", [*run, "-p", "seed=1.5"], ("seed", "1.5")),
        ("-p epoch=5", [*run, "-p", "epoch=5"], ("epoch", "accepted parameters", "epochs")),
        ("-p lr_flowmc=1e-3 (chapter 02's name)", [*run, "-p", "lr_flowmc=1e-3"], ("lr_flowmc",)),
        ("-p profile=paper", [*run, "-p", "profile=paper"], ("profile", "--profile paper")),
        ("--profile huge", [*run, "--profile", "huge"], ("profile", "huge")),
        ("unknown chapter", ["run", "99_nope"], ("chapter", "99_nope")),
        ("-p lr=nan", [*run, "-p", "lr=nan"], ("lr", "nan")),
        ("-p lr=inf", [*run, "-p", "lr=inf"], ("lr", "inf")),
        ("-p lr=1e400", [*run, "-p", "lr=1e400"], ("lr", "inf")),
        ("-p lr=-0.1", [*run, "-p", "lr=-0.1"], ("lr", "-0.1")),
        ("-p batch_size=0", [*run, "-p", "batch_size=0"], ("batch_size", "0")),
        ("-p batch_size=2.5", [*run, "-p", "batch_size=2.5"], ("batch_size", "2.5")),
        ("-p batch_size over n_data", [*run, "-p", "batch_size=100000", "-p", "n_persistent=100000"],
         ("batch_size", "100000", "n_data")),
        ("-p flowmc_schedule=LLLL", [*run, "-p", "flowmc_schedule=LLLL"], ("schedule", "LLLL")),
        ("-p flowmc_schedule=GLX", [*run, "-p", "flowmc_schedule=GLX"], ("schedule", "GLX")),
        ("-p n_particles=1", [*run, "-p", "n_particles=1"], ("n_particles", "1")),
        ("-p grid_size=1", [*run, "-p", "grid_size=1"], ("grid_size", "1")),
        ("-p stop_after=-1", [*run, "-p", "stop_after=-1"], ("stop_after", "-1")),
        ("-p seed (no value)", [*run, "-p", "seed"], ("seed", "name=value")),
        ("-p =3 (no name)", [*run, "-p", "=3"], ("=3", "name=value")),
        ("-p device=tpu", [*run, "-p", "device=tpu"], ("device", "tpu")),
        ("--device tpu", [*run, "--device", "tpu"], ("--device", "tpu")),
        ("-p epochs twice", [*run, "-p", "epochs=1", "-p", "epochs=2"], ("epochs", "twice")),
        ("--seed and -p seed", [*run, "--seed", "1", "-p", "seed=2"], ("seed", "contradicts")),
        ("--output a directory", [*run[:-1], str(tmp / "adir")], ("--output", "adir", "directory")),
        ("--output not a notebook", [*run[:-1], str(tmp / "x.txt")], ("--output", "x.txt", ".ipynb")),
        ("--output another chapter's notebook", [*run[:-1], str(BOOK_DIR / "02_toy_benchmarks.ipynb")],
         ("--output", "02_toy_benchmarks")),
        ("--output in an unwritable folder", [*run[:-1], "/proc/ebmflow-test/x.ipynb"],
         ("--output", "/proc", "cannot write")),
        ("--output under a file", [*run[:-1], str(tmp / "afile" / "x.ipynb")], ("--output", "afile", "not a folder")),
        ("--output name too long", [*run[:-1], str(tmp / ("a" * 300 + ".ipynb"))], ("--output", "too long")),
        ("--output empty", [*run[:-1], ""], ("--output", "directory")),
        ("-p epochs=10**9 (an expression)", [*run, "-p", "epochs=10**9"], ("epochs", "'10**9'")),
        ("intro takes no seed", ["run", "intro", "--seed", "3"], ("seed", "no parameter")),
        ("run without chapter", ["run"], ("chapter",)),
        ("unknown command", ["frobnicate"], ("frobnicate",)),
        ("unknown option", [*run, "--bogus"], ("--bogus",)),
        ("report with an argument", ["report", "extra"], ("extra",)),
        ("sweep --seeds 2**70", ["sweep", "01_motivating_example", "--inline", "--seeds", str(SEED_2_70)],
         ("--seeds", str(SEED_2_70))),
        ("sweep --seeds 0-99999", ["sweep", "01_motivating_example", "--inline", "--seeds", "0-99999"],
         ("--seeds", "0-99999")),
        ("sweep --seeds 3-1", ["sweep", "01_motivating_example", "--inline", "--seeds", "3-1"], ("--seeds", "3-1")),
        ("sweep --seeds a", ["sweep", "01_motivating_example", "--inline", "--seeds", "a"], ("--seeds", "'a'")),
        ("sweep --threads 0", ["sweep", "01_motivating_example", "--inline", "--threads", "0"], ("--threads", "0")),
        ("sweep --threads 10**6", ["sweep", "01_motivating_example", "--threads", "1000000"],
         ("--threads", "1000000")),
        ("sweep -p epoch=3", ["sweep", "01_motivating_example", "--inline", "-p", "epoch=3"], ("epoch",)),
        ("reproduce -p epochs=0", ["reproduce", "--inline", "-p", "epochs=0"], ("epochs", "0")),
        ("reproduce --seeds x", ["reproduce", "--inline", "--seeds", "x"], ("--seeds", "'x'")),
        ("06 class 11", ["run", "06_class_weights", "-p", "classes=0,1,11"], ("classes", "0, 1, 11")),
        ("06 proportions sum 1.1", ["run", "06_class_weights", "-p", "proportions=0.5,0.5,0.1"],
         ("proportions", "1.1")),
        ("07 weights sum 0.9", ["run", "07_mode_weights", "-p", "weights=0.1,0.2,0.3,0.3"], ("weights", "0.9")),
        ("07 dims 3", ["run", "07_mode_weights", "-p", "dims=3"], ("dims", "3")),
        ("02 flowmc_keep 7", ["run", "02_toy_benchmarks", "-p", "flowmc_keep=7"], ("flowmc_keep", "7")),
        ("03 freeze fraction 1", ["run", "03_extended_example", "-p", "coopflow_freeze_fraction=1.0"],
         ("coopflow_freeze_fraction", "1.0")),
        ("04 rhat_length 0.001", ["run", "04_high_dim_mixture", "-p", "rhat_length=0.001"], ("rhat_length",)),
        ("05 dataset mnist", ["run", "05_images", "-p", "dataset=mnist"], ("dataset", "mnist")),
        ("05 paper without CIFAR-10", ["run", "05_images", "--profile", "paper", "-p", f"data_root={tmp}"],
         ("CIFAR-10", "data_root", str(tmp))),
    ]


CLI_IDS = [case[0] for case in _cli_cases(Path("/nonexistent"))]


@pytest.mark.parametrize("case", CLI_IDS)
def test_cli_refuses_bad_input_with_one_line_and_status_2(no_work, tmp_path, capsys, case):
    (tmp_path / "afile").write_text("")
    (tmp_path / "adir").mkdir()
    _, argv, names = next(c for c in _cli_cases(tmp_path) if c[0] == case)
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith("ebmflow: error: "), captured.err
    _sentence(captured.err)
    _names_all(captured.err, names)
    assert "estimated" not in captured.out  # refused before the run's announcement


def _write_checkpoints_of_another_run(output: Path) -> None:
    folder = output.parent / f".{output.stem}.checkpoints"
    folder.mkdir(parents=True)
    (folder / "run.json").write_text(json.dumps({"chapter": "01_motivating_example", "seed": 99}))


def test_cli_resume_refuses_checkpoints_of_another_run_before_the_kernel(no_work, tmp_path, capsys):
    output = tmp_path / "out.ipynb"
    _write_checkpoints_of_another_run(output)
    assert main(["run", "01_motivating_example", "--profile", "smoke", "--output", str(output), "--resume"]) == 2
    err = capsys.readouterr().err
    _sentence(err)
    _names_all(err, ("checkpoints", str(output.parent), "another run", "without --resume"))


def test_cli_a_failure_during_the_run_is_one_line_with_status_1_and_a_log(no_work, tmp_path, capsys, monkeypatch):
    import papermill
    from papermill.exceptions import PapermillExecutionError

    def failing(*args, **kwargs):
        raise PapermillExecutionError(cell_index=3, exec_count=3, source="train_all(config)",
                                      ename="RuntimeError", evalue="CUDA out of memory",
                                      traceback=["Traceback (most recent call last):", "  ...",
                                                 "RuntimeError: CUDA out of memory"])

    monkeypatch.setattr(papermill, "execute_notebook", failing)
    output = tmp_path / "out.ipynb"
    assert main(["run", "01_motivating_example", "--profile", "smoke", "--output", str(output)]) == 1
    err = capsys.readouterr().err
    _sentence(err)
    _names_all(err, ("ebmflow: error: 01_motivating_example failed", "RuntimeError: CUDA out of memory",
                     "full traceback"))
    log = Path(re.search(r"full traceback: (\S+)\)", err).group(1))
    assert "CUDA out of memory" in log.read_text() and not output.exists()


def test_cli_a_failure_after_the_notebook_ran_is_one_line_with_status_1(no_work, tmp_path, capsys, monkeypatch):
    """The kernel "succeeded" but wrote no notebook: a failure of the run (1), not bad input (2)."""
    import papermill

    monkeypatch.setattr(papermill, "execute_notebook", lambda *args, **kwargs: None)
    assert main(["run", "01_motivating_example", "--profile", "smoke", "--output", str(tmp_path / "x.ipynb")]) == 1
    err = capsys.readouterr().err
    _sentence(err)
    _names_all(err, ("ebmflow: error: 01_motivating_example failed", "FileNotFoundError", "full traceback"))


def test_cli_an_unexpected_failure_of_a_command_is_one_line_with_status_1(no_work, capsys, monkeypatch):
    from ebmflow.book import report

    monkeypatch.setattr(report, "load_evidence", _spy_error(RuntimeError("the disk went away")))
    assert main(["report"]) == 1
    err = capsys.readouterr().err
    _sentence(err)
    _names_all(err, ("ebmflow: error: report failed", "RuntimeError: the disk went away", "full traceback"))


def _spy_error(error: Exception):
    def raising(*args, **kwargs):
        raise error
    return raising


# --- the command line, in subprocesses (what a terminal shows), and plain papermill --------------------------------

SUBPROCESS_CASES = {
    "seed 2**70": (["run", "01_motivating_example", "--seed", str(SEED_2_70)], ("seed", str(SEED_2_70))),
    "-p epoch=5": (["run", "01_motivating_example", "-p", "epoch=5"], ("epoch", "accepted parameters")),
    "unknown command": (["frobnicate"], ("frobnicate",)),
    "unwritable --output": (["run", "01_motivating_example", "--output", "/proc/ebmflow-test/x.ipynb"],
                            ("--output", "cannot write")),
}
PAPERMILL_CASES = {  # each starts a kernel: a handful, in parallel
    "epoch 5": (["-p", "epoch", "5"], "ConfigError", ("epoch", "accepted parameters")),
    "seed -1": (["-p", "seed", "-1"], "ConfigError", ("seed", "-1")),
    "flowmc_schedule LLLL": (["-p", "flowmc_schedule", "LLLL"], "ConfigError", ("schedule", "LLLL")),
}


@pytest.fixture(scope="module")
def processes(tmp_path_factory):
    """Every subprocess case started at once (each imports torch; papermill cases start a kernel); their results."""
    tmp = tmp_path_factory.mktemp("processes")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
           "EBMFLOW_RESULTS_DIR": str(tmp / "results"), "EBMFLOW_LOG_DIR": str(tmp / "logs")}
    started = {}
    for name, (argv, _) in SUBPROCESS_CASES.items():
        started["cli", name] = (subprocess.Popen([sys.executable, "-m", "ebmflow", *argv], cwd=tmp, env=env,
                                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True), None)
    results = {}
    for key, (process, output) in started.items():
        out, err = process.communicate(timeout=240)
        results[key] = (process.returncode, out, err, output)
    notebook = BOOK_DIR / "01_motivating_example.ipynb"
    for i, (name, (argv, _, _)) in enumerate(PAPERMILL_CASES.items()):  # one kernel at a time: robust under load
        output = tmp / f"papermill{i}.ipynb"
        process = subprocess.run([sys.executable, "-m", "papermill", str(notebook), str(output), "-p", "profile",
                                  "smoke", *argv, "--cwd", str(BOOK_DIR), "-k", "python3", "--start-timeout", "180"],
                                 cwd=tmp, env=env, capture_output=True, text=True, timeout=400)
        results["papermill", name] = (process.returncode, process.stdout, process.stderr, output)
    return results


@pytest.mark.parametrize("case", list(SUBPROCESS_CASES))
def test_the_terminal_shows_one_error_line_and_status_2(processes, case):
    returncode, out, err, _ = processes["cli", case]
    assert returncode == 2, err
    assert err.startswith("ebmflow: error: "), err
    _sentence(err)
    _names_all(err, SUBPROCESS_CASES[case][1])
    assert "estimated" not in out


@pytest.mark.parametrize("case", list(PAPERMILL_CASES))
def test_plain_papermill_stops_in_the_set_up_cell_naming_the_parameter(processes, case):
    returncode, _, err, output = processes["papermill", case]
    _, error_name, names = PAPERMILL_CASES[case]
    assert returncode != 0
    assert error_name in err
    _names_all(err.split(error_name)[-1], names)
    cells = [c for c in nbformat.read(output, as_version=4).cells if c.cell_type == "code"]
    failed = next(i for i, c in enumerate(cells) if c.metadata.get("papermill", {}).get("exception"))
    assert "chapter_config" in cells[failed].source  # the set-up cell, before any training cell
    assert all(c.execution_count is None for c in cells[failed + 1:])


# --- the report: damaged notebooks and values that are not numbers ---------------------------------------------------

def _glue_notebook(values: dict[str, str]):
    notebook = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("glue_numbers(...)")
    cell.outputs = [nbformat.v4.new_output("display_data", data={"text/plain": text},
                                           metadata={"scrapbook": {"name": key, "mime_prefix": ""}})
                    for key, text in values.items()]
    notebook.cells.append(cell)
    return notebook


def _claim_keys(name: str) -> list[str]:
    from ebmflow.book.report import _claim_keys as keys

    return keys(name)


@pytest.fixture
def book(tmp_path, monkeypatch):
    """An empty book/ folder the report reads instead of the repository's."""
    folder = tmp_path / "book"
    folder.mkdir()
    monkeypatch.setattr(chapters_module, "BOOK_DIR", folder)
    return folder


REPORT_DAMAGE = {
    "truncated JSON": ('{"cells": [', "cannot be read"),
    "empty file": ("", "cannot be read"),
    "JSON that is not a notebook": ('{"a": 1}', "cannot be read"),
    "binary garbage": ("\x00\x01\x02", "cannot be read"),
}


@pytest.mark.parametrize("damage", list(REPORT_DAMAGE))
def test_report_names_a_damaged_notebook(no_work, book, capsys, damage):
    notebook = book / "01_motivating_example.ipynb"
    notebook.write_text(REPORT_DAMAGE[damage][0])
    assert main(["report"]) == 2
    err = capsys.readouterr().err
    _sentence(err)
    _names_all(err, (str(notebook), REPORT_DAMAGE[damage][1], "ebmflow run 01_motivating_example"))


@pytest.mark.parametrize("text", ["'high'", "[0.5]", "None"])
def test_report_names_a_value_that_is_not_a_number(no_work, book, capsys, text):
    keys = _claim_keys("01_motivating_example")
    notebook = book / "01_motivating_example.ipynb"
    nbformat.write(_glue_notebook({**{k: "0.5" for k in keys}, keys[0]: text}), notebook)
    assert main(["report"]) == 2
    err = capsys.readouterr().err
    _sentence(err)
    _names_all(err, (str(notebook), keys[0], text.strip("'")))


def test_report_accepts_nan_with_a_warning_naming_the_notebook_key_and_value(no_work, book, capsys):
    """NaN is a diverged run's value (its claim counts it as the worst): accepted, with a warning line."""
    keys = _claim_keys("01_motivating_example")
    notebook = book / "01_motivating_example.ipynb"
    nbformat.write(_glue_notebook({**{k: "0.5" for k in keys}, keys[0]: "np.float64(nan)"}), notebook)
    assert main(["report"]) == 0
    captured = capsys.readouterr()
    warnings = [line for line in captured.err.splitlines() if line.startswith("ebmflow: warning: ")]
    assert len(warnings) == 1
    _names_all(warnings[0], (str(notebook), keys[0], "nan"))
    assert "does not hold" in captured.out


@pytest.mark.parametrize("call, error, names", [
    pytest.param(lambda tmp: read_glued(tmp / "missing.ipynb"), GluedError, ("missing.ipynb", "cannot be read"),
                 id="read_glued missing file"),
    pytest.param(lambda tmp: check_numbers(tmp / "n.ipynb", {"k": "abc"}, ["k"]), GluedError,
                 ("n.ipynb", "'k'", "'abc'"), id="check_numbers text"),
    pytest.param(lambda tmp: check_numbers(tmp / "n.ipynb", {"k": True}, ["k"]), GluedError,
                 ("n.ipynb", "'k'", "True"), id="check_numbers bool"),
    pytest.param(lambda tmp: __import__("ebmflow.book.report", fromlist=["load_glued"]).load_glued(["99_nope"]),
                 InputError, ("99_nope", "chapters"), id="load_glued unknown chapter"),
])
def test_report_library_calls_name_the_file_and_value(no_work, tmp_path, call, error, names):
    with pytest.raises(error) as raised:
        call(tmp_path)
    _sentence(str(raised.value))
    _names_all(str(raised.value), names)


# --- data files: damaged CIFAR-10 pickles, the digits loader, checkpoints, records -----------------------------------

def _batch(n: int = 4, replace: dict | None = None) -> dict:
    batch = {b"data": np.zeros((n, 3072), np.uint8), b"labels": list(range(n)), b"batch_label": b"test"}
    batch.update(replace or {})
    return batch


def _cifar(root: Path, damaged: str | None = None, content: bytes | None = None) -> Path:
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for name in CIFAR10_FILES:
        (folder / name).write_bytes(pickle.dumps(_batch()))
    if damaged is not None:
        (folder / damaged).write_bytes(content)
    return folder / (damaged or CIFAR10_FILES[0])


GOOD = pickle.dumps(_batch())
CIFAR_DAMAGE = {  # the damaged file's content, and what the message must say besides the file and the source
    "truncated": (GOOD[: len(GOOD) // 2], ("damaged",)),
    "empty": (b"", ("damaged",)),
    "not a pickle": (b"<html>404 Not Found</html>", ("damaged",)),
    "a pickled list": (pickle.dumps([1, 2, 3]), ("list",)),
    "no labels key": (pickle.dumps({b"data": np.zeros((4, 3072), np.uint8)}), ("'labels'",)),
    "str keys without data": (pickle.dumps({"labels": [0]}), ("'data'",)),
    "float pixels in [0, 1)": (pickle.dumps(_batch(replace={b"data": np.full((4, 3072), 0.5, np.float32)})),
                               ("float32", "0.5", "uint8")),
    "pixels above 255": (pickle.dumps(_batch(replace={b"data": np.full((4, 3072), 300, np.int32)})), ("0..255",)),
    "negative pixels": (pickle.dumps(_batch(replace={b"data": np.full((4, 3072), -1, np.int16)})), ("0..255",)),
    "rows of 100 values": (pickle.dumps(_batch(replace={b"data": np.zeros((4, 100), np.uint8)})), ("(4, 100)", "3072")),
    "no image": (pickle.dumps(_batch(replace={b"data": np.zeros((0, 3072), np.uint8), b"labels": []})), ("(0, 3072)",)),
    "label 10": (pickle.dumps(_batch(replace={b"labels": [0, 1, 2, 10]})), ("labels", "0..9")),
    "labels one short": (pickle.dumps(_batch(replace={b"labels": [0, 1, 2]})), ("labels", "(3,)")),
    "float labels": (pickle.dumps(_batch(replace={b"labels": [0.5, 1.0, 2.0, 3.0]})), ("labels", "float64")),
}


CIFAR_CASES = [(damage, "data_batch_3") for damage in CIFAR_DAMAGE] + [
    (damage, "test_batch") for damage in ("truncated", "float pixels in [0, 1)", "label 10")]


@pytest.mark.parametrize("damage, which", CIFAR_CASES)
def test_a_damaged_cifar10_file_is_named_with_how_to_get_a_good_copy(no_work, tmp_path, damage, which):
    content, names = CIFAR_DAMAGE[damage]
    path = _cifar(tmp_path, which, content)
    with pytest.raises(ImageDataError) as raised:
        load_cifar10(tmp_path)
    _sentence(str(raised.value))
    _names_all(str(raised.value), (str(path), "cifar-10-python.tar.gz", *names))


DATA_CASES = [
    ("cifar10 folder empty", lambda tmp: load_cifar10(tmp), ImageDataError, ("CIFAR-10 not found", "data_root",
                                                                             "data_batch_1", "test_batch")),
    ("cifar10 a file is a folder", lambda tmp: (_cifar(tmp), (tmp / "cifar-10-batches-py" / "test_batch").unlink(),
                                                (tmp / "cifar-10-batches-py" / "test_batch").mkdir(),
                                                load_cifar10(tmp)), ImageDataError, ("missing: test_batch",)),
    ("cifar10 one file missing", lambda tmp: (_cifar(tmp), (tmp / "cifar-10-batches-py" / "data_batch_5").unlink(),
                                              load_cifar10(tmp)), ImageDataError, ("missing: data_batch_5",)),
    ("cifar10 unreadable file", lambda tmp: (_cifar(tmp), load_cifar10(Path("/proc/self"))), ImageDataError,
     ("/proc/self", "data_batch_1")),
    ("cifar10 data_root 3", lambda tmp: load_cifar10(3), ImageDataError, ("data_root", "3")),
    ("load_images mnist", lambda tmp: load_images("mnist", str(tmp), g()), InputError, ("dataset", "mnist")),
    ("digits test_fraction 0", lambda tmp: load_digits(0.0, g()), InputError, ("test_fraction", "0.0")),
    ("digits test_fraction 1", lambda tmp: load_digits(1.0, g()), InputError, ("test_fraction", "1.0")),
    ("digits test_fraction NaN", lambda tmp: load_digits(NAN, g()), InputError, ("test_fraction", "nan")),
    ("digits test_fraction text", lambda tmp: load_digits("0.2", g()), InputError, ("test_fraction", "'0.2'")),
    ("digits test_fraction True", lambda tmp: load_digits(True, g()), InputError, ("test_fraction", "True")),
    ("digits generator None", lambda tmp: load_digits(0.2, None), InputError, ("generator", "NoneType")),
    ("subset class 11", lambda tmp: imbalanced_subset(torch.zeros(6, 1, 8, 8), torch.tensor([0, 0, 1, 1, 7, 7]),
                                                      (0, 1, 11), (0.6, 0.3, 0.1), g()), InputError, ("[11]",)),
    ("subset proportions sum 0.9", lambda tmp: imbalanced_subset(torch.zeros(4, 1, 8, 8), torch.tensor([0, 0, 1, 1]),
                                                                 (0, 1), (0.6, 0.3), g()), InputError,
     ("proportions", "0.9")),
    ("subset repeated class", lambda tmp: imbalanced_subset(torch.zeros(4, 1, 8, 8), torch.tensor([0, 0, 1, 1]),
                                                            (0, 0), (0.5, 0.5), g()), InputError,
     ("classes", "(0, 0)")),
    ("subset labels short", lambda tmp: imbalanced_subset(torch.zeros(4, 1, 8, 8), torch.tensor([0, 1]), (0, 1),
                                                          (0.5, 0.5), g()), InputError, ("labels", "[2]")),
    ("Dequantize levels 1", lambda tmp: Dequantize(1, (1, 8, 8)), InputError, ("levels", "1")),
    ("Dequantize 2-D shape", lambda tmp: Dequantize(17, (8, 8)), InputError, ("image_shape", "(8, 8)")),
    ("checkpoint garbage", lambda tmp: ((tmp / "c.pt").write_bytes(b"not a torch file"),
                                        Checkpoint(tmp / "c.pt", {}).load()), CheckpointMismatch,
     ("c.pt", "cannot be read", "delete it")),
    ("checkpoint truncated", lambda tmp: (torch.save({"fingerprint": {}, "w": torch.zeros(100)}, tmp / "c.pt"),
                                          (tmp / "c.pt").write_bytes((tmp / "c.pt").read_bytes()[:200]),
                                          Checkpoint(tmp / "c.pt", {}).load()), CheckpointMismatch,
     ("c.pt", "truncated")),
    ("checkpoint holding a list", lambda tmp: (torch.save([1, 2], tmp / "c.pt"), Checkpoint(tmp / "c.pt", {}).load()),
     CheckpointMismatch, ("c.pt", "list")),
    ("checkpoint of another run", lambda tmp: (Checkpoint(tmp / "c.pt", {"seed": 1}).save({}),
                                               Checkpoint(tmp / "c.pt", {"seed": 2}).load()), CheckpointMismatch,
     ("c.pt", "seed is 1 there and 2 here")),
    ("record not JSON", lambda tmp: ((tmp / "r.json").write_text("{not json"), read_record(tmp / "r.json")),
     RecordError, ("r.json", "cannot be read")),
    ("record empty", lambda tmp: ((tmp / "r.json").write_text(""), read_record(tmp / "r.json")), RecordError,
     ("r.json", "cannot be read")),
    ("record of another format", lambda tmp: ((tmp / "r.json").write_text('{"format": "x"}'),
                                              read_record(tmp / "r.json")), RecordError, ("r.json", "not an ebmflow")),
]


@pytest.mark.parametrize("call, error, names", [pytest.param(*case[1:], id=case[0]) for case in DATA_CASES])
def test_a_bad_data_file_is_named(no_work, tmp_path, call, error, names):
    with pytest.raises(error) as raised:
        call(tmp_path)
    _sentence(str(raised.value))
    _names_all(str(raised.value), names)


# --- valid edge cases pass; inputs accepted with a warning print it ---------------------------------------------

VALID = [
    ("seed 0", lambda tmp: make_generator(0)),
    ("seed 2**62 - 1", lambda tmp: make_generator(2**62 - 1)),
    ("weights summing to 1 within 1e-6", lambda tmp: two_mode_mixture(weights=(0.3, 0.7 + 5e-7))),
    ("four weights summing to 1 within 1e-6", lambda tmp: four_mode_mixture(4, 1.0, (0.1, 0.2, 0.3, 0.4 - 9e-7))),
    ("i-SIR with 2 particles", lambda tmp: isir(log_p, DiagonalGaussian(2), 2)),
    ("no sample", lambda tmp: DiagonalGaussian(2).sample_with_log_prob(0, g())),
    ("run_chains with 0 steps", lambda tmp: run_chains(kernel2(), torch.zeros(3, 2), 0, g())),
    ("a grid of 2 points per axis", lambda tmp: Grid2D(-1.0, 1.0, 2)),
    ("checkpoint every 0 seconds", lambda tmp: Checkpoint(tmp / "c.pt", {}, every_seconds=0)),
    ("NaN zone weights give a NaN error", lambda tmp: math.isnan(zone_mse(torch.tensor([NAN, 1.0]),
                                                                           torch.tensor([0.5, 0.5]))) or 1 / 0),
    ("FlowMCEBM ebm_average 0 (the paper's)", lambda tmp: flowmc_method(ebm_average=0.0)),
    ("IMH needs no n_particles", lambda tmp: flowmc_method(global_move="imh", n_particles=1)),
    ("CIFAR-10 of six good files", lambda tmp: (_cifar(tmp), load_cifar10(tmp))),
    ("digits with a tiny test set", lambda tmp: load_digits(0.01, g())),
    ("report on NaN: see test_report_accepts_nan...", lambda tmp: check_numbers(tmp, {"k": NAN}, ["k"])),
]
VALID += [(f"{name} smoke profile", lambda tmp, name=name: configure(name)) for name in EXPERIMENTS]
VALID += [(f"{name} stop_after 0, seed 0", lambda tmp, name=name: configure(name, seed=0, stop_after=0))
          for name in EXPERIMENTS]
VALID += [(f"{name} batch of all n_data", lambda tmp, name=name: configure(
    name, batch_size=configure(name).n_data, n_persistent=max(configure(name).n_persistent, configure(name).n_data)))
    for name in EXPERIMENTS if {"n_data", "batch_size"} <= set(_fields(name)) and name != "02_toy_benchmarks"]


@pytest.mark.parametrize("call", [pytest.param(case[1], id=case[0]) for case in VALID])
def test_valid_edge_cases_pass(no_work, tmp_path, call):
    call(tmp_path)


def test_a_batch_equal_to_the_data_and_the_chains_trains(tmp_path):
    """No spy: one real iteration with batch_size = n_data = n_persistent and stop_after = 1."""
    run = do_train(method=ula_method(), data=data2(16), batch_size=16, n_persistent=16, stop_after=1)
    assert run.history.iterations == 1 and run.divergence is None


@pytest.mark.parametrize("argv, names", [
    pytest.param(["--seed", "0", "-p", "stop_after=0"], (), id="seed 0 and stop_after 0"),
    pytest.param(["-p", "batch_size=2048", "-p", "n_persistent=2048"], (), id="batch of all n_data"),
    pytest.param(["-p", "epochs=1000000000"], ("warning", "days"), id="epochs 10**9 accepted with its estimate"),
    pytest.param(["-p", "flowmc_schedule='GL'"], (), id="a quoted string value"),
])
def test_cli_valid_edges_reach_the_kernel(no_work, tmp_path, capsys, argv, names):
    """Accepted inputs pass every check: the run starts (the spy stands for the kernel)."""
    with pytest.raises(WorkStarted):
        main(["run", "01_motivating_example", "--profile", "smoke", "--output", str(tmp_path / "x.ipynb"), *argv])
    out = capsys.readouterr().out
    assert "01_motivating_example at profile smoke" in out
    _names_all(out, names)


def test_cli_sweep_inline_ignores_threads_with_a_warning(no_work, capsys):
    with pytest.raises(WorkStarted):
        main(["sweep", "01_motivating_example", "--profile", "smoke", "--seeds", "0", "--inline", "--threads", "4"])
    _names_all(capsys.readouterr().out, ("warning", "--threads 4 is ignored with --inline"))


def test_cli_run_into_a_missing_folder_creates_it_and_says_so(no_work, tmp_path, capsys):
    """Accepted with a line: the folders of --output are created (mkdir -p), as for any output file."""
    output = tmp_path / "new" / "folder" / "x.ipynb"
    with pytest.raises(WorkStarted):
        main(["run", "01_motivating_example", "--profile", "smoke", "--output", str(output)])
    assert f"creating the folder {output.parent}" in capsys.readouterr().out


def test_cli_a_long_run_without_measured_runtime_warns(no_work, tmp_path, capsys, monkeypatch):
    from ebmflow.book import runner

    monkeypatch.setattr(runner, "read_runtimes", lambda: {})
    with pytest.raises(WorkStarted):
        main(["run", "01_motivating_example", "--profile", "smoke", "--output", str(tmp_path / "x.ipynb"),
              "-p", "epochs=1000000000"])
    _names_all(capsys.readouterr().out, ("warning", "5e+08 times the training work", "never measured"))


@pytest.mark.parametrize("call", [
    pytest.param(lambda tmp: do_train(), id="train pre-trains NT-EBM's flow"),
    pytest.param(lambda tmp: do_fit(), id="fit_ebm samples negatives"),
    pytest.param(lambda tmp: main(["run", "01_motivating_example", "--profile", "smoke", "--output",
                                   str(tmp / "x.ipynb")]), id="ebmflow run starts a kernel"),
])
def test_the_spies_catch_the_work_of_valid_input(no_work, tmp_path, call):
    """The spies of ``no_work`` do fire on valid input: a bad case that passed them stopped before any work."""
    with pytest.raises(WorkStarted):
        call(tmp_path)


# --- the count of cases by surface ------------------------------------------------------------------------------------

def test_count_of_cases_by_surface():
    cifar = len(CIFAR_CASES)  # a train batch: every damage; the test batch: three
    counts = {
        "cli (in-process)": len(CLI_IDS) + 4,  # + foreign checkpoints, three failures during a run (status 1)
        "subprocess": len(SUBPROCESS_CASES),
        "papermill": len(PAPERMILL_CASES),
        "report": len(REPORT_DAMAGE) + 3 + 4,
        "config": len(CONFIG_CASES) + len(FIELD_CASES) + len(NAMESPACE_CASES),
        "library": len(LIBRARY),
        "data": cifar + len(DATA_CASES),
    }
    valid = len(VALID) + 1 + 4 + 4  # + one training, four CLI runs, three accepted with a warning, NaN report
    print("\nbad-input cases by surface: " + ", ".join(f"{k} {v}" for k, v in counts.items())
          + f"; total {sum(counts.values())}; valid edge cases {valid}")
    assert counts["cli (in-process)"] >= 50 and counts["library"] >= 150 and counts["data"] >= 30
    assert sum(counts.values()) - len(FIELD_CASES) >= 150  # even without the generated per-field cases
