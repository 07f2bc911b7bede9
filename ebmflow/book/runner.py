"""Execute one run of a chapter with papermill: inputs checked first, every output committed together.

A run writes, only when the whole notebook succeeded: the executed notebook (``output``, default the chapter's
own notebook in ``book/``), its figures (``figures/`` beside the notebook: PNG and PDF of every figure), the
results record (``results/<profile>/<chapter>/<run-key>.json``, see ``records``) and, for a run of the book's
own copy with the profile's parameters, its wall time in ``book/runtimes.json``. Until then everything lives
in temporaries beside its destination (``.NAME.tmpPID...``); the final moves are listed in a journal first, so
a kill in the middle of them is completed by the next run, and a failed or interrupted run leaves every
previous output byte-identical. The next run in the same folder removes the temporaries of killed runs.

Training runs checkpoint into ``.<stem>.checkpoints/`` beside the output ($EBMFLOW_CHECKPOINT_DIR for the
kernel; every $EBMFLOW_CHECKPOINT_SECONDS, default 300 s). A fresh run clears them; ``resume=True``
continues from them; a successful run removes them.
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import re
import shutil
import signal
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterator

from .. import __version__
from ..checks import InputError
from . import chapters as _chapters
from . import records as _records
from .chapters import BOOK_DIR, Chapter, get_chapter
from .config import ConfigError, resolve_config

__all__ = ["run_chapter", "RunResult", "RunError", "RUNTIMES_FILE", "read_runtimes", "estimate_seconds",
           "normalized_overrides", "check_run", "stop_kernels", "checkpoint_dir_for", "remove_stale_temporaries", "write_log",
           "hide_injected_parameters", "ROOT"]

ROOT = BOOK_DIR.parent
RUNTIMES_FILE = BOOK_DIR / "runtimes.json"
LOG_ENV = "EBMFLOW_LOG_DIR"  # where failure logs go (default results/logs/)
KERNEL_OVERHEAD_SECONDS = 6.0  # kernel start and imports, not scaled by the parameters (README, measured)
_TEMPORARY = re.compile(r"^\..+\.tmp(\d+)(\..*)?$")  # .NAME.tmpPID[.ext]: a run's temporary, PID = its writer
_OLD_FIGURE_TEMPORARY = re.compile(r"^\..+\.tmp\.(png|pdf)$")  # written by savefig inside a killed kernel


class RunError(Exception):
    """A failure during a run (after the inputs were checked): ``str`` is one line naming the chapter and the
    cell; ``details`` is the full traceback for the log file."""

    def __init__(self, message: str, details: str = "") -> None:
        super().__init__(message)
        self.details = details or message


@dataclass
class RunResult:
    chapter: str
    profile: str
    output: Path
    seconds: float
    overrides: dict[str, Any]
    seed: int | None = None
    run_key: str | None = None
    record: dict[str, Any] | None = None  # the results record (experiment chapters)
    record_path: Path | None = None  # where it was written (None: not written, e.g. record=False)
    figures: list[Path] = field(default_factory=list)

    def __fspath__(self) -> str:  # a RunResult can be used where the output path is expected
        return str(self.output)

    def __str__(self) -> str:
        return str(self.output)


# --- runtimes and estimates ------------------------------------------------------------------------------------

def read_runtimes() -> dict[str, dict[str, float]]:
    """Measured wall times in seconds, {chapter: {profile: seconds}}, as recorded by ``run_chapter``."""
    return json.loads(RUNTIMES_FILE.read_text()) if RUNTIMES_FILE.exists() else {}


def _work(chapter: Chapter, config: Any) -> float:
    """Relative amount of work of a configuration: the chapter module's ``estimated_work(config)`` if it has
    one, else epochs × n_data (training points visited), capped at stop_after iterations."""
    custom = getattr(chapter.module, "estimated_work", None)
    if custom is not None:
        return float(custom(config))
    epochs, n_data = getattr(config, "epochs", 1), getattr(config, "n_data", 1)
    work = float(epochs * n_data)
    stop_after, batch_size = getattr(config, "stop_after", 0), getattr(config, "batch_size", None)
    if stop_after and batch_size:
        work = min(work, float(stop_after * batch_size))
    return work


def estimate_seconds(chapter: Chapter, profile: str, config: Any) -> tuple[float | None, str]:
    """Estimated wall time of a run and how it was obtained: the profile's measured time (book/runtimes.json),
    its kernel start-up part kept and the rest scaled by the work ratio (``_work``) of ``config`` to the profile's
    own configuration. None when the profile was never measured here."""
    measured = read_runtimes().get(chapter.experiment, {}).get(profile)
    if measured is None:
        return None, f"no measured runtime for {chapter.experiment} at profile {profile!r} yet"
    if chapter.summary:
        return measured, f"measured {measured:.0f} s"
    ratio = _work_ratio(chapter, profile, config)
    overhead = min(KERNEL_OVERHEAD_SECONDS, measured)
    how = (f"measured {measured:.0f} s at profile {profile}" if math.isclose(ratio, 1) else
           f"measured {measured:.0f} s at profile {profile}, training scaled ×{ratio:.3g} by epochs × n_data")
    return overhead + (measured - overhead) * ratio, how


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min" if seconds < 7200 else \
        f"{seconds / 3600:.1f} h" if seconds < 172800 else f"{seconds / 86400:.3g} days"


LONG_RUN_SECONDS = 86400.0  # an estimate beyond a day gets a warning line (the run still starts)
LONG_RUN_RATIO = 1000.0  # with no measured runtime: a run doing this many times its profile's work gets one


def _work_ratio(chapter: Chapter, profile: str, config: Any) -> float:
    return _work(chapter, config) / _work(chapter, resolve_config(chapter.config_cls, chapter.profiles, profile))


# --- inputs ------------------------------------------------------------------------------------------------------

def normalized_overrides(chapter: Chapter, profile: str, parameters: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    """The checked configuration and the parameters that differ from the profile's values (the run's identity:
    ``-p epochs=2`` at a profile whose epochs is 2 is no override)."""
    if "profile" in parameters:
        raise ConfigError(f"'profile' is not a parameter: use --profile {parameters['profile']} instead of "
                          f"-p profile={parameters['profile']}")
    config = chapter.validate(resolve_config(chapter.config_cls, chapter.profiles, profile, **parameters))
    base = resolve_config(chapter.config_cls, chapter.profiles, profile)
    overrides = {f.name: getattr(config, f.name) for f in dataclasses.fields(config)
                 if getattr(config, f.name) != getattr(base, f.name)}
    return config, overrides


def _check_output(chapter: Chapter, output: Path) -> None:
    try:
        _check_output_path(chapter, output)
    except OSError as error:  # a name too long, a path the system refuses: one sentence, not a traceback
        raise InputError(f"--output {output}: {error.strerror or error}: choose another path") from None


def _check_output_path(chapter: Chapter, output: Path) -> None:
    if output.is_dir():
        raise InputError(f"--output {output} is a directory: give a notebook path ending in .ipynb")
    if output.suffix != ".ipynb":
        raise InputError(f"--output {output} must be a notebook path ending in .ipynb")
    for other in _chapters.CHAPTERS.values():
        if other.name != chapter.name and output.resolve() == other.notebook.resolve():
            raise InputError(f"--output {output} is chapter {other.name}'s notebook: choose another path")
    parent = output.parent
    existing = parent
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise InputError(f"--output {output}: {existing} is a file, not a folder: give a notebook path in a folder")
    if not os.access(existing, os.W_OK | os.X_OK) or not _can_create_in(existing):
        raise InputError(f"--output {output}: cannot write in {existing} (not a writable folder): choose a folder "
                         f"you can write to")


def _can_create_in(folder: Path) -> bool:
    """Whether a file can be created in ``folder`` (tried: permissions alone miss read-only file systems and
    root's rights)."""
    import tempfile

    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".ebmflow-probe.tmp"):
            return True
    except OSError:
        return False


def check_run(name: str, profile: str, parameters: dict[str, Any] | None = None,
              output: Path | None = None) -> tuple[Chapter, Any, dict[str, Any], Path]:
    """Every check of a run that needs no kernel: chapter, profile, parameter names, types and ranges, the
    output path. Returns (chapter, config, overrides, output); raises InputError (ConfigError) otherwise."""
    try:
        chapter = get_chapter(name)
    except ValueError as error:
        raise ConfigError(str(error)) from None
    output = Path(output) if output is not None else chapter.notebook
    chapter = _copy_written_to(chapter, output)
    if chapter.copy_of and _same_path(output, chapter.notebook) and profile != chapter.book_profile:
        raise ConfigError(f"{chapter.name} ({_relative(chapter.notebook)}) is chapter {chapter.copy_of} at the "
                          f"{chapter.book_profile} profile: run it with --profile {chapter.book_profile} (or give "
                          f"another --output)")
    config, overrides = normalized_overrides(chapter, profile, dict(parameters or {}))
    _check_output(chapter, output)
    return chapter, config, overrides, output


def _same_path(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve()
    except (OSError, RuntimeError):  # a path the system refuses: _check_output names it
        return False


def _copy_written_to(chapter: Chapter, output: Path) -> Chapter:
    """The copy of ``chapter`` whose book notebook is ``output`` (``ebmflow run 01_motivating_example --profile
    paper --output book/01_motivating_example_paper.ipynb`` runs that copy), else ``chapter`` itself."""
    for other in _chapters.CHAPTERS.values():
        if other.copy_of == chapter.name and _same_path(output, other.notebook):
            return other
    return chapter


def checkpoint_dir_for(output: Path) -> Path:
    """Where the training runs of the run writing ``output`` checkpoint: ``.<stem>.checkpoints/`` beside it."""
    return output.parent / f".{output.stem}.checkpoints"


# --- temporaries and the commit journal --------------------------------------------------------------------------

def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def _finish_journal(journal: Path) -> None:
    """Complete the moves listed in a commit journal (those whose source is still there), then drop it."""
    try:
        moves = json.loads(journal.read_text())
    except (OSError, ValueError):  # the journal itself was not completely written: nothing was moved yet
        moves = []
    for source, destination in moves:
        if Path(source).exists():
            Path(destination).parent.mkdir(parents=True, exist_ok=True)
            os.replace(source, destination)
    journal.unlink(missing_ok=True)


def remove_stale_temporaries(directory: Path) -> list[Path]:
    """Finish the commits and remove the temporaries (``.NAME.tmpPID...``) left in ``directory`` (and its
    ``figures/``) by runs whose process is gone; returns what was removed."""
    removed: list[Path] = []
    if not directory.is_dir():
        return removed
    entries = sorted(directory.iterdir())
    for path in entries:  # journals first: their sources are temporaries that must be moved, not removed
        match = _TEMPORARY.match(path.name)
        if match and path.name.startswith(".ebmflow-commit") and not _alive(int(match.group(1))):
            _finish_journal(path)
            removed.append(path)
    for path in sorted(directory.iterdir()):
        match = _TEMPORARY.match(path.name)
        if match and not _alive(int(match.group(1))):
            _remove(path)
            removed.append(path)
    figures = directory / "figures"
    if figures.is_dir():
        for path in figures.iterdir():
            match = _TEMPORARY.match(path.name)
            if _OLD_FIGURE_TEMPORARY.match(path.name) or (match and not _alive(int(match.group(1)))):
                _remove(path)
                removed.append(path)
    return removed


@contextlib.contextmanager
def _signals_deferred() -> Iterator[None]:
    """SIGINT and SIGTERM wait until the block is done (the final moves of a commit)."""
    try:
        previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    except (AttributeError, OSError, ValueError):
        previous = None
    try:
        yield
    finally:
        if previous is not None:
            signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def commit(moves: list[tuple[Path, Path]], journal_dir: Path) -> None:
    """Move every (temporary, destination) into place as one step: the list is written to a journal first,
    so that a run killed during the moves is completed by the next run (``remove_stale_temporaries``)."""
    journal = journal_dir / f".ebmflow-commit.tmp{os.getpid()}.json"
    staged = journal.with_name(journal.name + f".tmp{os.getpid()}")
    with _signals_deferred():
        staged.write_text(json.dumps([[str(s), str(d)] for s, d in moves]))
        os.replace(staged, journal)
        _finish_journal(journal)


# --- failures --------------------------------------------------------------------------------------------------

def _cell_text(cell: dict) -> str:
    lines = [line for line in cell.get("source", "").splitlines() if line.strip() and not line.startswith("#")]
    first = lines[0].strip() if lines else ""
    return first if len(first) <= 70 else first[:67] + "..."


def _running_cell(notebook_path: Path) -> tuple[int | None, str]:
    """The cell papermill marked as running (or failed) in the partially written output notebook."""
    import nbformat

    try:
        notebook = nbformat.read(notebook_path, as_version=4)
    except Exception:
        return None, ""
    number, last = 0, (None, "")
    for cell in notebook.cells:
        if cell.cell_type != "code" or "injected-parameters" in cell.metadata.get("tags", []):
            continue  # numbered as in the chapter's own notebook
        number += 1
        state = cell.metadata.get("papermill", {})
        if state.get("status") in ("running", "failed") or state.get("exception"):
            return number, _cell_text(cell)
        if state.get("start_time"):  # a kernel that died: papermill marks its cell completed; the last started
            last = (number, _cell_text(cell))
    return last


def _describe_failure(chapter: str, error: BaseException, temporary: Path) -> RunError:
    import traceback

    from papermill.exceptions import PapermillExecutionError, strip_color

    if isinstance(error, PapermillExecutionError):
        number, text = _running_cell(temporary)
        where = f"code cell {number} ({text})" if number else f"cell In [{error.exec_count}]"
        evalue = strip_color(error.evalue).strip().splitlines()
        message = f"{chapter} failed in {where}: {error.ename}: {evalue[-1] if evalue else ''}"
        return RunError(message, strip_color("\n".join(error.traceback)))
    details = "".join(traceback.format_exception(error))
    number, text = _running_cell(temporary)
    where = f"code cell {number} ({text})" if number else "a cell"
    if type(error).__name__ == "DeadKernelError":
        return RunError(f"{chapter}: the kernel died while running {where}; it may have run out of memory "
                        f"(try a smaller profile, fewer chains or a bigger machine)", details)
    return RunError(f"{chapter} failed while running {where}: {type(error).__name__}: {error}", details)


def write_log(chapter: str, details: str, seed: int | None = None) -> Path:
    """Write a failure's full traceback to results/logs/ (or $EBMFLOW_LOG_DIR); returns the file."""
    directory = Path(os.environ.get(LOG_ENV) or _records.results_dir() / "logs")
    directory.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    path = directory / f"{chapter}{'' if seed is None else f'-seed{seed}'}-{stamp}-{os.getpid()}.log"
    path.write_text(details if details.endswith("\n") else details + "\n")
    return path


def stop_kernels() -> None:
    """Stop the Jupyter kernels this process started (an interrupted papermill may leave its kernel)."""
    try:
        import psutil
    except ImportError:
        return
    for child in psutil.Process().children(recursive=True):
        with contextlib.suppress(psutil.Error):
            if "ipykernel" in " ".join(child.cmdline()):
                child.kill()


@contextlib.contextmanager
def _quiet_papermill() -> Iterator[None]:
    """Papermill's warnings about the parameters cell's comments are noise here: the names were checked."""
    import logging

    papermill_logger = logging.getLogger("papermill")
    level = papermill_logger.level
    papermill_logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        papermill_logger.setLevel(level)


@contextlib.contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


# --- the run -------------------------------------------------------------------------------------------------------

def _identity(chapter: Chapter, profile: str, overrides: dict[str, Any], seed: int | None) -> dict[str, Any]:
    return {"chapter": chapter.experiment, "profile": profile, "parameters": overrides, "seed": seed,
            "ebmflow_version": __version__}


def _mark_copy(notebook: Any, chapter: Chapter, profile: str) -> None:
    """A copy's page says what it is: its title names the profile, a line under it links the chapter it copies."""
    for cell in notebook.cells:
        lines = cell.source.splitlines()
        heading = next((i for i, line in enumerate(lines) if line.startswith("# ")), None)
        if cell.cell_type == "markdown" and heading is not None:
            lines[heading] += f" ({profile} profile)"
            source = f"chapter {chapter.copy_of.split('_')[0]} <{chapter.copy_of}>"
            note = (f"*This page is {{doc}}`{source}` executed at the `{profile}` profile (`ebmflow run "
                    f"{chapter.name}`): the same code and text, the settings below. The report judges its numbers "
                    f"apart from that chapter's.*")
            lines[heading + 1:heading + 1] = ["", note] + ([""] if lines[heading + 1:heading + 2] != [""] else [])
            cell.source = "\n".join(lines)
            break
    relabel(notebook, f"-{profile}-profile")


def relabel(notebook: Any, suffix: str) -> None:
    """Suffix every label the notebook defines (figure names, ``(name)=`` targets, ``:name:`` options) and its own
    references to them: a copy's "Figure 1" is ``figure-1-paper-profile``, apart from its source's ``figure-1``
    (the label the report links for the item "Figure 1 (paper profile)")."""
    from .report import notebook_labels

    labels = sorted(notebook_labels(notebook), key=len, reverse=True)
    if not labels:
        return
    pattern = re.compile(r"(?<![\w-])(" + "|".join(map(re.escape, labels)) + r")(?![\w-])")
    for cell in notebook.cells:
        figure = cell.metadata.get("mystnb", {}).get("figure", {})
        if figure.get("name") in labels:
            figure["name"] += suffix
        if cell.cell_type == "markdown":
            cell.source = pattern.sub(lambda match: match.group(1) + suffix, cell.source)


def _prepare_checkpoints(directory: Path, identity: dict[str, Any], resume: bool | str) -> bool:
    """Clear the checkpoints for a fresh run or check they belong to this run when resuming ("auto": keep them
    only if they do). Returns whether checkpoints from an earlier run are kept."""
    marker = directory / "run.json"
    if resume and directory.exists():
        try:
            theirs = json.loads(marker.read_text())
        except (OSError, ValueError):
            theirs = None
        if theirs == json.loads(json.dumps(identity)):
            return any(directory.glob("*.pt"))
        if resume != "auto":
            raise ConfigError(f"the checkpoints in {directory} were written by another run ({theirs}); run without "
                              f"--resume to start afresh")
    if directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
    marker.write_text(json.dumps(identity, sort_keys=True))
    return False


def run_chapter(name: str, profile: str = "cpu", parameters: dict[str, Any] | None = None,
                output: Path | None = None, progress: bool = True, record: bool = True, *,
                resume: bool | str = False, commit_id: str | None = None, write_record: bool | None = None,
                echo: Callable[[str], None] | None = print) -> RunResult:
    """Run chapter ``name`` at ``profile`` with ``parameters`` overriding the profile's values.

    Everything that needs no kernel is checked first (``check_run``: ConfigError/InputError). The executed
    notebook goes to ``output`` (default: the chapter itself, in ``book/``), its figures to ``figures/`` beside
    it, all committed together only when the whole notebook succeeded (see the module's docstring). With
    ``record`` the results record is written to results/ (``write_record`` overrides that alone) and, for the
    book's own copy with no override, the wall time to ``book/runtimes.json``. ``resume``: continue the training
    runs from their checkpoints (True: they must belong to this run; "auto": used only if they do).
    ``progress`` shows the training bars in the terminal; ``echo`` prints the estimate (None: silent).
    Raises RunError (one line; ``details`` holds the traceback) when the notebook fails or its kernel dies.
    """
    import nbformat
    import papermill

    chapter, config, overrides, output = check_run(name, profile, parameters, output)
    seed = getattr(config, "seed", None)
    book_copy = output.resolve() == chapter.notebook.resolve()
    directory = output.parent
    if not directory.exists() and echo is not None:
        echo(f"creating the folder {directory} for --output")
    directory.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(directory)
    checkpoints = checkpoint_dir_for(output)
    identity = _identity(chapter, profile, overrides, seed)
    resumed = False if chapter.summary else _prepare_checkpoints(checkpoints, identity, resume)
    write_record = record if write_record is None else write_record

    estimate, how = estimate_seconds(chapter, profile, config)
    if echo is not None:
        what = f"{chapter.name} at profile {profile}" + ("" if seed is None else f", seed {seed}") + (
            f", device {config.device}" if hasattr(config, "device") else "")
        cost = f"estimated {_duration(estimate)} ({how})" if estimate is not None else how
        echo(f"{what}{' (resuming from checkpoints)' if resumed else ''}: {cost}")
        if estimate is not None and estimate > LONG_RUN_SECONDS:
            echo(f"ebmflow: warning: this run is estimated to take {_duration(estimate)}; Ctrl-C stops it (its "
                 f"checkpoints let --resume continue it later)")
        elif estimate is None and not chapter.summary and (ratio := _work_ratio(chapter, profile, config)) > \
                LONG_RUN_RATIO:
            echo(f"ebmflow: warning: this run does {ratio:.3g} times the training work of profile {profile} (epochs "
                 f"× n_data), whose runtime was never measured here; Ctrl-C stops it (--resume continues it)")

    pid = os.getpid()
    temporary = directory / f".{output.stem}.tmp{pid}.ipynb"
    figures_tmp = directory / f".{output.stem}.figures.tmp{pid}"
    figures_tmp.mkdir()
    # absolute: the kernel runs in book/, a relative --output is relative to this process's folder
    environment = {"EBMFLOW_FIGURE_DIR": str(figures_tmp.resolve()),
                   "EBMFLOW_PROGRESS": "terminal" if progress else "0"}
    if not chapter.summary:
        environment["EBMFLOW_CHECKPOINT_DIR"] = str(checkpoints.resolve())
    started = datetime.now(timezone.utc).isoformat(timespec="seconds")
    start = time.perf_counter()
    staged: list[Path] = []
    try:
        try:
            with _environment(environment), _quiet_papermill():
                papermill.execute_notebook(str(chapter.source_notebook), str(temporary),
                                           parameters={"profile": profile, **dict(parameters or {})},
                                           cwd=str(BOOK_DIR), kernel_name="python3", progress_bar=False,
                                           log_output=False, extra_arguments=["--IPKernelApp.log_level=ERROR"])
        except KeyboardInterrupt:
            stop_kernels()
            raise
        except Exception as error:  # noqa: BLE001 - every failure inside the notebook becomes one RunError
            raise _describe_failure(chapter.name, error, temporary) from None
        seconds = time.perf_counter() - start

        notebook = nbformat.read(temporary, as_version=4)
        hide_injected_parameters(notebook)
        if chapter.copy_of:
            _mark_copy(notebook, chapter, profile)
        key = None if seed is None else _records.run_key(seed, overrides)
        notebook.metadata["ebmflow"] = {"chapter": chapter.name, "profile": profile, "parameters": overrides,
                                        "seed": seed, "run_key": key, "ebmflow_version": __version__,
                                        "seconds": round(seconds, 1)}
        nbformat.write(notebook, temporary)
        moves: list[tuple[Path, Path]] = [(temporary, output)]
        figures = []
        for path in sorted(figures_tmp.iterdir()):
            if not path.name.startswith("."):  # a copy's figures are named apart from its source's
                name = f"{path.stem}_{profile}{path.suffix}" if chapter.copy_of else path.name
                moves.append((path, directory / "figures" / name))
                figures.append(directory / "figures" / name)

        result = RunResult(chapter.name, profile, output, seconds, overrides, seed, key, figures=figures)
        if not chapter.summary:
            glued, timings = _glued_of(notebook)
            result.record = _records.make_record(
                chapter=chapter.experiment, profile=profile, seed=seed, device=config.device, overrides=overrides,
                config=dataclasses.asdict(config), glued=glued, timings=timings, seconds=seconds,
                notebook=_relative(output), commit=commit_id if commit_id is not None else _records.git_commit(),
                machine=_records.machine_info(config.device), started=started)
            if write_record:
                destination = _records.record_path(profile, chapter.experiment, key)
                destination.parent.mkdir(parents=True, exist_ok=True)
                remove_stale_temporaries(destination.parent)
                source = destination.with_name(f".{destination.name}.tmp{pid}")
                source.write_text(json.dumps(result.record, indent=1, sort_keys=True, allow_nan=False) + "\n")
                staged.append(source)
                moves.append((source, destination))
                result.record_path = destination
        if record and book_copy and not overrides:
            runtimes = read_runtimes()
            runtimes.setdefault(chapter.experiment, {})[profile] = round(seconds, 1)
            source = RUNTIMES_FILE.with_name(f".{RUNTIMES_FILE.name}.tmp{pid}")
            source.write_text(json.dumps(runtimes, indent=1, sort_keys=True) + "\n")
            staged.append(source)
            moves.append((source, RUNTIMES_FILE))
        commit(moves, directory)
        shutil.rmtree(checkpoints, ignore_errors=True)
        return result
    finally:
        temporary.unlink(missing_ok=True)
        shutil.rmtree(figures_tmp, ignore_errors=True)
        for path in staged:
            path.unlink(missing_ok=True)


def hide_injected_parameters(notebook) -> None:
    """Tag papermill's injected "profile = ..." cell ``remove-cell``: not part of the page, which states its profile
    and seed itself (papermill copies no tags to the cell it injects)."""
    for cell in notebook.cells:
        tags = cell.metadata.setdefault("tags", [])
        if "injected-parameters" in tags and "remove-cell" not in tags:
            tags.append("remove-cell")


def _relative(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


def _glued_of(notebook) -> tuple[dict[str, Any], dict[str, Any]]:
    """Glued values of an executed notebook, split into numbers and timings (cells whose output is not checked,
    tagged nbval-ignore-output)."""
    import tempfile

    import nbformat

    from .glued import read_glued

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "notebook.ipynb"
        nbformat.write(notebook, path)
        glued = read_glued(path)
    timing_keys = {output.get("metadata", {}).get("scrapbook", {}).get("name")
                   for cell in notebook.cells if "nbval-ignore-output" in cell.metadata.get("tags", [])
                   for output in cell.get("outputs", [])}
    return ({k: v for k, v in glued.items() if k not in timing_keys},
            {k: v for k, v in glued.items() if k in timing_keys})
