"""Execute a chapter with papermill: parameters checked first, output written atomically."""
from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import nbformat
import papermill

from .chapters import BOOK_DIR, get_chapter
from .config import resolve_config

__all__ = ["run_chapter", "RUNTIMES_FILE", "read_runtimes"]

RUNTIMES_FILE = BOOK_DIR / "runtimes.json"


def read_runtimes() -> dict[str, dict[str, float]]:
    """Measured wall times in seconds, {chapter: {profile: seconds}}, as recorded by ``run_chapter``."""
    return json.loads(RUNTIMES_FILE.read_text()) if RUNTIMES_FILE.exists() else {}


def _record_runtime(chapter: str, profile: str, seconds: float) -> None:
    runtimes = read_runtimes()
    runtimes.setdefault(chapter, {})[profile] = round(seconds, 1)
    temporary = RUNTIMES_FILE.with_suffix(".tmp")
    temporary.write_text(json.dumps(runtimes, indent=1, sort_keys=True) + "\n")
    os.replace(temporary, RUNTIMES_FILE)


def run_chapter(name: str, profile: str = "cpu", parameters: dict[str, Any] | None = None,
                output: Path | None = None, progress: bool = True, record: bool = True) -> Path:
    """Run chapter ``name`` at ``profile`` with ``parameters`` overriding the profile's values.

    Names and types are checked against the chapter's configuration before a kernel starts (ConfigError
    otherwise). The executed notebook goes to ``output`` (default: the chapter itself, in ``book/``) through
    a temporary file, so a failed run never leaves a half-written notebook. The wall time, profile and
    parameters are stored in the notebook's metadata under ``ebmflow``; with ``record`` and no parameter
    overrides, the wall time is also stored in ``book/runtimes.json`` for the runtime table of the intro.
    """
    chapter = get_chapter(name)
    parameters = dict(parameters or {})
    resolve_config(chapter.config_cls, chapter.profiles, profile, **parameters)
    output = Path(output) if output is not None else chapter.notebook
    output.parent.mkdir(parents=True, exist_ok=True)
    temporary = output.with_name(f".{output.stem}.tmp{os.getpid()}.ipynb")
    start = time.perf_counter()
    try:
        papermill.execute_notebook(str(chapter.notebook), str(temporary), parameters={"profile": profile, **parameters},
                                   cwd=str(BOOK_DIR), kernel_name="python3", progress_bar=progress)
        seconds = time.perf_counter() - start
        notebook = nbformat.read(temporary, as_version=4)
        if chapter.summary:  # summary pages have no knob: hide papermill's injected "profile = ..." cell
            for cell in notebook.cells:
                if "injected-parameters" in cell.metadata.get("tags", []):
                    cell.metadata["tags"].append("remove-cell")
        notebook.metadata["ebmflow"] = {"chapter": chapter.name, "profile": profile, "parameters": parameters,
                                        "seconds": round(seconds, 1)}
        nbformat.write(notebook, temporary)
        os.replace(temporary, output)
        if record and not parameters:
            _record_runtime(chapter.name, profile, seconds)
    finally:
        temporary.unlink(missing_ok=True)
    return output
