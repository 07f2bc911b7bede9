"""A tiny chapter for the runner's tests: a kernel that starts in about 2 s and can succeed, fail, die, sleep
or be killed in the middle of writing a figure (``mode``). ``register(book)`` writes its notebook into
``book/`` and adds it to the CHAPTERS registry (in this process; a subprocess calls it again)."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import nbformat

from ebmflow.book import chapters, runner
from ebmflow.book.chapters import Chapter

NAME = "zz_fake"
TESTS = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Config:
    seed: int
    mode: str  # ok, fail, die, sleep, figure-kill
    value: float
    device: str
    stop_after: int

    NON_NEGATIVE: ClassVar[tuple[str, ...]] = ("stop_after",)


BASE = dict(seed=0, mode="ok", value=1.0, device="cpu", stop_after=0)
PROFILES = {"smoke": BASE, "cpu": {**BASE, "value": 2.0}, "paper": {**BASE, "value": 3.0}}
CHOICES: tuple[str, ...] = ()
ITEMS: tuple = ()


def estimated_work(config: Config) -> float:
    return config.value


@dataclass(frozen=True)
class FakeChapter(Chapter):
    source: Path = Path()

    @property
    def notebook(self) -> Path:
        return self.source


SETUP = f"""import os, sys, time, signal
sys.path.insert(0, {str(TESTS)!r})
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
from ebmflow.book.config import resolve_config
from ebmflow.book.glued import glue_numbers
from ebmflow.book.plotting import figure_dir, savefig
import _fake_chapter
config = resolve_config(_fake_chapter.Config, _fake_chapter.PROFILES, profile, seed=seed, mode=mode, value=value,
                        device=device, stop_after=stop_after)
marker = os.environ.get("FAKE_MARKER")"""

FIGURE = """fig, ax = plt.subplots(figsize=(2, 2))
ax.plot([0, 1], [0, config.value + config.seed])
if config.mode == "figure-kill":  # stop in the middle of writing a figure
    savefig(fig, "figa")
    (figure_dir() / ".figb.tmp.png").write_bytes(b"half a png")
    open(marker, "w").close()
    time.sleep(120)
savefig(fig, "figa")
savefig(fig, "figb")
plt.close(fig)"""

WORK = """if config.mode == "fail":
    raise ValueError("planned failure in the work cell")
if config.mode == "die":
    os.kill(os.getpid(), signal.SIGKILL)
if config.mode == "sleep":
    open(marker, "w").close()
    time.sleep(120)"""

GLUE = """glue_numbers({"fake_value": config.value * 2 + config.seed, "fake_nan": float("nan"), "fake_diverged_at": 0})"""
TIMINGS = """glue_numbers({"fake_seconds": 0.5})"""


def write_notebook(path: Path) -> None:
    cells = [nbformat.v4.new_markdown_cell("# A fake chapter"),
             nbformat.v4.new_code_cell("profile = \"cpu\"\n" + "\n".join(f"{f.name} = None" for f in
                                                                     dataclasses.fields(Config))),
             nbformat.v4.new_code_cell(SETUP), nbformat.v4.new_code_cell(FIGURE), nbformat.v4.new_code_cell(WORK),
             nbformat.v4.new_code_cell(GLUE), nbformat.v4.new_code_cell(TIMINGS)]
    cells[1].metadata["tags"] = ["parameters"]
    cells[-1].metadata["tags"] = ["nbval-ignore-output", "remove-cell"]
    notebook = nbformat.v4.new_notebook(cells=cells)
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(notebook, path)


def register(book: Path) -> FakeChapter:
    """Write the notebook to ``book/zz_fake.ipynb`` (if missing), register the chapter, and point the runner's
    runtimes file into ``book``."""
    import sys

    source = book / f"{NAME}.ipynb"
    if not source.exists():
        write_notebook(source)
    chapter = FakeChapter(NAME, "A fake chapter", sys.modules[__name__], source=source)
    chapters.CHAPTERS[NAME] = chapter
    runner.RUNTIMES_FILE = book / "runtimes.json"
    return chapter


if __name__ == "__main__":  # python _fake_chapter.py BOOK ebmflow-arguments...: the CLI with the fake chapter
    import sys

    register(Path(sys.argv[1]))
    from ebmflow.book.cli import main

    sys.exit(main(sys.argv[2:]))
