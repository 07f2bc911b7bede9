"""Packaging: every module imports (without touching global state), and every third-party package the code
imports is declared in pyproject.toml, pinned where requirements.txt pins the book's environment."""
from __future__ import annotations

import ast
import functools
import importlib.metadata
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "ebmflow"
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
# import name -> distribution name, for packages that may be absent here (the installed ones are looked up)
KNOWN = {"sklearn": "scikit-learn", "yaml": "pyyaml", "arviz_stats": "arviz-stats", "myst_nb": "myst-nb",
         "PIL": "pillow", "mpl_toolkits": "matplotlib"}


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


@functools.cache
def installed_distributions() -> dict[str, list[str]]:
    return importlib.metadata.packages_distributions()


def distribution_of(module: str) -> str:
    installed = installed_distributions().get(module)
    return normalise(installed[0] if installed else KNOWN.get(module, module))


def requirements(section: list[str]) -> dict[str, Requirement]:
    parsed = [Requirement(line) for line in section]
    return {normalise(r.name): r for r in parsed}


DEPENDENCIES = requirements(PYPROJECT["project"]["dependencies"])
EXTRAS = {normalise(name): requirement for extra in PYPROJECT["project"].get("optional-dependencies", {}).values()
          for name, requirement in requirements(extra).items()}


def _guarded(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> bool:
    """Inside ``try: ... except ImportError`` (or ModuleNotFoundError): an optional import."""
    while node in parents:
        node = parents[node]
        if isinstance(node, ast.Try):
            for handler in node.handlers:
                names = [handler.type] if not isinstance(handler.type, ast.Tuple) else handler.type.elts
                if any(isinstance(n, ast.Name) and n.id in ("ImportError", "ModuleNotFoundError") for n in names):
                    return True
    return False


def third_party_imports() -> list[tuple[str, str, bool, str]]:
    """(top-level module, where, imported at module level unguarded, full module name) for every absolute import
    of ebmflow's code that is neither the standard library nor ebmflow itself."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            in_function = False
            parent = node
            while parent in parents:
                parent = parents[parent]
                in_function |= isinstance(parent, (ast.FunctionDef, ast.AsyncFunctionDef))
            for name in names:
                top = name.split(".")[0]
                if top in sys.stdlib_module_names or top in ("ebmflow", "__future__"):
                    continue
                where = f"{path.relative_to(ROOT)}:{node.lineno}"
                found.append((top, where, not in_function and not _guarded(node, parents), name))
    return found


IMPORTS = third_party_imports()


def test_the_scan_finds_the_known_imports():
    modules = {module for module, *_ in IMPORTS}
    assert {"torch", "nflows", "scipy", "numpy", "matplotlib", "tqdm", "sklearn", "arviz_stats"} <= modules


@pytest.mark.parametrize("module", sorted({module for module, *_ in IMPORTS}))
def test_every_imported_package_is_declared(module):
    """Imported at module level: a dependency. Imported lazily (inside a function, or guarded by an
    ``except ImportError``): a dependency or an optional extra."""
    distribution = distribution_of(module)
    places = [(where, eager) for m, where, eager, _ in IMPORTS if m == module]
    eager = [where for where, is_eager in places if is_eager]
    if eager:
        assert distribution in DEPENDENCIES, (f"{module} ({distribution}) is imported at module level by "
                                              f"{', '.join(eager)} but is not in pyproject's dependencies")
    else:
        assert distribution in DEPENDENCIES or distribution in EXTRAS, (
            f"{module} ({distribution}) is imported by {', '.join(w for w, _ in places)} but is declared neither "
            f"in pyproject's dependencies nor in an optional extra")


def test_torch_is_pinned_and_the_pins_agree_with_requirements_txt():
    assert str(DEPENDENCIES["torch"].specifier) == "==2.13.0"
    pinned = {}
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            requirement = Requirement(line)
            pinned[normalise(requirement.name)] = next(iter(requirement.specifier)).version
    for name, requirement in DEPENDENCIES.items():
        assert name in pinned, f"{name} is a dependency but requirements.txt (the book's environment) lacks it"
        assert Version(pinned[name]) in requirement.specifier, (
            f"requirements.txt pins {name}=={pinned[name]}, outside pyproject's {requirement}")


def test_the_installed_environment_satisfies_the_dependencies():
    for name, requirement in DEPENDENCIES.items():
        version = importlib.metadata.version(name)
        assert requirement.specifier.contains(version, prereleases=True), f"{name} {version} is not {requirement}"


IMPORT_EVERY_MODULE = r"""
import json, pkgutil, random, sys, warnings, importlib
import numpy, torch
for dependency in json.loads(sys.argv[1]):  # their own import-time warnings filters are not ours
    try:
        importlib.import_module(dependency)
    except ImportError:
        pass
filters, torch_state = list(warnings.filters), torch.random.get_rng_state()
random_state, numpy_state = random.getstate(), numpy.random.get_state()[1].copy()
import ebmflow
names = sorted(m.name for m in pkgutil.walk_packages(ebmflow.__path__, "ebmflow.") if m.name != "ebmflow.__main__")
failed = {}
for name in names:
    try:
        importlib.import_module(name)
    except Exception as error:
        failed[name] = f"{type(error).__name__}: {error}"
print(json.dumps({"modules": names, "failed": failed, "file": ebmflow.__file__,
                  "warnings_filters_unchanged": warnings.filters == filters,
                  "torch_rng_unchanged": bool(torch.equal(torch.random.get_rng_state(), torch_state)),
                  "random_unchanged": random.getstate() == random_state,
                  "numpy_rng_unchanged": bool((numpy.random.get_state()[1] == numpy_state).all())}))
"""


def import_every_module(python: str, env: dict | None = None) -> dict:
    dependencies = json.dumps(sorted({full for *_, full in IMPORTS}))
    result = subprocess.run([python, "-c", IMPORT_EVERY_MODULE, dependencies], capture_output=True, text=True, env=env,
                            cwd="/", timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def imported():
    return import_every_module(sys.executable, env={**__import__("os").environ, "PYTHONPATH": str(ROOT)})


def test_every_module_imports(imported):
    assert imported["failed"] == {}
    assert Path(imported["file"]).resolve().parent == PACKAGE
    expected = {".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
                for p in PACKAGE.rglob("*.py")} - {"ebmflow", "ebmflow.__main__"}
    assert set(imported["modules"]) == expected


def test_importing_the_library_leaves_global_state_alone(imported):
    """No warnings filter, and no draw from or seeding of the global RNGs, at import (issue 10, defect 8); the
    filters that third-party packages install when imported are set before the snapshot."""
    assert imported["warnings_filters_unchanged"]
    assert imported["torch_rng_unchanged"] and imported["random_unchanged"] and imported["numpy_rng_unchanged"]


@pytest.mark.slow
def test_the_wheel_installs_into_a_fresh_environment_and_every_module_imports(tmp_path):
    """`pip wheel --no-deps` on a copy of the sources; the wheel holds every file of the package and declares
    the dependencies; installed into a fresh venv (whose only other packages are those of this environment,
    found by path: nothing from this checkout), every module imports. About 15 s."""
    source = tmp_path / "source"
    source.mkdir()
    shutil.copy(ROOT / "pyproject.toml", source)
    shutil.copytree(PACKAGE, source / "ebmflow", ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                    str(tmp_path / "dist"), str(source)], check=True, capture_output=True, timeout=120)
    (wheel,) = (tmp_path / "dist").glob("ebmflow-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        metadata = archive.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    package_files = {str(p.relative_to(ROOT)) for p in PACKAGE.rglob("*")
                     if p.is_file() and "__pycache__" not in p.parts}
    assert package_files <= names, f"missing from the wheel: {sorted(package_files - names)}"
    declared = {normalise(Requirement(line.split(":", 1)[1]).name) for line in metadata.splitlines()
                if line.startswith("Requires-Dist:") and "extra ==" not in line}
    assert declared == set(DEPENDENCIES)

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    site_packages = next(venv.glob("lib/python*/site-packages"))
    here = next(p for p in map(Path, sys.path) if p.name == "site-packages" and (p / "torch").exists())
    clean = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # nothing of this checkout visible to pip
    subprocess.run([sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install", "-q",
                    "--no-deps", "--no-index", str(wheel)], check=True, capture_output=True, timeout=120,
                   cwd=tmp_path, env=clean)
    # after the install (else pip finds this checkout's editable ebmflow through it and installs nothing):
    (site_packages / "environment.pth").write_text(f"{here}\n")  # a path line: its .pth files are not run
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "MPLCONFIGDIR": str(tmp_path / "mpl")}
    imported = import_every_module(str(venv / "bin" / "python"), env=env)
    assert imported["failed"] == {}
    assert Path(imported["file"]).is_relative_to(venv), "the fresh environment imported ebmflow from elsewhere"
    check = subprocess.run([str(venv / "bin" / "python"), "-c", "import importlib.metadata as m; "
                            "print(m.version('ebmflow')); [m.version(r.split(';')[0].split('=')[0].split('>')[0]"
                            ".strip()) for r in m.requires('ebmflow') if 'extra' not in r]"],
                           capture_output=True, text=True, env=env, timeout=120)
    assert check.returncode == 0 and check.stdout.strip() == PYPROJECT["project"]["version"], check.stderr
