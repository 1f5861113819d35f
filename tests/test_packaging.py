"""pyproject.toml and environment.yml pin the same stack; the README commands exist."""

from __future__ import annotations

import re
from pathlib import Path

import tomllib
import yaml

REPO = Path(__file__).resolve().parents[1]


def requirement_map(requirements: list[str]) -> dict[str, str]:
    parsed = {}
    for requirement in requirements:
        match = re.match(r"([A-Za-z0-9_.\-]+)\s*(.*)", requirement)
        assert match, requirement
        parsed[match.group(1).lower()] = match.group(2).replace(" ", "")
    return parsed


def test_environment_yml_pins_the_same_versions_as_pyproject() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    environment = yaml.safe_load((REPO / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in environment["dependencies"] if isinstance(d, dict))
    assert requirement_map(pip_section) == requirement_map(project["dependencies"])
    assert "python=3.11" in environment["dependencies"]


def test_readme_commands_are_the_makefile_targets_ci_runs() -> None:
    readme = (REPO / "README.md").read_text()
    assert "make run" in readme and "make test" in readme
    assert "make test" in (REPO / ".ci" / "run").read_text()
    makefile = (REPO / "Makefile").read_text()
    assert re.search(r"^run:", makefile, re.M) and re.search(r"^test:", makefile, re.M)
