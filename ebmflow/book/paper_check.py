"""A chapter's ``paper`` configuration on this machine: does it start, what does an iteration cost, how much memory?

``check_chapter(name, iterations=2)`` builds exactly what the chapter's ``paper`` profile builds (networks, particle
counts, batch and bank sizes, data: CIFAR-10 from ``data_root``, else a generated stand-in of the real files) and
runs ``iterations`` training iterations (``stop_after``) of every method the chapter trains, through the chapter's
own functions: ``PIPELINES`` holds each notebook's cells as one function. After training it runs the chapter's
evaluations (numbers, tables, figures), except those marked expensive, which only ``evaluations="all"`` runs. It
measures each training run's preparation (flow pre-training), the start of its chains, its time per iteration and
per in-training evaluation, the process's peak memory, and projects the time of the full paper run.
``check_in_subprocess`` runs the check in a fresh Python, so that the peak memory is the chapter's own.

On a CPU, chapter 05's paper batch (128 chains of 99 flowMC steps, 3 × 127 i-SIR candidates each: about half an
hour per iteration) is cut to ``CPU_CUTS``; its time per iteration is then projected linearly to the paper's batch.
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch

from ..checks import InputError, check_choice, check_int
from ..experiments import common
from ..methods import METHODS
from ..seeding import resolve_device
from .chapters import CHAPTERS, get_chapter
from .config import resolve_config
from .report import verdict_table

__all__ = ["RunCost", "StepCost", "PaperCheck", "Pipeline", "PIPELINES", "CPU_CUTS", "check_chapter",
           "check_in_subprocess", "format_check", "main"]

EVALUATIONS = ("none", "cheap", "all")
CPU_CUTS: dict[str, dict[str, Any]] = {"05_images": {"batch_size": 2}}  # on a CPU: what the check cuts (and scales)


# --- what is measured ------------------------------------------------------------------------------------------------

@dataclass
class RunCost:
    """One training run of the chapter (a method, on a target or in a dimension)."""

    method: str
    run: str  # the chapter's key of the run: "ula", "flowmc-rings", "ntebm-16"...
    prepare_seconds: float  # building the method's networks and pre-training its flow
    init_seconds: float  # starting the persistent chains
    iterations: int  # iterations run here
    iteration_seconds: float  # per iteration, evaluations excluded (the first iteration too, when there are more)
    first_iteration_seconds: float  # the first iteration (first calls: allocations, autograd's start)
    evaluations: int  # in-training evaluations run here
    evaluation_seconds: float  # per in-training evaluation (NaN: none run)
    full_iterations: int  # iterations of the full paper run
    full_evaluations: int  # in-training evaluations of the full paper run
    peak_rss_mb: float  # the process's peak resident memory after this run
    diverged: str = ""  # how the run stopped on a divergence ("" if it did not)
    scale: float = 1.0  # the projection multiplies the time per iteration by this (a CPU cut of the batch)

    @property
    def projected_seconds(self) -> float:
        """Preparation, chains' start, every iteration and every in-training evaluation of the full run."""
        evaluations = 0.0 if self.full_evaluations == 0 or math.isnan(self.evaluation_seconds) else \
            self.full_evaluations * self.evaluation_seconds
        return (self.prepare_seconds + self.init_seconds + self.full_iterations * self.iteration_seconds * self.scale
                + evaluations)


@dataclass
class StepCost:
    """One evaluation after training (a number, table or figure of the chapter)."""

    name: str
    seconds: float  # NaN when skipped
    expensive: bool
    skipped: bool


@dataclass
class PaperCheck:
    chapter: str
    profile: str
    parameters: dict[str, Any]  # what differs from the profile (stop_after, data_root, CPU cuts)
    device: str
    runs: list[RunCost] = field(default_factory=list)
    steps: list[StepCost] = field(default_factory=list)
    seconds: float = 0.0  # wall time of the whole check
    start_rss_mb: float = 0.0  # resident memory before the chapter's first call (Python, torch, the library)
    peak_rss_mb: float = 0.0
    notes: list[str] = field(default_factory=list)

    @property
    def methods(self) -> list[str]:
        return list(dict.fromkeys(r.method for r in self.runs))

    @property
    def projected_seconds(self) -> float:
        """The full paper run on this machine: every training run, plus the evaluations measured here (the
        skipped expensive ones are not counted)."""
        return sum(r.projected_seconds for r in self.runs) + sum(s.seconds for s in self.steps if not s.skipped)

    def as_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "projected_seconds": self.projected_seconds}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "PaperCheck":
        data = {k: v for k, v in data.items() if k != "projected_seconds"}
        return cls(**{**data, "runs": [RunCost(**r) for r in data["runs"]],
                      "steps": [StepCost(**s) for s in data["steps"]]})


def _rss_mb() -> float:
    """Peak resident memory of this process so far, in MiB: Linux's VmHWM (getrusage's maxrss would start from the
    parent's peak in a forked child), else getrusage (macOS reports bytes)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024 if sys.platform == "darwin" else 1024)


def _full_evaluations(evaluate: Any, eval_every: int, total: int) -> int:
    """Calls of ``evaluate`` in a full run of ``total`` iterations (``fit_ebm``: iteration 0, every ``eval_every``
    iterations before the last, the end)."""
    if evaluate is None:
        return 0
    return 2 + (total - 1) // eval_every if eval_every else 2


@contextlib.contextmanager
def _measured_training(records: list[dict[str, Any]]):
    """Every ``fit_ebm`` call of ``experiments.common.train`` timed: the chains' start, each evaluation, the rest."""
    real = common.fit_ebm

    def fit_ebm(data, energy, method, **kwargs):
        record: dict[str, Any] = {"method": method.name, "init": 0.0, "evaluations": []}
        evaluate = kwargs.get("evaluate")
        if evaluate is not None:
            def timed_evaluate(state):
                start = time.perf_counter()
                try:
                    return evaluate(state)
                finally:
                    record["evaluations"].append(time.perf_counter() - start)
            kwargs["evaluate"] = timed_evaluate
        init_chains, sample = method.init_chains, method.sample

        def timed_init(n, generator):
            start = time.perf_counter()
            try:
                return init_chains(n, generator)
            finally:
                record["init"] += time.perf_counter() - start

        def marked_sample(chains, generator):  # an iteration starts with its sampler call
            record["starts"].append((time.perf_counter(), sum(record["evaluations"])))
            return sample(chains, generator)
        record["starts"] = []
        method.init_chains, method.sample = timed_init, marked_sample  # instance attributes, removed below
        start = time.perf_counter()
        try:
            history = real(data, energy, method, **kwargs)
        finally:
            del method.init_chains, method.sample
        end = (time.perf_counter(), sum(record["evaluations"]))
        marks = record.pop("starts") + [end]  # iteration k: from its sampler call to the next (evaluations out)
        record["durations"] = [(t1 - t0) - (e1 - e0) for (t0, e0), (t1, e1) in zip(marks, marks[1:])]
        record.update(fit=time.perf_counter() - start, history=history, epochs=kwargs["epochs"], n_data=len(data),
                      batch_size=kwargs["batch_size"], evaluate=evaluate, eval_every=kwargs.get("eval_every", 0),
                      peak=_rss_mb())
        records.append(record)
        return history

    common.fit_ebm = fit_ebm
    try:
        yield
    finally:
        common.fit_ebm = real


class Steps:
    """Runs (and times) the chapter's evaluations after training; skips the expensive ones unless asked."""

    def __init__(self, evaluations: str = "all") -> None:
        self.evaluations = check_choice("evaluations", evaluations, EVALUATIONS)
        self.costs: list[StepCost] = []

    def __call__(self, name: str, function: Callable[[], Any], *, expensive: bool = False) -> Any:
        if self.evaluations == "none" or (expensive and self.evaluations != "all"):
            self.costs.append(StepCost(name, math.nan, expensive, True))
            return None
        start = time.perf_counter()
        value = function()
        if hasattr(value, "savefig"):  # a figure: drawn, then released
            import matplotlib.pyplot as plt

            plt.close(value)
        self.costs.append(StepCost(name, time.perf_counter() - start, expensive, False))
        return value


# --- each chapter's notebook, as one function ------------------------------------------------------------------------

@dataclass(frozen=True)
class Pipeline:
    """A chapter's notebook cells as one function, ``run(config, steps)``: training first, then
    ``steps(name, function, expensive=...)`` for every later cell; it returns {"runs": the Runs by the chapter's
    keys, "numbers": what the chapter glues, "tables": its tables of results, "settings": its hyper-parameter
    tables}. ``methods(config)``: the names of the methods the chapter must train."""

    run: Callable[[Any, Steps], dict[str, Any]]
    methods: Callable[[Any], list[str]]


def _motivating(config, steps: Steps) -> dict[str, Any]:
    from ..experiments import motivating as m

    runs = m.train_all(config, m.make_data(config))
    paths = steps("trajectories (Figure 1 c, g)", lambda: m.trajectories(runs, config))
    if paths is not None:
        steps("Figure 1", lambda: m.figure1(runs, config, paths))
    numbers = steps("numbers", lambda: m.numbers(runs, config))
    tables = [steps("table", lambda: m.weight_table(numbers, config))] if numbers is not None else []
    return {"runs": runs, "numbers": numbers, "tables": tables}


def _toy_benchmarks(config, steps: Steps) -> dict[str, Any]:
    from ..experiments import benchmarks, toy_benchmarks as m

    settings = [steps("Table 5", lambda: m.table5(config))]
    runs = m.train_all(config)
    tables = []
    steps("Figure 2", lambda: m.figure2(runs, config))
    numbers = steps("numbers (Table 1 errors on the grid)", lambda: m.numbers(runs, config))
    if numbers is not None:
        tables += [steps("Table 1", lambda: m.table1(numbers, config)),
                   steps("variants table", lambda: m.variants_table(numbers, config)),
                   steps("verdicts", lambda: verdict_table(m.ITEMS, numbers))]
        steps("results text", lambda: m.results_markdown(numbers, config))
    steps("NT-EBM pre-training figure", lambda: m.figure_ntebm_variants(runs, config))
    return {"runs": runs, "numbers": numbers, "tables": tables, "settings": settings}


def _extended(config, steps: Steps) -> dict[str, Any]:
    from ..experiments import benchmarks, extended as m

    settings = [steps("Table 4", lambda: m.table4(config))]
    steps("Figure 4", lambda: m.figure4(config))
    runs = m.train_all(config)
    tables = []
    steps("Figure 3", lambda: m.figure3(runs, config))
    paths = steps("Figure 5 chains", lambda: m.latent_chains(runs["ntebm"], config))
    numbers = None
    if paths is not None:
        steps("Figure 5", lambda: m.figure5(runs["ntebm"], paths))
        numbers = steps("numbers (Table 3: one sampler call on the whole bank)", lambda: m.numbers(runs, config, paths))
    if numbers is not None:
        tables += [steps("Table 3", lambda: m.table3(numbers, config)),
                   steps("verdicts", lambda: verdict_table(m.ITEMS, numbers, config.paper_target))]
    return {"runs": runs, "numbers": numbers, "tables": tables, "settings": settings}


def _high_dim(config, steps: Steps) -> dict[str, Any]:
    from ..experiments import high_dim as m

    separated = steps("mode separation (exact samples)", lambda: m.separation(config))
    settings = [steps("Table 6", lambda: m.table6(config)), steps("Table 7", lambda: m.table7(config))]
    runs = m.train_all(config)
    steps("Figure 6", lambda: m.figure6(runs))
    numbers = steps("numbers", lambda: m.numbers(runs, separated)) if separated is not None else None
    tables = [steps("Table 2", lambda: m.table2(runs)), steps("diagnostics", lambda: m.diagnostics_table(runs))]
    return {"runs": runs, "numbers": numbers, "tables": tables, "settings": settings}


def _images(config, steps: Steps) -> dict[str, Any]:
    from ..experiments import images as m

    data = m.load_data(config)
    run = m.train_method(config, m.methods(config)["flowmc"], data.train, data, "05_images")
    values = steps("Figure 7 energies (up to 20 000 images)", lambda: m.figure7_energies(run, data, config),
                   expensive=True)
    samples = steps("Figure 8 samples (64 chains)", lambda: m.figure8_samples(run, config), expensive=True)
    numbers, tables = None, []
    if values is not None:
        steps("Figure 7", lambda: m.figure7(values, run))
        numbers = steps("numbers", lambda: m.numbers(run, values))
        tables.append(steps("table", lambda: m.table(numbers, data.name, "paper")))
    if samples is not None:
        steps("Figure 8", lambda: m.figure8(samples, data.image_shape, run))
    return {"runs": {"flowmc": run}, "numbers": numbers, "tables": tables}


def _class_weights(config, steps: Steps) -> dict[str, Any]:
    from ..experiments import class_weights as m

    study = m.load_data(config)
    runs = m.train_all(config, study)
    measured = steps("common sampler", lambda: {n: m.measure(r, config, study) for n, r in runs.items()},
                     expensive=True)
    own = steps("own-sampler switches", lambda: {n: m.own_switches(r, config, study) for n, r in runs.items()})
    numbers = None
    if measured is not None and own is not None:
        numbers = steps("numbers", lambda: m.numbers(runs, measured, own, study))
        steps("verdicts", lambda: m.verdicts(numbers))
        steps("figure", lambda: m.figure(runs, measured, study))
    return {"runs": runs, "numbers": numbers, "tables": []}


def _mode_weights(config, steps: Steps) -> dict[str, Any]:
    from ..experiments import mode_weights as m

    runs = m.train_all(config)
    steps("figure", lambda: m.figure_weights(runs, config))
    estimates = steps("final weights (SNIS and AIS)", lambda: m.estimate_all(runs, config), expensive=True)
    numbers, tables = None, []
    if estimates is not None:
        tables.append(steps("weight table", lambda: m.weight_table(runs, estimates, config)))
        numbers = steps("numbers", lambda: m.numbers(runs, estimates, config))
    return {"runs": runs, "numbers": numbers, "tables": tables}


def _your_data(config, steps: Steps) -> dict[str, Any]:
    from ..experiments import your_data as m

    data = m.prepare(config)
    settings = [steps("clusters table", lambda: m.data_table(data))]
    steps("clusters figure", lambda: m.figure_clusters(data))
    runs = m.train_all(config, data)
    samples = steps("importance samples", lambda: m.importance_samples(config, data))
    paths = steps("chains on the trained models (512 chains x 256 steps)", lambda: m.chains(runs, config),
                  expensive=True)
    numbers, tables = None, []
    if samples is not None and paths is not None:
        numbers = steps("numbers (cluster weights)", lambda: m.numbers(runs, data, samples, paths, config))
        steps("densities figure", lambda: m.figure_densities(runs, data, samples, config))
        tables += [steps("weights table", lambda: m.weights_table(numbers, data)),
                   steps("diagnostics table", lambda: m.diagnostics_table(numbers))]
    if paths is not None:
        steps("samples figure", lambda: m.figure_samples(paths, data))
    return {"runs": runs, "numbers": numbers, "tables": tables, "settings": settings}


def _methods(name: str, *args: Callable[[Any], Any]) -> Callable[[Any], list[str]]:
    """The names of the methods chapter ``name`` trains: its module's ``methods(config, *arg(config))``."""
    return lambda config: list(CHAPTERS[name].module.methods(config, *(arg(config) for arg in args)))


PIPELINES: dict[str, Pipeline] = {
    "01_motivating_example": Pipeline(_motivating, _methods("01_motivating_example")),
    "02_toy_benchmarks": Pipeline(_toy_benchmarks, _methods("02_toy_benchmarks", lambda c: c.targets[0])),
    "03_extended_example": Pipeline(_extended, _methods("03_extended_example")),
    "04_high_dim_mixture": Pipeline(_high_dim, _methods("04_high_dim_mixture", lambda c: c.dims[0])),
    "05_images": Pipeline(_images, _methods("05_images")),
    "06_class_weights": Pipeline(_class_weights, _methods("06_class_weights")),
    "07_mode_weights": Pipeline(_mode_weights, _methods("07_mode_weights", lambda c: c.dims[0])),
    "08_your_data": Pipeline(_your_data, lambda config: list(METHODS)),  # its methods need the prepared data
}


def pipeline_for(name: str) -> Pipeline:
    """The pipeline of chapter ``name`` (a copy of a chapter at another profile shares its source's)."""
    chapter = get_chapter(name)
    source = getattr(chapter, "experiment", chapter.name)
    if source not in PIPELINES:
        raise InputError(f"{chapter.name} has no training to check (chapters with one: {', '.join(PIPELINES)})")
    return PIPELINES[source]


# --- the check -------------------------------------------------------------------------------------------------------

def _cifar10_root(config: Any, notes: list[str], keep: list[Any]) -> dict[str, Any]:
    """``data_root`` for a CIFAR-10 chapter whose data are not on this machine: a generated stand-in."""
    from ..data import cifar10_folder, write_cifar10_standin

    if getattr(config, "dataset", None) != "cifar10":
        return {}
    try:
        cifar10_folder(config.data_root)
        return {}
    except InputError:
        folder = tempfile.TemporaryDirectory(prefix="ebmflow-cifar10-standin-")
        keep.append(folder)
        notes.append(f"CIFAR-10 is not in {config.data_root}: a generated stand-in of the real files (6 × 10 000 "
                     f"images, uint8) was written to {folder.name}")
        return {"data_root": str(write_cifar10_standin(folder.name))}


def check_chapter(name: str, *, iterations: int = 2, profile: str = "paper", evaluations: str = "cheap",
                  parameters: dict[str, Any] | None = None, cut: bool = True) -> PaperCheck:
    """Run chapter ``name``'s ``profile`` configuration for ``iterations`` training iterations of every method (see
    the module's docstring); ``parameters`` override the profile (``data_root``: a CIFAR-10 copy); ``cut`` applies
    ``CPU_CUTS`` when the configuration runs on a CPU. Raises whatever the chapter raises: a configuration that
    cannot start fails here, in minutes instead of hours into a run."""
    check_int("iterations", iterations)
    chapter = get_chapter(name)
    pipeline = pipeline_for(chapter.name)
    os.environ.setdefault("EBMFLOW_PROGRESS", "0")
    notes: list[str] = []
    keep: list[Any] = []
    overrides = {**dict(parameters or {}), "stop_after": iterations}
    config = resolve_config(chapter.config_cls, chapter.profiles, profile, **overrides)
    overrides.update(_cifar10_root(config, notes, keep))
    device = str(resolve_device(getattr(config, "device", "cpu")))
    scale = 1.0
    cuts = {k: v for k, v in CPU_CUTS.get(getattr(chapter, "experiment", chapter.name), {}).items()
            if k not in (parameters or {})} if cut and device == "cpu" else {}
    batch_size = getattr(config, "batch_size", None)  # the profile's: a cut batch is projected to it
    for knob, value in cuts.items():
        paper_value = getattr(config, knob)
        scale *= paper_value / value
        notes.append(f"{knob} cut from {paper_value} to {value} on this CPU: the time per iteration is projected "
                     f"linearly (× {paper_value / value:g})")
    overrides.update(cuts)
    config = chapter.validate(resolve_config(chapter.config_cls, chapter.profiles, profile, **overrides))
    result = PaperCheck(chapter.name, profile, {k: v for k, v in overrides.items()}, device, start_rss_mb=_rss_mb())
    records: list[dict[str, Any]] = []
    start = time.perf_counter()
    steps = Steps(evaluations)
    try:
        with _measured_training(records):
            outcome = pipeline.run(config, steps)
    finally:
        for folder in keep:
            folder.cleanup()
    names = {id(run.history): "-".join(str(p) for p in (key if isinstance(key, tuple) else (key,)) if p != "")
             for key, run in outcome["runs"].items()}
    runs = {id(run.history): run for run in outcome["runs"].values()}
    for record in records:
        run = runs.get(id(record["history"]))
        evaluations_run = record["evaluations"]
        durations = record["durations"] or [math.nan]
        steady = durations[1:] or durations
        per_evaluation = sum(evaluations_run) / len(evaluations_run) if evaluations_run else math.nan
        batch = batch_size if "batch_size" in cuts else record["batch_size"]  # the full run's batch
        total = record["epochs"] * (record["n_data"] // batch)
        result.runs.append(RunCost(
            method=record["method"], run=names.get(id(record["history"]), record["method"]),
            prepare_seconds=(run.seconds - record["fit"]) if run is not None else math.nan,
            init_seconds=record["init"], iterations=record["history"].iterations,
            iteration_seconds=sum(steady) / len(steady), first_iteration_seconds=durations[0],
            evaluations=len(evaluations_run), evaluation_seconds=per_evaluation, full_iterations=total,
            full_evaluations=_full_evaluations(record["evaluate"], record["eval_every"], total),
            peak_rss_mb=record["peak"],
            diverged=str(record["history"].divergence or ""), scale=scale))
    result.steps, result.seconds, result.peak_rss_mb, result.notes = steps.costs, time.perf_counter() - start, \
        _rss_mb(), notes
    expected = set(pipeline.methods(config))
    if not expected <= set(result.methods):
        raise RuntimeError(f"{chapter.name}: methods {sorted(expected - set(result.methods))} were not trained")
    return result


def check_in_subprocess(name: str, *, iterations: int = 2, profile: str = "paper", evaluations: str = "cheap",
                        parameters: dict[str, Any] | None = None, cut: bool = True, threads: int = 1,
                        timeout: float | None = None) -> PaperCheck:
    """``check_chapter`` in a fresh Python (``threads`` torch threads), so that its peak memory is the chapter's;
    a failure raises RuntimeError with the child's traceback."""
    with tempfile.TemporaryDirectory(prefix="ebmflow-paper-check-") as folder:
        output = Path(folder) / "check.json"
        request = {"name": name, "iterations": iterations, "profile": profile, "evaluations": evaluations,
                   "parameters": dict(parameters or {}), "cut": cut, "threads": threads}
        command = [sys.executable, "-m", "ebmflow.book.paper_check", json.dumps(request), str(output)]
        environment = {**os.environ, "OMP_NUM_THREADS": str(threads), "EBMFLOW_PROGRESS": "0"}
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=environment)
        if done.returncode != 0 or not output.exists():
            raise RuntimeError(f"the paper configuration of {name} failed (status {done.returncode}):\n"
                               f"{done.stderr[-6000:]}")
        return PaperCheck.from_dict(json.loads(output.read_text()))


def _duration(seconds: float) -> str:
    if math.isnan(seconds):
        return "—"
    return (f"{seconds * 1000:.1f} ms" if seconds < 1 else f"{seconds:.2f} s" if seconds < 10 else
            f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min" if seconds < 7200 else
            f"{seconds / 3600:.1f} h" if seconds < 172800 else f"{seconds / 86400:.3g} days")


def format_check(check: PaperCheck) -> str:
    """The chapter's memory and projected time, then one line per training run and per evaluation after training."""
    lines = [f"{check.chapter} at profile {check.profile} on {check.device}: peak memory {check.peak_rss_mb:.0f} MiB "
             f"(at start {check.start_rss_mb:.0f} MiB), checked in {_duration(check.seconds)}; full run projected "
             f"{_duration(check.projected_seconds)}"]
    lines += [f"  note: {note}" for note in check.notes]
    width = max((len(r.run) for r in check.runs), default=0)
    for r in check.runs:
        scaled = f" × {r.scale:g}" if r.scale != 1 else ""
        evaluation = f", evaluation {_duration(r.evaluation_seconds)} × {r.full_evaluations}" if r.full_evaluations \
            else ""
        lines.append(f"  {r.run:<{width}}  {_duration(r.iteration_seconds)}/iteration{scaled} (first "
                     f"{_duration(r.first_iteration_seconds)}), preparation {_duration(r.prepare_seconds)}, chains' "
                     f"start {_duration(r.init_seconds)}{evaluation}; full run ({r.full_iterations} iterations) "
                     f"{_duration(r.projected_seconds)}; peak {r.peak_rss_mb:.0f} MiB" +
                     (f"; {r.diverged}" if r.diverged else ""))
    for s in check.steps:
        skipped = "skipped" + (" (expensive)" if s.expensive else "")
        lines.append(f"  after training: {s.name}: " + (skipped if s.skipped else _duration(s.seconds)))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """``python -m ebmflow.book.paper_check REQUEST_JSON OUTPUT_JSON`` (what ``check_in_subprocess`` runs)."""
    request_text, output = (argv if argv is not None else sys.argv[1:])[:2]
    request = json.loads(request_text)
    torch.set_num_threads(request.pop("threads", 1))
    import matplotlib

    matplotlib.use("Agg")
    check = check_chapter(request.pop("name"), **request)
    Path(output).write_text(json.dumps(check.as_dict(), allow_nan=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
