"""Experiment configurations with named profiles, checked before anything runs.

Each experiment is a frozen dataclass (its fields are the knobs a reader may turn) and a dict of profiles:
"smoke" (seconds, for tests), "cpu" (minutes, the committed default) and "paper" (the paper's settings).
"""
from __future__ import annotations

import ast
import dataclasses
import math
import typing
from fractions import Fraction
from typing import Any, TypeVar

from ..checks import MAX_SEED, InputError

__all__ = ["PROFILES", "resolve_config", "ConfigError", "check_shared_sizes", "parameter_cell_names",
           "check_namespace", "type_name", "format_value"]

PROFILES = ("smoke", "cpu", "paper")
C = TypeVar("C")


class ConfigError(InputError):
    """An unknown profile, an unknown parameter, a wrongly typed or out-of-range value."""


_EXAMPLES = {float: "0.1,0.9", int: "16,32", str: "8gaussians,rings"}  # how a list is written on the command line


def _element_type(hint: Any) -> type | None:
    """T for a ``tuple[T, ...]`` annotation (a list-valued parameter), None for any other annotation."""
    if typing.get_origin(hint) is tuple:
        args = typing.get_args(hint)
        if len(args) == 2 and args[1] is Ellipsis:
            return args[0]
    return None


def type_name(hint: Any) -> str:
    """How a parameter's type is shown (``ebmflow list``, the parameters cell): ``float``, ``tuple[float, ...]``."""
    element = _element_type(hint)
    return f"tuple[{element.__name__}, ...]" if element is not None else hint.__name__


def format_value(value: Any) -> str:
    """A parameter's value as it is written with ``-p NAME=VALUE`` (lists comma-separated)."""
    if isinstance(value, tuple):
        return ",".join(format(v, ".6g") if isinstance(v, float) else str(v) for v in value)
    return '""' if value == "" else str(value)


def _split_list(text: str, element: type) -> list[Any]:
    """The items of a list written as text: ``0.1,0.9``, ``(0.1, 0.9)``, ``[16, 32]``, ``1/3,2/3`` (fractions),
    ``moons,rings`` or ``('moons', 'rings')``; an item that is not a literal stays a string (the type check names
    it)."""
    try:
        value = ast.literal_eval(text.strip())
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        value = None
    if isinstance(value, (tuple, list)):
        return list(value)
    if value is not None and not isinstance(value, str):
        return [value]
    items = [item.strip().strip("'\"") for item in text.strip().strip("()[]").split(",")]
    if element is str:
        return [item for item in items if item]
    parsed: list[Any] = []
    for item in filter(None, items):
        try:
            parsed.append(float(Fraction(item)) if "/" in item else ast.literal_eval(item))
        except (ValueError, SyntaxError, ZeroDivisionError):
            parsed.append(item)
    return parsed


def _check_type(name: str, value: Any, expected: Any) -> Any:
    element = _element_type(expected)
    if element is not None:  # a list-valued parameter: a tuple, a list, a single value or text such as "0.1,0.9"
        items = (_split_list(value, element) if isinstance(value, str) else
                 list(value) if isinstance(value, (tuple, list)) else [value])
        if not items:
            raise ConfigError(f"parameter {name!r} must list at least one {element.__name__} (e.g. "
                              f"{_EXAMPLES.get(element, '')}), got {value!r}")
        try:
            return tuple(_check_type(name, item, element) for item in items)
        except ConfigError:
            raise ConfigError(f"parameter {name!r} must be a comma-separated list of {element.__name__} values "
                              f"(e.g. {_EXAMPLES.get(element, '')}), got {value!r}") from None
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
        raise ConfigError(f"parameter {name!r} must be of type {expected.__name__}, got {value!r} "
                          f"({type(value).__name__})")
    return value


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def resolve_config(config_cls: type[C], profiles: dict[str, dict[str, Any]], profile: str,
                   **overrides: Any) -> C:
    """The profile's configuration with ``overrides`` applied; ``None`` overrides mean "profile default".

    Raises ConfigError naming the accepted values for an unknown profile or parameter, a wrong type, or a
    non-positive count/size/rate (every int and float knob must be positive, except ``seed`` and the names a
    config class lists in its ``NON_NEGATIVE`` class attribute, which may be zero).
    """
    if profile not in profiles:
        raise ConfigError(f"unknown profile {profile!r}; accepted profiles: {', '.join(profiles)}")
    hints = typing.get_type_hints(config_cls)
    names = [f.name for f in dataclasses.fields(config_cls)]
    unknown = sorted(set(overrides) - set(names))
    if unknown:
        raise ConfigError(f"unknown parameter(s) {', '.join(map(repr, unknown))}; accepted parameters: "
                          f"{', '.join(names) or 'none (this page has no parameter)'}")
    values = {**profiles[profile], **{k: v for k, v in overrides.items() if v is not None}}
    non_negative = {"seed", *getattr(config_cls, "NON_NEGATIVE", ())}
    checked = {}
    for name, value in values.items():
        value = _check_type(name, value, hints[name])
        items = value if isinstance(value, tuple) else (value,)
        if any(isinstance(v, float) and not math.isfinite(v) for v in items):
            what = "list finite numbers" if isinstance(value, tuple) else "be a finite number"
            raise ConfigError(f"parameter {name!r} must {what}, got {value!r}")
        may_be_zero = name in non_negative
        if any(not (v >= 0 if may_be_zero else v > 0) for v in items if _is_number(v)):
            what = "non-negative" if may_be_zero else "positive"
            if isinstance(value, tuple):
                raise ConfigError(f"parameter {name!r} must list {what} numbers, got {format_value(value)}")
            raise ConfigError(f"parameter {name!r} must be {what}, got {value!r}")
        checked[name] = value
    _check_finite_and_seed(checked)
    try:
        config = config_cls(**checked)
    except (TypeError, ValueError) as error:
        raise ConfigError(str(error)) from None
    check_shared_sizes(config)
    return config


def _check_finite_and_seed(values: dict[str, Any]) -> None:
    """Every float knob is finite (inf passes "positive" but freezes chains or overflows); the seed fits the
    generators' range."""
    for name, value in values.items():
        for item in value if isinstance(value, tuple) else (value,):
            if isinstance(item, float) and not math.isfinite(item):
                raise ConfigError(f"parameter {name!r} must be a finite number, got {value!r}")
    seed = values.get("seed")
    if isinstance(seed, int) and not 0 <= seed < MAX_SEED:
        raise ConfigError(f"parameter 'seed' must be an integer in [0, 2**62), got {seed!r}")


def check_shared_sizes(config: Any) -> None:
    """Cross-parameter checks on the knobs every chapter names alike: a batch of ``batch_size`` positives comes
    from ``n_data`` points and its negatives from ``n_persistent`` chains, so both must hold at least a batch; a
    ``*_fraction`` (of the iterations) lies in [0, 1)."""
    for field in dataclasses.fields(config):
        value = getattr(config, field.name)
        if field.name.endswith("_fraction") and isinstance(value, float) and not 0 <= value < 1:
            raise ConfigError(f"parameter {field.name!r} must be a fraction in [0, 1), got {value!r}")
    batch_size = getattr(config, "batch_size", None)
    for name, what in (("n_data", "training points"), ("n_persistent", "persistent chains")):
        size = getattr(config, name, None)
        if isinstance(batch_size, int) and isinstance(size, int) and batch_size > size:
            raise ConfigError(f"parameter 'batch_size' ({batch_size}) cannot exceed {name} ({size} {what}): lower "
                              f"batch_size or raise {name}")


def parameter_cell_names(namespace: dict[str, Any]) -> list[str]:
    """Every name assigned in a notebook's parameters cells as the kernel ran them: its ``parameters`` cell and the
    cell papermill injects after it (both begin with ``# Parameters``), read from IPython's input history
    (``_ih``). Empty outside IPython."""
    import ast

    names: list[str] = []
    for source in namespace.get("_ih") or namespace.get("In") or []:
        if not isinstance(source, str) or not source.lstrip().startswith("# Parameters"):
            continue
        try:
            tree = ast.parse(source)
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            targets = node.targets if isinstance(node, ast.Assign) else \
                [node.target] if isinstance(node, (ast.AnnAssign, ast.AugAssign)) else []
            for target in targets:
                for leaf in ast.walk(target):
                    if isinstance(leaf, ast.Name) and leaf.id not in names:
                        names.append(leaf.id)
    return names


def check_namespace(config_cls: type, namespace: dict[str, Any], extra: tuple[str, ...] = ("profile",)) -> None:
    """A name set in the notebook's parameters cells (e.g. injected by ``papermill -p epoch 5``) that is not a
    parameter of ``config_cls`` is an error naming it and the accepted ones (plain papermill would otherwise
    ignore it and run the profile's value)."""
    accepted = [*extra, *(f.name for f in dataclasses.fields(config_cls))]
    unknown = [name for name in parameter_cell_names(namespace) if name not in accepted]
    if unknown:
        raise ConfigError(f"unknown parameter(s) {', '.join(map(repr, unknown))} set in the notebook's parameters "
                          f"(papermill -p?); accepted parameters: {', '.join(accepted)}")


def parameter_table(config_cls: type, profiles: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per parameter: its name, type and value under each profile (for docs and the CLI)."""
    hints = typing.get_type_hints(config_cls)
    resolved = {p: resolve_config(config_cls, profiles, p) for p in profiles}
    return [{"parameter": f.name, "type": type_name(hints[f.name]),
             **{p: getattr(resolved[p], f.name) for p in profiles}} for f in dataclasses.fields(config_cls)]


def field_comments(config_cls: type) -> dict[str, str]:
    """The comment after each field of a configuration dataclass (``name: type  # comment``), by field."""
    import inspect
    import re

    comments = {}
    names = {f.name for f in dataclasses.fields(config_cls)}
    for klass in reversed([k for k in config_cls.__mro__ if dataclasses.is_dataclass(k)]):  # inherited fields too
        for line in inspect.getsource(klass).splitlines():
            match = re.match(r"\s+(\w+): [^#=]+?(?:#\s*(.*))?$", line)
            if match and match.group(1) in names:
                comments[match.group(1)] = match.group(2) or ""
    return comments


def parameters_cell(config_cls: type, profiles: dict[str, dict[str, Any]]) -> str:
    """The source of a chapter's cell tagged ``parameters``: ``profile``, then every field set to None (the
    profile's value) with its type and the dataclass's comment. Generated, so it never disagrees with the code."""
    hints = typing.get_type_hints(config_cls)
    comments = field_comments(config_cls)
    lines = [f"# Parameters. `profile` picks a preset ({', '.join(map(repr, profiles))}; \"cpu\" is the committed "
             f"default);", "# any other name set here overrides that preset (None = the preset's value).",
             'profile = "cpu"']
    for f in dataclasses.fields(config_cls):
        comment = type_name(hints[f.name]) + (f": {comments[f.name]}" if comments.get(f.name) else "")
        lines.append(f"{f.name} = None  # {comment}")
    return "\n".join(lines)
