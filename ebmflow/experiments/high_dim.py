"""High-dimensional Gaussian mixture (paper §4, Table 2, Figure 6, Tables 6-7, Appendix C.5): the four methods train an
EBM on a 4-mode mixture in d = 16, 32, 64 (the ``dims`` parameter; the separation: ``max_misassignment``); mixing
is measured by the max over coordinates of R-hat of their chains."""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from functools import partial
from typing import ClassVar

import matplotlib.pyplot as plt
import pandas as pd

from ..book.claims import Claim, PaperItem, lowest
from ..book.plotting import BOOK_FIGURE_WIDTH, color, label
from ..checks import InputError
from ..methods import METHODS, NTEBM, CoopFlow, FlowMCEBM, Method, ULAEBM
from ..metrics import MIN_RHAT_DRAWS, mixing_diagnostics
from ..models import DiagonalGaussian, RealNVP, ToyEnergy
from ..seeding import make_generator, resolve_device
from ..targets import GaussianMixture, check_dims, coordinate_magnitude, four_mode_mixture
from ..training import DivergenceRule
from .common import (Run, chain_evaluation, checkpoint_for, diverged_at, hyperparameter_table, plot_along_training,
                     table_cell, target_note, train)

CHAPTER = "04_high_dim_mixture"
DIMS = (16, 32, 64)  # the paper's dimensions (the default of Config.dims)
PAPER_A = 0.5919  # Appendix C.5's per-coordinate mean magnitude
PAPER_TABLE2 = {m: dict(zip(DIMS, v)) for m, v in {  # max R-hat at the end of training
    "flowmc": (1.01, 1.01, 1.05), "ntebm": (2.02, 2.50, 3.10), "coopflow": (20.52, 44.12, 51.66),
    "ula": (7.30, 9.29, 90.90)}.items()}
PAPER_TABLE6 = {16: (32, 2), 32: (39, 2), 64: (51, 2)}  # hidden units, RealNVP blocks
PAPER_STEPS = {"ula": 512, "ntebm": 128, "coopflow": 256, "flowmc": 16}  # MCMC steps per iteration (Table 7)
COUPLINGS_PER_BLOCK = 2  # a RealNVP block: two couplings with complementary half masks
RHAT_MIXED = 1.1  # below this, chains "mix" (Table 2 claim)
RHAT_DRAWS = 64  # R-hat chains are thinned evenly to at most this many draws
DIVERGENCE = DivergenceRule(max_energy_gap=1e3, box=50.0)  # data coordinates stay within about ±8
FULL = "coopflow_full"  # the extra CoopFlow run with coopflow_full_steps
NAMES = {**{m: label(m) for m in METHODS}, FULL: f"{label('coopflow')}, paper's step count"}  # row and legend names
DIAGNOSTICS = {"min_rhat": "lowest R-hat", "switches": "mode changes per chain", "moved": "distance moved per "
               "coordinate", "energy_gap": "energy gap (last iteration)"}  # besides R-hat (numbers, diagnostics_table)


@dataclass(frozen=True)
class Config:
    seed: int
    dims: tuple[int, ...]  # dimensions, distinct even integers >= 2 in increasing order (paper 16,32,64)
    max_misassignment: float  # mode separation: P(a sample's nearest mean is not its own) (paper 1e-10)
    n_misassignment: int  # exact samples per dimension to measure that probability
    n_data: int  # size of the fixed training set drawn from p*
    epochs: int
    batch_size: int  # positives and negatives per iteration; also the number of R-hat chains
    n_persistent: int  # persistent chains; batch_size of them are advanced per iteration
    lr_ula: float  # Adam learning rate of ULA-EBM
    lr_ntebm: float  # Adam learning rate of NT-EBM (its flow is frozen)
    lr_coopflow: float  # Adam learning rate of CoopFlow (EBM and flow)
    lr_flowmc: float  # Adam learning rate of flowMC-EBM (EBM and flow)
    ula_step_size: float  # ULA step (ULA-EBM)
    ula_steps: int  # ULA steps per iteration (ULA-EBM)
    ntebm_step_size: float  # initial latent MALA step, adapted towards 75% acceptance (NT-EBM)
    ntebm_steps: int  # latent MALA steps per iteration (NT-EBM)
    coopflow_step_size: float  # noiseless Langevin step (CoopFlow)
    coopflow_steps: int  # noiseless Langevin steps per iteration (CoopFlow)
    coopflow_freeze_fraction: float  # fraction of the iterations during which CoopFlow's flow is frozen
    coopflow_max_drift: float  # clamp of each coordinate's Langevin displacement per step (0: no clamp)
    coopflow_full_steps: int  # one extra CoopFlow run in the smallest dimension with this many steps (0: none)
    flowmc_steps: int  # stacked (1 i-SIR + flowmc_local_steps MALA) steps per iteration (flowMC-EBM)
    flowmc_local_steps: int  # MALA steps per stacked step (flowMC-EBM)
    flowmc_step_size: float  # MALA step (flowMC-EBM)
    n_particles: int  # i-SIR candidates per global step (flowMC-EBM)
    pretrain_steps: int  # flow pre-training steps (NT-EBM, CoopFlow)
    pretrain_lr: float  # learning rate of that pre-training
    pretrain_batch: int  # batch size of that pre-training
    rhat_length: float  # R-hat chains run this fraction of the paper's per-iteration MCMC length
    rhat_evals: int  # R-hat measurements along training (Figure 6), besides the one at iteration 0
    device: str  # "cpu", "cuda" or "auto"
    stop_after: int  # stop each training run after this many iterations (0: train fully)

    NON_NEGATIVE: ClassVar[tuple[str, ...]] = ("stop_after", "coopflow_max_drift", "coopflow_full_steps",
                                               "coopflow_freeze_fraction")

    def __post_init__(self) -> None:
        resolve_device(self.device)
        coordinate_magnitude(min(check_dims(self.dims, "parameter 'dims'")), self.max_misassignment)  # both checked
        draws = {**self.rhat_steps, "flowmc": self.rhat_steps["flowmc"] * self.flowmc_steps}
        if min(draws.values()) < MIN_RHAT_DRAWS:
            raise InputError(f"R-hat chains need at least {MIN_RHAT_DRAWS} draws, got {draws}: raise rhat_length")
        [(methods(self, d), self.target(d)) for d in self.dims]  # methods and targets check their own knobs

    @property
    def iterations(self) -> int:
        return self.epochs * (self.n_data // self.batch_size)

    @property
    def rhat_steps(self) -> dict[str, int]:  # kernel steps of the R-hat chains (flowMC: flowmc_steps stacked each)
        steps = {m: max(1, round(self.rhat_length * n)) for m, n in PAPER_STEPS.items()}
        return {**steps, "flowmc": math.ceil(steps["flowmc"] / self.flowmc_steps)}

    def target(self, dim: int) -> GaussianMixture:
        return four_mode_mixture(dim, coordinate_magnitude(dim, self.max_misassignment))


PAPER = dict(seed=0, dims=DIMS, max_misassignment=1e-10, n_misassignment=1_000_000, n_data=50_000, epochs=150,
             batch_size=128, n_persistent=8192, lr_ula=1e-2, lr_ntebm=1e-2, lr_coopflow=1e-3, lr_flowmc=1e-3, ula_step_size=1e-3,
             ula_steps=512, ntebm_step_size=0.01, ntebm_steps=128, coopflow_step_size=1e-4,
             coopflow_steps=256, coopflow_freeze_fraction=0.04, coopflow_max_drift=0.0, coopflow_full_steps=0,
             flowmc_steps=16, flowmc_local_steps=8, flowmc_step_size=0.2, n_particles=128, pretrain_steps=512,
             pretrain_lr=1e-2, pretrain_batch=128, rhat_length=1.0, rhat_evals=30, device="cpu", stop_after=0)
CPU = {**PAPER, "n_data": 12_800, "epochs": 4, "lr_ntebm": 1e-3, "ula_steps": 32, "ntebm_steps": 8,
       "coopflow_steps": 32, "coopflow_full_steps": 256, "flowmc_steps": 1, "n_particles": 64, "pretrain_steps": 256,
       "rhat_evals": 5}
PROFILES = {"smoke": {**CPU, "n_misassignment": 20_000, "n_data": 512, "epochs": 1, "batch_size": 64,
                      "n_persistent": 128, "ula_steps": 4, "ntebm_steps": 2, "coopflow_steps": 4,
                      "coopflow_full_steps": 8, "flowmc_local_steps": 2, "n_particles": 8, "pretrain_steps": 4,
                      "rhat_length": 1 / 4, "rhat_evals": 1},
            "cpu": CPU, "paper": PAPER}
CHOICES = (
    "Means: the paper's signs with per-coordinate magnitude m_d = Δ/sqrt(2d): the closest means are Δ ≈ 12.93 apart in "
    "every dimension, the smallest gap whose union bound 2Φ̄(Δ/2) on the misassignment rate is the paper's 1e-10 (its "
    "literal a = 0.5919 cannot meet that bound: see the table). `dims` and `max_misassignment` set others; in a "
    "dimension the paper did not run the flow has 2 blocks of round(12.8 d^(1/3)) hidden units (the paper's 32, "
    "39, 51 in d = 16, 32, 64 lie within 2 of that curve).",
    "NT-EBM tilts its frozen flow (p ∝ exp(-E) λ, Nijkamp et al. 2022); the others train p ∝ exp(-E) rho, rho = N(0, "
    "σ² I), σ² = 1 + m_d². ULA-EBM starts from rho (\"gaussian\"), the others from their flow. Adam for EBM and flow. "
    "A RealNVP block: two affine couplings with complementary half masks, nets of 3 hidden layers ending at zero.",
    f"NT-EBM's and CoopFlow's flows: maximum likelihood on the data (the paper's \"reverse KL\" names no target). "
    f"NT-EBM's latent MALA step starts at {PAPER['ntebm_step_size']:g}, ×/÷1.05 after each step with acceptance "
    f"outside 72–78%. CoopFlow's flow is frozen for the first {PAPER['coopflow_freeze_fraction']:.0%} of the "
    f"iterations (paper < 5%), no drift clamp (at step 1e-4 the original's ±0.1 binds only where |∇E| > 1000). "
    f"flowMC-EBM: MALA step {PAPER['flowmc_step_size']:g} (not given); one negative per stacked step (\"use only last "
    f"step? = no\").",
    f"R-hat: rank-normalised split R-hat (arviz-stats), max over coordinates, of the batch_size chains that started "
    f"the last iteration (fresh flow samples for CoopFlow), run on the current model by the method's kernel for the "
    f"paper's per-iteration length (512, 128, 256, 16 stacked steps), one draw per step, thinned to ≤ {RHAT_DRAWS} "
    f"draws, from a stream of its own (seed, method, d, iteration).",
    f"Divergence: a run stops when an energy or a chain is not finite, when |mean E(x-) - mean E(x+)| > "
    f"{DIVERGENCE.max_energy_gap:g} or when a negative leaves [-{DIVERGENCE.box:g}, {DIVERGENCE.box:g}]^d (data stay "
    f"within about ±8); never on the level of E (defined up to a constant).",
    f"cpu profile: {CPU['epochs'] * CPU['n_data'] // CPU['batch_size']} iterations (paper about 58 500) of "
    f"{CPU['ula_steps']} ULA, {CPU['ntebm_steps']} latent MALA, {CPU['coopflow_steps']} Langevin steps or "
    f"{CPU['flowmc_steps']} stacked flowMC step (paper 512, 128, 256, 16); i-SIR with {CPU['n_particles']} "
    f"candidates (paper 128); pre-training {CPU['pretrain_steps']} steps (paper 512); NT-EBM lr {CPU['lr_ntebm']:g} "
    f"(paper {PAPER['lr_ntebm']:g}: with so few latent steps its d = 16 run stopped on the energy gap when we chose "
    f"the profile; lr_ntebm = 0.01 shows it); R-hat {CPU['rhat_evals']} times after iteration 0; one extra CoopFlow "
    f"run in d = 16 with the paper's {CPU['coopflow_full_steps']} Langevin steps.",
)


def methods(config: Config, dim: int) -> dict[str, Method]:
    """The four methods of Table 7 at this profile, in registry (figure) order, with the Table 6 flow of ``dim``."""
    hidden, blocks = PAPER_TABLE6.get(dim, (round(12.8 * dim ** (1 / 3)), 2))  # the paper's sizes lie on this curve
    flow = partial(RealNVP, n_couplings=COUPLINGS_PER_BLOCK * blocks, hidden=hidden, n_hidden_layers=3)
    pretrain = dict(pretrain_steps=config.pretrain_steps, pretrain_lr=config.pretrain_lr,
                    pretrain_batch=config.pretrain_batch, make_flow=flow)
    schedule = ("G" + "L" * config.flowmc_local_steps) * config.flowmc_steps  # ebm_average 0: the last E_theta
    return {"flowmc": FlowMCEBM(lr=config.lr_flowmc, schedule=schedule, step_size=config.flowmc_step_size,
                                n_particles=config.n_particles, keep=config.flowmc_steps, make_flow=flow, ebm_average=0.0),
            "ntebm": NTEBM(lr=config.lr_ntebm, n_steps=config.ntebm_steps, step_size=config.ntebm_step_size, **pretrain),
            "coopflow": CoopFlow(lr=config.lr_coopflow, n_steps=config.coopflow_steps,
                                 step_size=config.coopflow_step_size, max_drift=config.coopflow_max_drift or None,
                                 freeze_iterations=round(config.coopflow_freeze_fraction * config.iterations),
                                 **pretrain),
            "ula": ULAEBM(lr=config.lr_ula, step_size=config.ula_step_size, n_steps=config.ula_steps, init="rho")}


def train_run(config: Config, name: str, dim: int) -> Run:
    """One method (or ``FULL``: CoopFlow with ``coopflow_full_steps``) in dimension ``dim``, R-hat measured along."""
    target = config.target(dim)
    run_config = dataclasses.replace(config, coopflow_steps=config.coopflow_full_steps) if name == FULL else config
    method = methods(run_config, dim)["coopflow" if name == FULL else name]
    return train(method, target.sample(config.n_data, make_generator(config.seed, stream=f"data/{dim}")),
                 energy=ToyEnergy(dim, generator=make_generator(config.seed, stream=f"energy/{dim}")),
                 base=DiagonalGaussian(dim, math.sqrt(target.max_coordinate_variance())), seed=config.seed,
                 epochs=config.epochs, batch_size=config.batch_size, n_persistent=config.n_persistent,
                 device=config.device, reference=target.log_prob, divergence=DIVERGENCE,
                 evaluate=chain_evaluation(  # R-hat: one draw per step of Table 7 (per stacked step for flowMC)
                     lambda x: mixing_diagnostics(x.cpu(), target.assign_mode, RHAT_DRAWS),
                     config.rhat_steps[method.name], seed=config.seed, stream=f"rhat/{name}/{dim}",
                     n_chains=config.batch_size, device=config.device,
                     every=1 + config.flowmc_local_steps if method.name == "flowmc" else 1),
                 eval_every=max(1, config.iterations // config.rhat_evals), stop_after=config.stop_after or None,
                 checkpoint=checkpoint_for(f"{CHAPTER}-{name}-d{dim}", config), desc=f"{method.label} d={dim}")


def train_all(config: Config) -> dict[tuple[str, int], Run]:
    """Every method in every dimension, and the extra CoopFlow run in the smallest one, by (name, dim)."""
    plan = [(n, d) for d in config.dims for n in METHODS] + [(FULL, config.dims[0])] * bool(config.coopflow_full_steps)
    return {(name, dim): train_run(config, name, dim) for name, dim in plan}


def table2_key(method: str, dim: int, quantity: str = "rhat") -> str:
    """Glue key of a Table 2 number: rhat (NaN if stopped), min_rhat, switches, moved, energy_gap, diverged_at..."""
    return f"table2_{quantity}_{method}_d{dim}"


def separation(config: Config) -> pd.DataFrame:
    """Per d, for the paper's a and ours: |mean| per coordinate, closest means' gap, misassignment bound and rate."""
    generator = make_generator(config.seed, stream="misassignment")
    scalings = {d: (("paper", PAPER_A), ("ours", coordinate_magnitude(d, config.max_misassignment))) for d in config.dims}
    rows = {(d, s): {"magnitude": a, **four_mode_mixture(d, a).separation(config.n_misassignment, generator)}
            for d in config.dims for s, a in scalings[d]}
    return pd.DataFrame(rows).T.rename_axis(["d", "scaling"])


def numbers(runs: dict[tuple[str, int], Run], separated: pd.DataFrame) -> dict[str, float]:
    """Table 2's numbers and diagnostics per run (a stopped run: NaN, its iteration as diverged_at), the separation."""
    values = {f"separation_{q}_{s}_d{d}": float(v)  # e.g. separation_measured_paper_d16 (separation's columns)
              for (d, s), row in separated.iterrows() for q, v in row.items()}
    for (name, dim), run in runs.items():
        evaluations = run.history.evaluations
        values.update({table2_key(name, dim, q): evaluations[q][-1] for q in ("switches", "moved")})
        values[table2_key(name, dim)] = math.nan if run.divergence else evaluations["rhat"][-1]
        values[table2_key(name, dim, "min_rhat")] = min(evaluations["rhat"][1:] or evaluations["rhat"])
        values[table2_key(name, dim, "energy_gap")] = run.energy_gap
        values[table2_key(name, dim, "diverged_at")] = diverged_at(run)
    return values


def table2(runs: dict[tuple[str, int], Run]) -> pd.DataFrame:
    """Table 2: max R-hat at the end of training, the paper's beside ours ("diverged (it. N)" for a stopped run)."""
    def cell(m: str, d: int, column: str) -> str:
        return ((f"{PAPER_TABLE2[m][d]:.2f}" if d in DIMS else "not run") if column == "paper" else
                table_cell(runs[m, d].history.evaluations["rhat"][-1], diverged_at(runs[m, d]), ".2f"))
    return pd.DataFrame({label(m): {(f"Dim {d}", c): cell(m, d, c) for d in sorted({d for _, d in runs})
                                    for c in ("paper", "ours")} for m in METHODS}).T


def diagnostics_table(runs: dict[tuple[str, int], Run]) -> pd.DataFrame:
    """Why chains mix or not: the last R-hat measurement's diagnostics, the last energy gap, how a run stopped."""
    values = numbers(runs, pd.DataFrame())
    return pd.DataFrame({(NAMES[n], d): {"max R-hat (last)": r.history.evaluations["rhat"][-1],
                                         **{c: values[table2_key(n, d, q)] for q, c in DIAGNOSTICS.items()},
                                         "stopped": str(r.divergence or "no")} for (n, d), r in runs.items()}).T


def table6(config: Config) -> pd.DataFrame:
    """Table 6: the RealNVP sizes read back from the flows the methods build, the paper's beside."""
    flows = {d: methods(config, d)["flowmc"].make_flow(DiagonalGaussian(d), generator=make_generator(config.seed))
             for d in config.dims}
    paper = {d: PAPER_TABLE6.get(d, ("—", "—")) for d in config.dims}
    return pd.DataFrame({d: {"size of hidden layers": f.sizes["hidden"], "paper: size": paper[d][0],
                             "# RealNVP blocks": f.sizes["n_couplings"] // COUPLINGS_PER_BLOCK,
                             "paper: # blocks": paper[d][1], "hidden layers per net": f.sizes["n_hidden_layers"],
                             "parameters": f.n_parameters()} for d, f in flows.items()}).T.rename_axis("Dimension")


def table7(config: Config) -> pd.DataFrame:
    """Table 7: each method's row at the paper's configuration above the row as configured (``describe``)."""
    paper, dim = Config(**PROFILES["paper"]), config.dims[0]
    table = hyperparameter_table(methods(config, dim), {n: m.describe() for n, m in methods(paper, dim).items()})
    for source, c in (("ours", config), ("paper", paper)):  # the paper counts flowMC's stacked (G + L...) steps
        table.loc[(label("flowmc"), source), "# MCMC steps"] = f"{c.flowmc_steps} stacked"
    return table


def figure6(runs: dict[tuple[str, int], Run]):
    """Figure 6: max R-hat along training, one panel per dimension; × where a run stopped on a divergence."""
    dims = sorted({d for _, d in runs})
    fig, axes = plt.subplots(1, len(dims), figsize=(BOOK_FIGURE_WIDTH, 3.4), layout="constrained", sharey=True,
                             squeeze=False)
    for ax, dim in zip(axes[0], dims):
        for (name, _), run in ((key, run) for key, run in runs.items() if key[1] == dim):
            plot_along_training(ax, run, "iteration", "rhat", "s--" if name == FULL else "o-", ms=3,
                                color=color("coopflow" if name == FULL else name), label=NAMES[name])
        ax.axhline(RHAT_MIXED, color="k", ls=":", lw=1)
        ax.set(title=f"d = {dim}", xlabel="iteration", yscale="log", ylabel="max R-hat" if dim == dims[0] else "")
    fig.legend(*axes[0, 0].get_legend_handles_labels(), loc="outside lower center", ncols=3)
    return fig


def _table2_claim(dim: int) -> Claim:
    keys, paper = {m: table2_key(m, dim) for m in METHODS}, {m: PAPER_TABLE2[m].get(dim, math.nan) for m in METHODS}
    order = lowest(keys, {m: label(m) for m in METHODS}, paper, ".2f", f"max R-hat in d = {dim}")
    outcome = {} if dim != 32 else dict(expected="none", why_not="flowMC-EBM's max R-hat {table2_rhat_flowmc_d32:.3f} is"
                                        " at the cut-off, not under it; NT-EBM's {table2_rhat_ntebm_d32:.2f}, ULA-EBM's "
                                        "{table2_rhat_ula_d32:.2f}")  # over the committed cpu seeds (test_claims.py)
    return Claim(f"In d = {dim} only flowMC-EBM's chains mix: its max R-hat is ≤ {RHAT_MIXED} and below every "
                 f"baseline's", order.paper, order.ours, f"flowMC-EBM ≤ {RHAT_MIXED} and {order.rule}",
                 lambda g: order.check(g) and g[keys["flowmc"]] <= RHAT_MIXED,  # NaN <= 1.1 is False
                 **outcome)


ITEMS = (
    PaperItem("Table 2", CHAPTER, "max R-hat of 128 negative chains at the end of training, d = 16, 32, 64",
              tuple(_table2_claim(dim) for dim in DIMS), rebuilt_by="high_dim.table2"),
    PaperItem("Figure 6", CHAPTER, "max R-hat along training, one panel per dimension", rebuilt_by="high_dim.figure6"),
    PaperItem("Table 6", CHAPTER, "RealNVP sizes per dimension", rebuilt_by="high_dim.table6"),
    PaperItem("Table 7", CHAPTER, "samplers and hyper-parameters of the four methods", rebuilt_by="high_dim.table7"),
)


def target_markdown(config: Config) -> str:
    """This run's dimensions and separation, and whether the paper ran them."""
    return target_note(f"d = {', '.join(map(str, config.dims))}, P(misassigned) ≤ {config.max_misassignment:g}",
                       "d = 16, 32, 64, P(misassigned) ≤ 1e-10")

