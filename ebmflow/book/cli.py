"""The ``ebmflow`` command: list, run, sweep and reproduce the book's chapters; report the verdicts.

Exit status: 0 success, 2 bad input (detected before any kernel starts), 1 a failure during a run (one line
on the terminal, the traceback in a log file whose path is printed), 130 interrupted (Ctrl-C), 143 terminated
(SIGTERM); interrupted runs say how to resume.
"""
from __future__ import annotations

import argparse
import ast
import shlex
import signal
import sys
import traceback
from pathlib import Path
from typing import Any

from ..checks import InputError
from .chapters import CHAPTERS
from .config import PROFILES, ConfigError, format_value, parameter_table

__all__ = ["main"]

DEVICES = ("cpu", "cuda", "auto")


class _Terminated(KeyboardInterrupt):
    """SIGTERM, handled like Ctrl-C."""


def _on_signal(signum, frame) -> None:
    """Ctrl-C and SIGTERM: stop this command's kernels at once (before they print about their lost connection),
    then unwind like Ctrl-C so that every temporary is removed."""
    from .runner import stop_kernels

    global _received
    _received = signum
    stop_kernels()
    raise _Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()


_received: int | None = None  # the signal that stopped the command (libraries may re-raise it as another type)


class UsageError(InputError):
    """A command line argparse refuses (unknown option, bad choice, missing argument)."""


class _Parser(argparse.ArgumentParser):
    """argparse, but an error is one line (``ebmflow: error: ...``, status 2 from ``main``), not usage + error."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{message} (see `{self.prog} --help`)")


_NON_FINITE = ("nan", "-nan", "inf", "-inf", "+inf", "infinity", "-infinity")


def _parse_assignment(text: str, text_names: frozenset[str] = frozenset()) -> tuple[str, object]:
    """``name=value``: the value as a Python literal, else as text; a parameter in ``text_names`` (typed str, e.g.
    ``classes=0,1,7``) always keeps its text."""
    if "=" not in text:
        raise ConfigError(f"parameter {text!r} must be written name=value")
    name, raw = text.split("=", 1)
    name = name.strip()
    if not name.isidentifier():
        raise ConfigError(f"parameter {text!r} must be written name=value with a parameter name before '=' "
                          f"(`ebmflow list` names them)")
    try:
        value = ast.literal_eval(raw)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        value = float(raw) if raw.strip().lower() in _NON_FINITE else raw  # nan/inf: numbers (refused as such)
    if name in text_names and not isinstance(value, str):
        value = raw.strip()
    return name, value


def _text_parameters(args: argparse.Namespace) -> frozenset[str]:
    """The parameters typed str in the chapter(s) the command addresses (all chapters for ``reproduce``)."""
    import typing

    chapter = getattr(args, "chapter", None)
    chapters = [CHAPTERS[chapter]] if chapter in CHAPTERS else [] if chapter is not None else list(CHAPTERS.values())
    return frozenset(name for c in chapters for name, kind in typing.get_type_hints(c.config_cls).items()
                     if kind is str)


def _parameters(args: argparse.Namespace) -> dict[str, Any]:
    """-p name=value pairs plus --seed and --device (chapter parameters); a clash is an error."""
    parameters: dict[str, Any] = {}
    text_names = _text_parameters(args)
    for text in args.parameter:
        name, value = _parse_assignment(text, text_names)
        if name == "profile":
            raise ConfigError(f"'profile' is not a parameter: use --profile {value} instead of -p profile={value}")
        if name in parameters and parameters[name] != value:
            raise ConfigError(f"parameter {name!r} given twice ({parameters[name]!r} and {value!r})")
        parameters[name] = value
    for name in ("seed", "device"):
        value = getattr(args, name, None)
        if value is not None:
            if name in parameters and parameters[name] != value:
                raise ConfigError(f"--{name} {value} contradicts -p {name}={parameters[name]!r}: give one")
            parameters[name] = value
    return parameters


def _absolute_paths(chapter: str, parameters: dict[str, Any]) -> dict[str, Any]:
    """The chapter's file parameters (its Config's ``PATHS``) made absolute from the current folder: the notebook
    runs in book/, and a sweep's runs wherever Ray puts them."""
    config_cls = CHAPTERS[chapter].config_cls if chapter in CHAPTERS else None
    for name in getattr(config_cls, "PATHS", ()):
        if isinstance(parameters.get(name), str) and parameters[name]:
            parameters[name] = str(Path(parameters[name]).expanduser().resolve())
    return parameters


def _table(rows: list[list[str]], indent: str = "  ") -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [indent + "  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows]


def _list(_: argparse.Namespace) -> int:
    for chapter in CHAPTERS.values():
        print(f"{chapter.name}: {chapter.title}")
        if chapter.copy_of:
            print(f"  (chapter {chapter.copy_of} at profile {chapter.book_profile}: its parameters)")
            continue
        rows = parameter_table(chapter.config_cls, chapter.profiles)
        if not rows:
            print("  (no parameters: reads what the chapters stored)")
            continue
        table = [["parameter", "type", *chapter.profiles]]
        table += [[row["parameter"], row["type"], *(format_value(row[p]) for p in chapter.profiles)] for row in rows]
        print("\n".join(_table(table)))
    return 0


def _resume_hint(argv: list[str]) -> str:
    command = ["ebmflow", *argv]
    if "--resume" not in command:
        command.append("--resume")
    return shlex.join(command)


def _run(args: argparse.Namespace) -> int:
    from .runner import RunError, checkpoint_dir_for, check_run, run_chapter

    parameters = _absolute_paths(Path(args.chapter).stem, _parameters(args))
    if args.profile is None:  # the profile of the chapter's page: cpu, or a copy's own (01_motivating_example_paper)
        args.profile = CHAPTERS[args.chapter].book_profile if args.chapter in CHAPTERS else "cpu"
    output = check_run(args.chapter, args.profile, parameters, args.output)[3]
    try:
        result = run_chapter(args.chapter, args.profile, parameters, args.output, resume=args.resume,
                             progress=True, echo=lambda line: print(line, flush=True))
    except (InputError, RunError):
        raise
    except Exception as error:  # after the checks: a failure of the run itself (its outputs not written, ...)
        raise RunError(f"{args.chapter} failed: {type(error).__name__}: {' '.join(str(error).split())[:300]}",
                       traceback.format_exc()) from None
    except KeyboardInterrupt as stop:
        kept = checkpoint_dir_for(output)
        has = kept.exists() and any(kept.glob("*.pt"))
        what = "terminated" if isinstance(stop, _Terminated) or _received == signal.SIGTERM else "interrupted"
        print(f"ebmflow: {what}; nothing was written" + (
            f"; checkpoints kept in {kept}: resume with `{_resume_hint(args.argv)}`" if has else
            f"; re-run with `{shlex.join(['ebmflow', *args.argv])}`"), file=sys.stderr, flush=True)
        raise
    print(f"wrote {result.output} ({result.seconds:.0f} s)" + (
        f" and {len(result.figures)} figure file(s) in {result.output.parent / 'figures'}" if result.figures else ""))
    if result.record_path is not None:
        print(f"record: {result.record_path}")
    return 0


def _print_summary(records: list[dict]) -> None:
    from .records import summarize

    summary = summarize(records)
    rows = [["glued value", "mean ± sd over seeds", *[f"seed {s}" for s in next(iter(summary.values())).seeds]]]
    for key, item in summary.items():
        rows.append([key, str(item), *("null" if v is None else f"{v:.4g}" for v in item.values)])
    print("\n".join(_table(rows, indent="")))


def _sweep(args: argparse.Namespace) -> int:
    from .records import read_record
    from .sweep import is_finished, parse_seeds, run_specs, sweep_specs

    parameters = _absolute_paths(Path(args.chapter).stem, _parameters(args))
    specs = sweep_specs(args.chapter, parse_seeds(args.seeds), args.profile, parameters)
    todo = [spec for spec in specs if args.force or not is_finished(spec)]
    if len(todo) < len(specs):
        print(f"{len(specs) - len(todo)} of {len(specs)} runs already finished: kept (--force re-runs them)")
    outcomes = run_specs(todo, address=args.address, inline=args.inline, threads=args.threads)
    failed = [o for o in outcomes if not o.ok]
    done = [read_record(spec.record_path()) for spec in specs if spec.record_path().exists()]
    if done:
        print(f"{specs[0].chapter} at profile {args.profile} over {len(done)} seed(s):")
        _print_summary(done)
    if failed:
        print(f"ebmflow: error: {len(failed)} of {len(specs)} runs failed (see above)", file=sys.stderr)
        return 1
    return 0


def _reproduce(args: argparse.Namespace) -> int:
    from .sweep import parse_seeds, reproduce

    parameters = _parameters(args)
    seeds = parse_seeds(args.seeds) if args.seeds else None
    outcomes = reproduce(args.profile, seeds, force=args.force, address=args.address, parameters=parameters,
                         inline=args.inline, html=not args.no_html)
    failed = [o for o in outcomes if not o.ok]
    if failed:
        print(f"ebmflow: error: {len(failed)} of {len(outcomes)} runs failed (see above); re-run the same command "
              f"to retry them (finished runs are kept)", file=sys.stderr)
        return 1
    return 0


def _check_paper(args: argparse.Namespace) -> int:
    """Each chapter's paper configuration for a few iterations, in a fresh process per chapter (its peak memory)."""
    from ..checks import check_int
    from .paper_check import PIPELINES, check_in_subprocess, format_check, pipeline_for

    names = args.chapter or list(PIPELINES)
    for name in names:
        pipeline_for(name)  # an unknown chapter or one without training: one line, before any work
    check_int("--iterations", args.iterations)
    check_int("--threads", args.threads)
    parameters = {**dict(_parse_assignment(text) for text in args.parameter),
                  **({"data_root": str(args.data_root)} if args.data_root else {})}
    failed = []
    for name in names:
        print(f"checking {name} at profile {args.profile} ({args.iterations} iterations of every method)...",
              flush=True)
        try:
            check = check_in_subprocess(name, iterations=args.iterations, profile=args.profile,
                                        evaluations=args.evaluations, parameters=parameters, cut=not args.exact,
                                        threads=args.threads)
        except RuntimeError as error:
            from .runner import write_log

            log = write_log(name, str(error))
            print(f"ebmflow: error: the {args.profile} configuration of {name} did not start or failed (traceback: "
                  f"{log})", file=sys.stderr, flush=True)
            failed.append(name)
            continue
        print(format_check(check), flush=True)
    if failed:
        print(f"ebmflow: error: {len(failed)} of {len(names)} chapters failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


def _report(_: argparse.Namespace) -> int:
    from .report import VERDICTS, load_evidence, verdict_rows

    warn = lambda line: print(f"ebmflow: warning: {line}", file=sys.stderr)  # noqa: E731
    rows = verdict_rows(load_evidence("cpu", warn=warn))  # the committed cpu records (a chapter without: its page)
    outcome = {"holds": "all", "holds in some seeds": "some", "does not hold": "none"}
    for row in rows:
        print(f"{row['item']:<9} {row['claim']}")
        print(f"{'':<9} paper: {row['paper']}  |  ours: {row['ours']}  |  rule: {row['rule']}  ->  {row['verdict']}"
              + (f" ({row['seeds']} seeds; {row['source']})" if " of " in row["seeds"] else ""))
        if row["verdict"] in outcome and row.get("expected") and outcome[row["verdict"]] != row["expected"]:
            print(f"{'':<9} recorded outcome {row['expected']!r}, now {outcome[row['verdict']]!r}: set "
                  f"Claim(expected={outcome[row['verdict']]!r}) in {row['chapter']}'s module if that is right")
    print("; ".join(f"{n} {v}" for v in VERDICTS if (n := sum(r["verdict"] == v for r in rows))))
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="ebmflow", description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("list", help="chapters and their parameters per profile").set_defaults(func=_list)

    def knobs(sub: argparse.ArgumentParser, seed: bool, profile: str | None = "cpu") -> None:
        sub.add_argument("--profile", default=profile, choices=PROFILES,
                         help="preset (default: cpu" + ("; a copy of a chapter: its own, e.g. paper)" if profile is None
                                                        else ")"))
        sub.add_argument("-p", dest="parameter", action="append", default=[], metavar="NAME=VALUE",
                         help="override one chapter parameter (repeatable; `ebmflow list` names them)")
        sub.add_argument("--device", choices=DEVICES, default=None, help="the chapter's device parameter")
        if seed:
            sub.add_argument("--seed", type=int, default=None, help="the chapter's seed parameter")

    def cluster(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--address", default=None, help="join this Ray cluster (default: $RAY_ADDRESS, else a "
                         "local Ray instance started for this command)")
        sub.add_argument("--force", action="store_true", help="re-run runs that already finished")
        sub.add_argument("--inline", action="store_true", help="no Ray: run one after another in this process")

    run = commands.add_parser("run", help="execute one chapter with papermill (output: book/CHAPTER.ipynb)")
    run.add_argument("chapter")
    knobs(run, seed=True, profile=None)
    run.add_argument("--output", type=Path, default=None, help="executed notebook (figures go beside it)")
    run.add_argument("--resume", action="store_true", help="continue the training runs from their checkpoints")
    run.set_defaults(func=_run)

    sweep = commands.add_parser("sweep", help="one chapter over several seeds (Ray); prints mean ± sd")
    sweep.add_argument("chapter")
    sweep.add_argument("--seeds", default="0-2", help="e.g. 0-4 or 0,2,7 (default 0-2)")
    knobs(sweep, seed=False)
    cluster(sweep)
    sweep.add_argument("--threads", type=int, default=1, help="CPU threads per run (default 1)")
    sweep.set_defaults(func=_sweep)

    reproduce = commands.add_parser("reproduce", help="every chapter × its default seeds (Ray), then the "
                                    "summary pages and the HTML book")
    reproduce.add_argument("--seeds", default=None, help="instead of each chapter's default seeds")
    knobs(reproduce, seed=False)
    cluster(reproduce)
    reproduce.add_argument("--no-html", action="store_true", help="skip the HTML build")
    reproduce.set_defaults(func=_reproduce)

    commands.add_parser("report", help="verdicts: the paper's numbers beside ours, from the executed chapters"
                        ).set_defaults(func=_report)

    check = commands.add_parser("check-paper", help="does each chapter's paper configuration start? a few "
                                "iterations of every method: time per iteration, peak memory, projected full run")
    check.add_argument("chapter", nargs="*", help="chapters (default: every chapter that trains)")
    check.add_argument("--iterations", type=int, default=2, help="training iterations per run (default 2)")
    check.add_argument("--profile", default="paper", choices=PROFILES, help="preset (default: paper)")
    check.add_argument("--data-root", type=Path, default=None, help="CIFAR-10 (chapter 05; default: the profile's "
                       "data_root, else a generated stand-in of the real files)")
    check.add_argument("--evaluations", default="cheap", choices=("none", "cheap", "all"),
                       help="evaluations after training: cheap (default) skips the expensive ones")
    check.add_argument("--exact", action="store_true", help="no CPU cut (chapter 05's batch of 128: about half an "
                       "hour per iteration on one CPU thread)")
    check.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    check.add_argument("-p", dest="parameter", action="append", default=[], metavar="NAME=VALUE",
                       help="override one parameter of the profile (repeatable)")
    check.set_defaults(func=_check_paper)
    return parser


def main(argv: list[str] | None = None) -> int:
    from .runner import RunError, write_log

    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = _parser().parse_args(argv)
    except UsageError as error:
        print(f"ebmflow: error: {error}", file=sys.stderr)
        return 2
    args.argv = argv
    previous = {}
    for signum in (signal.SIGINT, signal.SIGTERM):
        try:
            previous[signum] = signal.signal(signum, _on_signal)
        except ValueError:  # not the main thread: leave the handlers alone
            break
    try:
        return args.func(args)
    except (InputError, ValueError) as error:  # bad input, detected before any kernel started
        print(f"ebmflow: error: {error}", file=sys.stderr)
        return 2
    except RunError as error:
        log = write_log(getattr(args, "chapter", "ebmflow"), error.details, getattr(args, "seed", None))
        print(f"ebmflow: error: {error} (full traceback: {log})", file=sys.stderr)
        return 1
    except Exception as error:  # noqa: BLE001 - anything else: one line, the traceback in the log
        log = write_log(getattr(args, "chapter", None) or args.command, traceback.format_exc(),
                        getattr(args, "seed", None))
        text = " ".join(str(error).split())[:300]
        print(f"ebmflow: error: {args.command} failed: {type(error).__name__}: {text} (full traceback: {log})",
              file=sys.stderr)
        return 1
    except KeyboardInterrupt as stop:
        terminated = isinstance(stop, _Terminated) or _received == signal.SIGTERM
        if args.command != "run":
            print(f"ebmflow: {'terminated' if terminated else 'interrupted'}; re-run the same command to continue "
                  f"(finished runs are kept, unfinished ones resume from their checkpoints)", file=sys.stderr)
        return 143 if terminated else 130
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        sys.stdout.flush()
