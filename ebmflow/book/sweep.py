"""Many runs at once on Ray: a chapter over seeds (``sweep``) and the whole book as a graph (``reproduce``).

The unit of work is one run, (chapter, seed, profile, device, parameters) -> an executed notebook and a results
record (``records``). Runs are Ray tasks: with no address a local Ray instance sized to the machine is started
inside the command (and stopped at its end); ``address`` (or $RAY_ADDRESS) joins an existing cluster. Each task
asks for ``threads`` CPUs (Ray sets OMP_NUM_THREADS, inherited by the notebook's kernel) and one GPU when the
run's device is "cuda" (Ray sets CUDA_VISIBLE_DEVICES). A task runs its notebook into
``results/<profile>/<chapter>/<run-key>/`` on its node (checkpoints included, so an interrupted sweep resumes
there) and sends back its record, plus the notebook and figures when it is the book's copy; the command writes
them on its own machine. ``inline=True`` runs the same tasks one after another in this process (tests,
debugging). A failed run is reported with its chapter, seed and error and never cancels the others.
"""
from __future__ import annotations

import logging
import os
import re
import signal
import subprocess
import sys
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from .. import __version__
from ..checks import MAX_SEED, InputError, check_int
from . import records as _records
from . import runner as _runner
from .chapters import BOOK_PROFILE, CHAPTERS, Chapter, get_chapter
from .config import ConfigError

__all__ = ["RunSpec", "Outcome", "parse_seeds", "default_seeds", "sweep_specs", "book_specs", "is_finished",
           "run_specs", "reproduce", "execute", "DEFAULT_SEEDS"]

DEFAULT_SEEDS = (0, 1, 2)  # a chapter module may define its own DEFAULT_SEEDS


MAX_RUNS = 10_000  # one command's runs; more is a typo in --seeds (0-99999), not a sweep


def parse_seeds(text: str) -> list[int]:
    """``"0-4"``, ``"0,2,7"``, ``"0-2,9"`` -> sorted distinct seeds; InputError for anything else."""
    seeds: set[int] = set()
    for part in text.split(","):
        match = re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+)\s*)?", part)
        if not match or (match.group(2) is not None and int(match.group(2)) < int(match.group(1))):
            raise InputError(f"--seeds {text!r} must list non-negative seeds and ranges, e.g. 0-4 or 0,2,7")
        low, high = int(match.group(1)), int(match.group(2) or match.group(1))
        if high >= MAX_SEED:
            raise InputError(f"--seeds {text!r}: seeds must be below 2**62, got {high}")
        if high - low + 1 + len(seeds) > MAX_RUNS:
            raise InputError(f"--seeds {text!r} asks for more than {MAX_RUNS} runs: list fewer seeds")
        seeds.update(range(low, high + 1))
    return sorted(seeds)


def default_seeds(chapter: Chapter) -> tuple[int, ...]:
    return tuple(getattr(chapter.module, "DEFAULT_SEEDS", DEFAULT_SEEDS))


@dataclass(frozen=True)
class RunSpec:
    """One run: a chapter at a profile with one seed and parameter overrides (seed excluded)."""

    chapter: str
    profile: str
    seed: int
    overrides: tuple[tuple[str, Any], ...] = ()  # normalised: only values that differ from the profile's
    book_copy: bool = False  # its notebook and figures become book/<chapter>.ipynb and book/figures/
    results_root: str = ""  # where records and run folders go (the command's results/)

    @property
    def parameters(self) -> dict[str, Any]:
        return {**dict(self.overrides), "seed": self.seed}

    @property
    def key(self) -> str:
        return _records.run_key(self.seed, dict(self.overrides))

    @property
    def label(self) -> str:
        return f"{self.chapter} seed {self.seed}"

    @property
    def device(self) -> str:
        return str(dict(self.overrides).get("device") or get_chapter(self.chapter).profiles[self.profile]
                   .get("device", "cpu"))

    @property
    def experiment(self) -> str:  # a copy of a chapter keeps its runs and records under that chapter's name
        return get_chapter(self.chapter).experiment

    def run_dir(self) -> Path:
        return Path(self.results_root or _records.results_dir()) / self.profile / self.experiment / self.key

    def record_path(self) -> Path:
        return _records.record_path(self.profile, self.experiment, self.key, Path(self.results_root) if
                                    self.results_root else None)


@dataclass
class Outcome:
    spec: RunSpec
    ok: bool
    seconds: float = 0.0
    message: str = ""  # one line (failures)
    details: str = ""  # full traceback (failures)
    record: dict[str, Any] | None = None
    notebook: bytes | None = None  # the executed notebook, for the book's copy
    figures: dict[str, bytes] = field(default_factory=dict)
    node: str = ""


def _cuda_here() -> bool:
    import torch

    return torch.cuda.is_available()


def _spec(chapter: str, profile: str, seed: int, parameters: dict[str, Any], book_copy: bool) -> RunSpec:
    device = str(parameters.get("device", ""))
    elsewhere = device.startswith("cuda") and not _cuda_here()  # the cluster's GPUs are not visible from here:
    checked = {**parameters, "seed": seed, **({"device": "cpu"} if elsewhere else {})}  # checked where it runs
    _, config, overrides, _ = _runner.check_run(chapter, profile, checked)
    overrides.pop("seed", None)
    if elsewhere:
        overrides["device"] = device
    return RunSpec(chapter, profile, seed, tuple(sorted(overrides.items())), book_copy,
                   str(_records.results_dir()))


def sweep_specs(chapter: str, seeds: Iterable[int], profile: str, parameters: dict[str, Any]) -> list[RunSpec]:
    """One chapter over ``seeds``; every input checked before anything starts (ConfigError/InputError)."""
    try:
        name = get_chapter(chapter).name
    except ValueError as error:
        raise ConfigError(str(error)) from None
    if "seed" in parameters:
        raise InputError("give the seeds with --seeds, not -p seed=...")
    if CHAPTERS[name].summary:
        raise InputError(f"{name} is a summary page: it has no seed to sweep over")
    return [_spec(name, profile, seed, parameters, False) for seed in seeds]


def book_specs(profile: str, seeds: Sequence[int] | None = None,
               parameters: dict[str, Any] | None = None) -> list[RunSpec]:
    """Every experiment chapter × its default seeds (or ``seeds``); the first seed is the book's copy. At the book's
    own profile (``BOOK_PROFILE``), a copy of a chapter at another profile (chapter 01 at the paper's settings) is
    one more run: its first seed, at its profile, written to its page. A summary page's module may declare the
    runs it reads (``book_runs(profile)``: the ratio sweep's runs of chapter 01); they are scheduled too."""
    specs = []
    for chapter in CHAPTERS.values():
        if chapter.summary:
            for name, page_seeds, page_parameters in getattr(chapter.module, "book_runs", lambda _: [])(profile):
                specs += [_spec(name, profile, seed, {**page_parameters, **(parameters or {})}, False)
                          for seed in page_seeds]
            continue
        if chapter.copy_of:
            if profile == BOOK_PROFILE:
                seed = (seeds or default_seeds(chapter))[0]
                specs.append(_spec(chapter.name, chapter.book_profile, seed, dict(parameters or {}), True))
            continue
        for index, seed in enumerate(seeds or default_seeds(chapter)):
            specs.append(_spec(chapter.name, profile, seed, dict(parameters or {}), index == 0))
    unique: dict[tuple[str, str, str], RunSpec] = {}  # a page's run may be a chapter's own (smoke: same epochs)
    for spec in sorted(specs, key=lambda s: not s.book_copy):
        unique.setdefault((spec.chapter, spec.profile, spec.key), spec)
    return [spec for spec in specs if unique[(spec.chapter, spec.profile, spec.key)] is spec]


def _book_copy_matches(spec: RunSpec) -> bool:
    import nbformat

    notebook = get_chapter(spec.chapter).notebook
    try:
        metadata = nbformat.read(notebook, as_version=4).metadata.get("ebmflow", {})
    except Exception:
        return False
    return (metadata.get("profile") == spec.profile and metadata.get("run_key") == spec.key
            and metadata.get("ebmflow_version") == __version__)


def is_finished(spec: RunSpec) -> bool:
    """A run with the same key (profile, parameters, seed) and library version has its record (and, for the
    book's copy, book/<chapter>.ipynb comes from that run)."""
    path = spec.record_path()
    if not path.exists():
        return False
    try:
        record = _records.read_record(path)
    except _records.RecordError:
        return False
    parameters = {k: v for k, v in record.get("parameters", {}).items() if k != "seed"}
    same = (record.get("ebmflow_version") == __version__ and record.get("seed") == spec.seed  # compared as JSON:
            and _records._canonical(parameters) == _records._canonical(dict(spec.overrides)))  # lists = tuples
    return same and (not spec.book_copy or _book_copy_matches(spec))


# --- one task ----------------------------------------------------------------------------------------------------

def execute(spec: RunSpec, commit_id: str | None = None) -> Outcome:
    """Run ``spec`` in this process (the body of a Ray task); never raises for a failure of the run."""
    import platform

    start = time.perf_counter()
    node = platform.node()
    try:
        import ray

        if ray.is_initialized():  # inside a Ray task: the node's id (a machine may hold several nodes)
            node = ray.get_runtime_context().get_node_id()
    except ImportError:
        pass
    output = spec.run_dir() / f"{spec.chapter}.ipynb"
    try:
        result = _runner.run_chapter(spec.chapter, spec.profile, spec.parameters, output=output, progress=False,
                                     record=False, resume="auto", commit_id=commit_id, echo=None)
    except _runner.RunError as error:
        return Outcome(spec, False, time.perf_counter() - start, str(error), error.details, node=node)
    except Exception as error:  # noqa: BLE001 - reported with the run, never raised into the sweep
        return Outcome(spec, False, time.perf_counter() - start, f"{type(error).__name__}: {error}",
                       "".join(traceback.format_exception(error)), node=node)
    outcome = Outcome(spec, True, result.seconds, record=result.record, node=node)
    if spec.book_copy:
        outcome.notebook = result.output.read_bytes()
        outcome.figures = {path.name: path.read_bytes() for path in result.figures}
    return outcome


def _keep(outcome: Outcome) -> None:
    """Write what a finished run sent back: its record, and the book's copy (notebook, figures, runtime)."""
    spec = outcome.spec
    root = Path(spec.results_root) if spec.results_root else None
    _records.write_record(outcome.record, root)
    if not spec.book_copy or outcome.notebook is None:
        return
    chapter = get_chapter(spec.chapter)
    book = chapter.notebook.parent
    _runner.remove_stale_temporaries(book)
    pid = os.getpid()
    moves = []
    staged = [book / f".{chapter.name}.tmp{pid}.ipynb"]
    staged[0].write_bytes(outcome.notebook)
    moves.append((staged[0], chapter.notebook))
    figures_tmp = book / f".{chapter.name}.figures.tmp{pid}"
    figures_tmp.mkdir(exist_ok=True)
    for name, content in outcome.figures.items():
        (figures_tmp / name).write_bytes(content)
        moves.append((figures_tmp / name, book / "figures" / name))
    if not spec.overrides:
        import json

        runtimes = _runner.read_runtimes()
        runtimes.setdefault(chapter.experiment, {})[spec.profile] = round(outcome.seconds, 1)
        staged.append(_runner.RUNTIMES_FILE.with_name(f".{_runner.RUNTIMES_FILE.name}.tmp{pid}"))
        staged[-1].write_text(json.dumps(runtimes, indent=1, sort_keys=True) + "\n")
        moves.append((staged[-1], _runner.RUNTIMES_FILE))
    try:
        _runner.commit(moves, book)
    finally:
        for path in staged:
            path.unlink(missing_ok=True)
        import shutil

        shutil.rmtree(figures_tmp, ignore_errors=True)


# --- the engine ----------------------------------------------------------------------------------------------------

class _Bar:
    """One overall progress bar (runs done / total, elapsed, estimated remaining) and a line per finished run."""

    def __init__(self, total: int, show: bool, estimate: float | None = None) -> None:
        from tqdm import tqdm

        self._tqdm = tqdm(total=total, unit="run", file=sys.stderr, disable=not show, dynamic_ncols=True,
                          bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} runs [{elapsed}<{remaining}{postfix}]",
                          desc="runs")
        self.show, self.estimate, self.start = show, estimate, time.monotonic()
        self.tick()

    def tick(self) -> None:
        """Refresh the elapsed time; until a run has finished, show the estimate from the measured runtimes."""
        if self.show:
            if self._tqdm.n == 0 and self.estimate is not None:
                left = max(0.0, self.estimate - (time.monotonic() - self.start))
                self._tqdm.set_postfix_str(f"about {_runner._duration(left)} left (estimate)" if left >= 1 else
                                           "longer than estimated", refresh=False)
            elif self._tqdm.postfix:
                self._tqdm.set_postfix_str("", refresh=False)
            self._tqdm.refresh()

    def done(self, line: str) -> None:
        if self.show:
            self._tqdm.write(line, file=sys.stderr)
        else:
            print(line, file=sys.stderr, flush=True)
        self._tqdm.update()

    def close(self) -> None:
        self._tqdm.close()


def _line(outcome: Outcome, log: Path | None) -> str:
    if outcome.ok:
        return f"done    {outcome.spec.label} ({outcome.seconds:.0f} s)"
    return f"FAILED  {outcome.spec.label}: {outcome.message}" + (f" (log: {log})" if log else "")


def _start_ray(address: str | None, echo: Callable[[str], None]) -> bool:
    """Join ``address`` (or $RAY_ADDRESS) or start a local instance sized to this machine; returns whether this
    call started it (and so must shut it down). A Ray already initialised in this process is used as it is."""
    import ray

    if ray.is_initialized():
        return False
    address = address or os.environ.get("RAY_ADDRESS") or None
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # Ray would otherwise try to send usage statistics
    options: dict[str, Any] = dict(logging_level=logging.WARNING, log_to_driver=False)
    start = time.perf_counter()
    # Ray's token authentication stays on (its default); its notice about it is not for our users
    logging.getLogger("ray._private.authentication.authentication_token_setup").setLevel(logging.ERROR)
    handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    if address:
        ray.init(address=address, **options)
        where = f"joined the Ray cluster at {address}"
    else:
        ray.init(address="local", num_cpus=os.cpu_count(), include_dashboard=False, **options)
        where = "started a local Ray instance"
    if threading.current_thread() is threading.main_thread():  # ray.init replaces the command's SIGTERM handler
        for signum, handler in handlers.items():
            if handler is not None:
                signal.signal(signum, handler)
    resources = ray.cluster_resources()
    echo(f"{where} ({resources.get('CPU', 0):.0f} CPUs, {resources.get('GPU', 0):.0f} GPUs, "
         f"{len(ray.nodes())} node(s)) in {time.perf_counter() - start:.1f} s")
    return True


def run_specs(specs: Sequence[RunSpec], *, address: str | None = None, inline: bool = False, threads: int = 1,
              commit_id: str | None = None, progress: bool | None = None,
              echo: Callable[[str], None] = print) -> list[Outcome]:
    """Run every spec (Ray tasks, or one after another in this process with ``inline``), keep what each finished
    run sends back, print one line per run under one progress bar; returns the outcomes (failures included)."""
    check_int("--threads", threads)
    if not address and not inline and threads > (os.cpu_count() or 1):
        raise InputError(f"--threads {threads} exceeds this machine's {os.cpu_count()} CPUs: no run could start "
                         f"(give --address of a cluster with bigger nodes, or fewer threads)")
    if inline and threads != 1:
        echo(f"ebmflow: warning: --threads {threads} is ignored with --inline (the runs share this process)")
    if not specs:
        return []
    commit_id = commit_id if commit_id is not None else _records.git_commit()
    show = sys.stderr.isatty() if progress is None else progress
    outcomes: list[Outcome] = []

    def finish(outcome: Outcome, bar: _Bar) -> None:
        log = None
        if outcome.ok:
            try:
                _keep(outcome)
            except OSError as error:
                outcome.ok, outcome.message, outcome.details = False, f"cannot keep its results: {error}", \
                    traceback.format_exc()
        if not outcome.ok:
            log = _runner.write_log(outcome.spec.chapter, f"{outcome.spec}\n{outcome.details}", outcome.spec.seed)
        outcomes.append(outcome)
        bar.done(_line(outcome, log))

    def estimate(spec: RunSpec) -> float | None:
        try:
            config = _runner.check_run(spec.chapter, spec.profile, spec.parameters)[1]
        except InputError:  # a GPU run checked from a machine without one
            return None
        return _runner.estimate_seconds(get_chapter(spec.chapter), spec.profile, config)[0]

    estimates = [estimate(spec) for spec in specs]
    if inline:
        bar = _Bar(len(specs), show)
        try:
            for spec in specs:
                finish(execute(spec, commit_id), bar)
        finally:
            bar.close()
        return outcomes

    import ray

    started = _start_ray(address, echo)
    try:
        slots = max(1, int(ray.cluster_resources().get("CPU", 1) // threads))
        if any(spec.device.startswith("cuda") for spec in specs) and not ray.cluster_resources().get("GPU"):
            raise InputError("device 'cuda' was asked for but the Ray cluster has no GPU: use --device cpu, or "
                             "--address of a cluster with GPUs")
        known = [e for e in estimates if e is not None]
        if known:
            mean = sum(known) / len(known)
            total = sum(e if e is not None else mean for e in estimates)
            waves = -(-len(specs) // slots)  # rounds of at most `slots` runs side by side
            wall = max(total / slots, waves * total / len(specs))
            echo(f"{len(specs)} runs, {min(slots, len(specs))} at a time: estimated {_runner._duration(wall)} "
                 f"(from the measured runtimes)")
        else:
            wall = None
        remote = ray.remote(execute)
        pending = {}
        for spec in specs:
            gpus = 1 if spec.device == "cuda" else 0
            ref = remote.options(num_cpus=threads, num_gpus=gpus, max_retries=0).remote(spec, commit_id)
            pending[ref] = spec
        bar = _Bar(len(specs), show, wall)
        try:
            while pending:
                ready, _ = ray.wait(list(pending), num_returns=1, timeout=1.0)
                bar.tick()
                for ref in ready:
                    spec = pending.pop(ref)
                    try:
                        outcome = ray.get(ref)
                    except Exception as error:  # noqa: BLE001 - the worker itself died (memory, node lost)
                        message = f"its Ray worker died ({type(error).__name__}); memory may be the cause"
                        outcome = Outcome(spec, False, message=message, details="".join(
                            traceback.format_exception(error)))
                    finish(outcome, bar)
        except BaseException:
            for ref in pending:
                ray.cancel(ref, force=True)
            raise
        finally:
            bar.close()
    finally:
        if started:
            ray.shutdown()
    return outcomes


def reproduce(profile: str, seeds: Sequence[int] | None = None, *, force: bool = False, address: str | None = None,
              parameters: dict[str, Any] | None = None, inline: bool = False, html: bool = True,
              progress: bool | None = None, echo: Callable[[str], None] = print) -> list[Outcome]:
    """The whole book as a graph: every experiment chapter × its default seeds in parallel (finished runs with the
    same key and library version skipped unless ``force``), then the summary pages (intro, report), then the
    HTML book. Stops before the summary pages when a run failed (the failures are returned)."""
    specs = book_specs(profile, seeds, parameters)
    todo = [spec for spec in specs if force or not is_finished(spec)]
    if len(todo) < len(specs):
        echo(f"{len(specs) - len(todo)} of {len(specs)} runs already finished with this library version: kept "
             f"(--force re-runs them)")
    outcomes = run_specs(todo, address=address, inline=inline, progress=progress, echo=echo)
    failed = [o for o in outcomes if not o.ok]
    if failed:
        echo(f"{len(failed)} run(s) failed: not updating the summary pages nor the HTML book")
        return outcomes
    for chapter in CHAPTERS.values():
        if chapter.summary and (todo or force or not _summary_current(chapter, profile)):
            _runner.run_chapter(chapter.name, profile, progress=False, echo=echo)
    if html:
        root = _runner.ROOT
        echo("building the HTML book")
        result = subprocess.run([sys.executable, "-c", "import sys; from jupyter_book.cli.main import main; "
                                 "sys.exit(main())", "build", str(root), "-W", "-n", "--keep-going"],
                                capture_output=True, text=True)
        if result.returncode != 0:
            log = _runner.write_log("html", result.stdout + result.stderr)
            raise _runner.RunError(f"the HTML book did not build without warnings (log: {log})", "")
        echo(f"book: {root / '_build' / 'html' / 'index.html'}")
    return outcomes


def _summary_current(chapter: Chapter, profile: str) -> bool:
    import nbformat

    try:
        metadata = nbformat.read(chapter.notebook, as_version=4).metadata.get("ebmflow", {})
    except Exception:
        return False
    return metadata.get("profile") == profile and metadata.get("ebmflow_version") == __version__
