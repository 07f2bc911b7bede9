"""The ``ebmflow`` command: list, run and reproduce the book's chapters; report the verdicts."""
from __future__ import annotations

import argparse
import ast
import subprocess
import sys
from pathlib import Path

from .chapters import BOOK_DIR, CHAPTERS
from .config import PROFILES, ConfigError, parameter_table

__all__ = ["main"]


def _parse_assignment(text: str) -> tuple[str, object]:
    if "=" not in text:
        raise ConfigError(f"parameter {text!r} must be written name=value")
    name, raw = text.split("=", 1)
    try:
        value = ast.literal_eval(raw)
    except (ValueError, SyntaxError):
        value = raw  # a bare word is a string
    return name.strip(), value


def _list(_: argparse.Namespace) -> None:
    for chapter in CHAPTERS.values():
        print(f"{chapter.name}: {chapter.title}")
        rows = parameter_table(chapter.config_cls, chapter.profiles)
        print(f"  {'parameter':<18}{'type':<7}" + "".join(f"{p:<14}" for p in chapter.profiles))
        for row in rows:
            print(f"  {row['parameter']:<18}{row['type']:<7}" + "".join(f"{row[p]!s:<14}" for p in chapter.profiles))


def _run(args: argparse.Namespace) -> None:
    from .runner import run_chapter  # papermill import is slow: only when running

    parameters = dict(_parse_assignment(text) for text in args.parameter)
    output = run_chapter(args.chapter, args.profile, parameters, args.output)
    print(f"wrote {output}")


def _reproduce(args: argparse.Namespace) -> None:
    from .runner import run_chapter

    # experiment chapters first, then the summary pages that read their results
    for chapter in sorted(CHAPTERS.values(), key=lambda c: c.summary):
        print(f"running {chapter.name} at profile {args.profile}", flush=True)
        run_chapter(chapter.name, args.profile)
    root = BOOK_DIR.parent
    subprocess.run([str(Path(sys.executable).parent / "jupyter-book"), "build", str(root), "-W", "-n",
                    "--keep-going"], check=True)
    print(f"book: {root / '_build' / 'html' / 'index.html'}")


def _report(_: argparse.Namespace) -> None:
    from .report import VERDICTS, load_glued, verdict_rows

    rows = verdict_rows(load_glued())
    for row in rows:
        print(f"{row['item']:<9} {row['claim']}")
        print(f"{'':<9} paper: {row['paper']}  |  ours: {row['ours']}  |  rule: {row['rule']}  ->  {row['verdict']}")
    print("; ".join(f"{n} {v}" for v in VERDICTS if (n := sum(r["verdict"] == v for r in rows))))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ebmflow", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("list", help="chapters and their parameters per profile").set_defaults(func=_list)
    run = commands.add_parser("run", help="execute one chapter with papermill")
    run.add_argument("chapter")
    run.add_argument("--profile", default="cpu", choices=PROFILES)
    run.add_argument("-p", dest="parameter", action="append", default=[], metavar="NAME=VALUE")
    run.add_argument("--output", type=Path, default=None)
    run.set_defaults(func=_run)
    reproduce = commands.add_parser("reproduce", help="every chapter, then the book")
    reproduce.add_argument("--profile", default="cpu", choices=PROFILES)
    reproduce.set_defaults(func=_reproduce)
    commands.add_parser("report", help="verdicts: the paper's numbers beside ours, from the executed chapters"
                        ).set_defaults(func=_report)
    args = parser.parse_args(argv)
    try:
        args.func(args)
    except (ConfigError, ValueError) as error:
        print(f"ebmflow: error: {error}", file=sys.stderr)
        return 2
    return 0
