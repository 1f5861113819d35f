"""Calling the pipelines/ scripts' command lines in the test process (fast, and any exception
but a clean exit fails the test with its traceback)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parents[1]


def load_pipeline(name: str) -> ModuleType:
    """A pipelines/ script as a module, to call its ``main`` in this process (fast)."""
    sys.path.insert(0, str(REPO / "pipelines"))
    try:
        spec = importlib.util.spec_from_file_location(f"pipeline_{name}",
                                                      REPO / "pipelines" / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(REPO / "pipelines"))
    return module


def run_cli(module: ModuleType, args: list[str], capsys: pytest.CaptureFixture[str]
            ) -> tuple[int, str]:
    """Exit code and stderr of the pipeline's command line, run in this process: any exception
    other than the clean exit would fail the test with its traceback."""
    capsys.readouterr()
    with pytest.raises(SystemExit) as stop:
        module.run_main(module.main, args)
    return int(stop.value.code or 0), capsys.readouterr().err


def load_bench(name: str) -> ModuleType:
    """``bench/<name>.py`` as a module (bench/ is a folder of scripts, not a package)."""
    spec = importlib.util.spec_from_file_location(name, REPO / "bench" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
