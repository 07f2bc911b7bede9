"""Results records: one small JSON file per run of a chapter, readable without the library.

A run is (chapter, seed, profile, device, parameters) -> an executed notebook plus a record under
``results/<profile>/<chapter>/<run-key>.json``. The run key is readable: ``seed<N>-default`` when the
parameters are the profile's, else ``seed<N>-<8 hex>``, a hash of the parameter overrides (seed excluded).
A record holds every number the chapter glued (NaN and infinities stored as null, named in ``non_finite``;
``diverged`` is true when a number is not finite or a ``*diverged_at*`` number is not 0), the timings it
glued in cells whose output is not checked (``timings``), the profile, seed, device, parameter overrides,
the full configuration, the machine (CPU model, cores, torch and BLAS versions, GPU), the ebmflow version,
the git commit and the wall time. ``load_records`` reads them back and ``summarize`` gives mean ± sd per
glued key over seeds, refusing to combine records of different profiles, library versions or parameters.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import platform
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping

from .. import __version__
from ..checks import InputError

__all__ = ["FORMAT", "RESULTS_DIR", "RecordError", "MixedRecordsError", "run_key", "record_path", "make_record",
           "write_record", "read_record", "load_records", "Summary", "summarize", "machine_info", "git_commit",
           "results_dir"]

FORMAT = "ebmflow-run-record/1"
ROOT = Path(__file__).resolve().parent.parent.parent
RESULTS_DIR = ROOT / "results"
RESULTS_ENV = "EBMFLOW_RESULTS_DIR"  # where records go instead of results/ (tests, scratch runs)


class RecordError(InputError):
    """A record that cannot be read (damaged file, another format)."""


class MixedRecordsError(InputError):
    """Records of different profiles, library versions, chapters or parameters asked to give one verdict."""


def results_dir() -> Path:
    return Path(os.environ.get(RESULTS_ENV) or RESULTS_DIR)


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def run_key(seed: int, overrides: Mapping[str, Any]) -> str:
    """``seed<N>-default`` without overrides, else ``seed<N>-<sha256 of the overrides, 8 hex digits>``."""
    rest = {k: v for k, v in overrides.items() if k != "seed"}
    if not rest:
        return f"seed{seed}-default"
    return f"seed{seed}-{hashlib.sha256(_canonical(rest).encode()).hexdigest()[:8]}"


def record_path(profile: str, chapter: str, key: str, root: Path | None = None) -> Path:
    return (root or results_dir()) / profile / chapter / f"{key}.json"


def git_commit(root: Path = ROOT) -> str | None:
    """The checked-out commit, with ``+dirty`` when tracked files differ from it (None outside git)."""
    try:
        commit = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                                timeout=10).stdout.strip()
        if not commit:
            return None
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=20).stdout.strip()
        return commit + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info(device: str = "cpu") -> dict[str, Any]:
    """Where a run ran: CPU model and cores, Python, torch and its BLAS, numpy's BLAS, the GPU if used."""
    import numpy
    import torch

    config = torch.__config__.show()
    blas = re.search(r"BLAS_INFO=(\S+)", config)
    try:
        numpy_blas = numpy.show_config(mode="dicts")["Build Dependencies"]["blas"]
        numpy_blas = f"{numpy_blas.get('name')} {numpy_blas.get('version')}"
    except Exception:  # the layout of numpy's build information is not a stable API
        numpy_blas = None
    info = {"cpu": _cpu_model(), "cores": os.cpu_count(), "platform": platform.platform(),
            "python": platform.python_version(), "torch": torch.__version__,
            "torch_blas": blas.group(1).rstrip(",") if blas else None, "numpy": numpy.__version__,
            "numpy_blas": numpy_blas, "gpu": None}
    if device != "cpu" and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name()
        info["cuda"] = torch.version.cuda
    return info


def _split_numbers(values: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, str], dict[str, Any]]:
    numbers: dict[str, Any] = {}
    non_finite: dict[str, str] = {}
    other: dict[str, Any] = {}
    for key, value in sorted(values.items()):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            other[key] = value if isinstance(value, (str, bool, type(None))) else repr(value)
        elif isinstance(value, float) and not math.isfinite(value):
            numbers[key] = None
            non_finite[key] = repr(value)
        else:
            numbers[key] = value
    return numbers, non_finite, other


def make_record(*, chapter: str, profile: str, seed: int, device: str, overrides: Mapping[str, Any],
                config: Mapping[str, Any], glued: Mapping[str, Any], timings: Mapping[str, Any], seconds: float,
                notebook: str | None = None, commit: str | None = None, machine: Mapping[str, Any] | None = None,
                started: str | None = None) -> dict[str, Any]:
    """The record of one finished run (a plain dict, written as JSON); ``parameters`` are the overrides of the
    profile's values other than the seed (stored on its own)."""
    numbers, non_finite, other = _split_numbers(glued)
    diverged = bool(non_finite) or any("diverged" in k and v not in (0, None) for k, v in numbers.items())
    timing_numbers, _, _ = _split_numbers(timings)
    return {"format": FORMAT, "chapter": chapter, "profile": profile, "seed": seed, "device": device,
            "run_key": run_key(seed, overrides),
            "parameters": {k: v for k, v in overrides.items() if k != "seed"}, "config": dict(config),
            "numbers": numbers, "non_finite": non_finite, "diverged": diverged, "values": other,
            "timings": timing_numbers, "seconds": round(seconds, 1), "ebmflow_version": __version__,
            "commit": commit, "machine": dict(machine or {}), "started": started, "notebook": notebook}


def write_record(record: Mapping[str, Any], root: Path | None = None) -> Path:
    """Write ``record`` to its place under ``root`` (default results/) atomically; returns the path."""
    path = record_path(record["profile"], record["chapter"], record["run_key"], root)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        temporary.write_text(json.dumps(record, indent=1, sort_keys=True, allow_nan=False) + "\n")
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    return path


def read_record(path: Path) -> dict[str, Any]:
    """One record; RecordError naming the file when it is damaged or of another format."""
    try:
        record = json.loads(Path(path).read_text())
    except (OSError, ValueError) as error:
        raise RecordError(f"results record {path} cannot be read ({error}); delete it and re-run the sweep") from None
    if not isinstance(record, dict) or record.get("format") != FORMAT:
        raise RecordError(f"{path} is not an ebmflow results record (expected format {FORMAT!r})")
    return record


def load_records(chapter: str | None = None, profile: str | None = None,
                 root: Path | None = None) -> list[dict[str, Any]]:
    """Every record under ``root`` (default results/), optionally of one chapter and/or profile, sorted by
    chapter, profile, parameters and seed."""
    base = root or results_dir()
    pattern = f"{profile or '*'}/{chapter or '*'}/*.json"
    records = [read_record(p) for p in base.glob(pattern) if not p.name.startswith(".")]
    return sorted(records, key=lambda r: (r["chapter"], r["profile"], r["run_key"].split("-", 1)[1], r["seed"]))


@dataclass(frozen=True)
class Summary:
    """One glued key over seeds: per-seed values (None: not finite), mean and sample sd of the finite ones."""

    key: str
    seeds: tuple[int, ...]
    values: tuple[float | None, ...]
    mean: float
    sd: float  # sample standard deviation (n - 1); NaN with fewer than two finite values
    n: int  # finite values
    n_not_finite: int

    def __str__(self) -> str:
        if self.n == 0:
            return f"not finite in {self.n_not_finite} of {len(self.values)} seeds"
        text = f"{self.mean:.4g} ± {self.sd:.2g}" if self.n > 1 else f"{self.mean:.4g}"
        extra = f"; not finite in {self.n_not_finite}" if self.n_not_finite else ""
        return f"{text} (n={self.n}{extra})"


def _check_one_verdict(records: list[Mapping[str, Any]]) -> None:
    for field, what in (("chapter", "chapters"), ("profile", "profiles"), ("ebmflow_version", "library versions")):
        kinds = sorted({str(r[field]) for r in records})
        if len(kinds) > 1:
            raise MixedRecordsError(f"records of different {what} ({', '.join(kinds)}) cannot be combined into one "
                                    f"verdict: select one {field.replace('ebmflow_', '')} (or re-run the sweep)")
    parameters = sorted({_canonical({k: v for k, v in r["parameters"].items() if k != "seed"}) for r in records})
    if len(parameters) > 1:
        raise MixedRecordsError(f"records with different parameters ({'; '.join(parameters)}) cannot be combined "
                                f"into one verdict: select one parameter set")
    seeds = [r["seed"] for r in records]
    if len(set(seeds)) != len(seeds):
        raise MixedRecordsError(f"two records of the same seed ({sorted(seeds)}): one run per seed")


def summarize(records: Iterable[Mapping[str, Any]]) -> dict[str, Summary]:
    """Mean ± sd over seeds of every glued number of ``records`` (one chapter, one profile, one library
    version, one parameter set: MixedRecordsError otherwise). Keys missing from some records are skipped."""
    records = sorted(records, key=lambda r: r["seed"])
    if not records:
        raise MixedRecordsError("no records to summarize: run `ebmflow sweep` first")
    _check_one_verdict(records)
    keys = set.intersection(*(set(r["numbers"]) for r in records))
    out = {}
    for key in sorted(keys):
        values = tuple(r["numbers"][key] for r in records)
        finite = [float(v) for v in values if v is not None]
        mean = sum(finite) / len(finite) if finite else math.nan
        sd = (math.sqrt(sum((v - mean) ** 2 for v in finite) / (len(finite) - 1)) if len(finite) > 1 else math.nan)
        out[key] = Summary(key, tuple(r["seed"] for r in records), values, mean, sd, len(finite),
                           len(values) - len(finite))
    return out
