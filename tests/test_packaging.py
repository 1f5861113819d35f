"""pyproject.toml and environment.yml pin the same stack; the README commands exist."""

from __future__ import annotations

import re
import sys
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


def test_the_roam_command_is_installed_and_every_package_is_listed() -> None:
    import importlib

    setup = tomllib.loads((REPO / "pyproject.toml").read_text())
    module, _, function = setup["project"]["scripts"]["roam"].partition(":")
    assert callable(getattr(importlib.import_module(module), function))
    packages = {".".join(path.parent.relative_to(REPO).parts)
                for path in (REPO / "roam_graph").rglob("__init__.py")}
    assert packages <= set(setup["tool"]["setuptools"]["packages"])


def test_roam_dispatches_to_each_subcommand_and_pipelines_scripts_run_the_same_function(
        capsys) -> None:
    import importlib.util

    from roam_graph import cli

    assert cli.main(["--help"]) == 0
    listing = capsys.readouterr().out
    assert all(f"  {name} " in listing for name in cli.COMMANDS)
    assert cli.main(["nope"]) == 2 and "unknown command 'nope'" in capsys.readouterr().err
    for name in ("prepare", "run", "experiments", "sample", "predict", "export",
                 "compare", "tune"):
        spec = importlib.util.spec_from_file_location(f"pipeline_{name}",
                                                      REPO / "pipelines" / f"{name}.py")
        script = importlib.util.module_from_spec(spec)
        sys.path.insert(0, str(REPO / "pipelines"))
        try:
            spec.loader.exec_module(script)
        finally:
            sys.path.remove(str(REPO / "pipelines"))
        assert script.main is importlib.import_module(f"roam_graph.cli.{name}").main
