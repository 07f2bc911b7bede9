"""The environment files agree: conda's environment.yml installs exactly requirements.txt, torch is pinned."""
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def test_environment_yml_mirrors_requirements():
    environment = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert "python=3.11" in environment["dependencies"]
    pip_section = next(d["pip"] for d in environment["dependencies"] if isinstance(d, dict))
    assert pip_section == ["-r requirements.txt", "-e ."]


def test_every_requirement_is_pinned_and_torch_is_the_cpu_release():
    lines = [line.split("#")[0].strip() for line in (ROOT / "requirements.txt").read_text().splitlines()]
    requirements = [line for line in lines if line]
    assert all("==" in line for line in requirements), "pin every requirement"
    assert "torch==2.13.0" in requirements
