"""Execute a chapter with papermill: parameters checked first, output written atomically."""
from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import nbformat
import papermill

from .chapters import BOOK_DIR, get_chapter
from .config import resolve_config

__all__ = ["run_chapter"]


def run_chapter(name: str, profile: str = "cpu", parameters: dict[str, Any] | None = None,
                output: Path | None = None, progress: bool = True) -> Path:
    """Run chapter ``name`` at ``profile`` with ``parameters`` overriding the profile's values.

    Names and types are checked against the chapter's configuration before a kernel starts (ConfigError
    otherwise). The executed notebook goes to ``output`` (default: the chapter itself, in ``book/``) through
    a temporary file, so a failed run never leaves a half-written notebook. The wall time, profile and
    parameters are stored in the notebook's metadata under ``ebmflow``.
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
        notebook = nbformat.read(temporary, as_version=4)
        notebook.metadata["ebmflow"] = {"chapter": chapter.name, "profile": profile, "parameters": parameters,
                                        "seconds": round(time.perf_counter() - start, 1)}
        nbformat.write(notebook, temporary)
        os.replace(temporary, output)
    finally:
        temporary.unlink(missing_ok=True)
    return output
