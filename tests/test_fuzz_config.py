"""Table-driven: every key of every config section, given a value of each wrong type in a config
file, ends ``run.py`` with one clear line (exit code 2, no traceback) that names the key and the
file - before anything is prepared or written. Flags are checked when they are parsed, and an
error names the flag that set a value, never "defaults"."""

from __future__ import annotations

import os
import subprocess
import sys
import typing
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml
from pipeline_helpers import load_pipeline, run_cli

from roam_graph.data.errors import DataError
from roam_graph.training.config import SECTIONS, load_config
from roam_graph.training.config_types import field_types

REPO = Path(__file__).resolve().parents[1]
#: One value of each type a YAML file can hold.
VALUES: dict[str, Any] = {"string": "abc", "integer": 3, "float": 2.5, "boolean": True,
                          "list": [1, 2], "mapping": {"a": 1}, "null": None}
#: Annotation -> the YAML types it accepts (docs/training.md, "Configuration values").
ACCEPTS: dict[Any, set[str]] = {int: {"integer"}, float: {"integer", "float"},
                                bool: {"boolean"}, str: {"string"},
                                tuple[str, ...]: {"string", "list"}}


def wrong_values() -> list[tuple[str, str, str]]:
    """``(section, key, value type)`` for every key and every type it does not accept."""
    cases = []
    for section, cls in SECTIONS.items():
        for key, hint in field_types(cls).items():
            if hint in SECTIONS.values():
                continue
            optional = type(None) in typing.get_args(hint)
            base = next((a for a in typing.get_args(hint) if a is not type(None)), hint)
            accepted = ACCEPTS[base] | ({"null"} if optional else set())
            cases += [(section, key, kind) for kind in VALUES if kind not in accepted]
    return cases


@pytest.fixture(scope="module")
def run_module() -> ModuleType:
    return load_pipeline("run")


def test_the_table_covers_every_key() -> None:
    keys = {(section, key) for section, key, _ in wrong_values()}
    assert len(keys) == sum(len(field_types(cls)) for cls in SECTIONS.values()) - 3
    assert ("training", "epochs", "boolean") in wrong_values()   # booleans are not integers
    assert ("model", "modalities", "string") not in wrong_values()  # a comma string is a list


def test_every_key_refuses_every_wrong_type(run_module: ModuleType, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ROAM_DATA_DIR", str(tmp_path / "data"))
    out = tmp_path / "out"
    for number, (section, key, kind) in enumerate(wrong_values()):
        config = {"graph": "synthetic-tiny"}
        target = config.setdefault(section, {}) if section else config
        target[key] = VALUES[kind]
        path = tmp_path / f"{number}.yaml"
        path.write_text(yaml.safe_dump(config), encoding="utf-8")
        # the flags keep a case that wrongly passed short; the file is checked before them
        code, err = run_cli(run_module, ["--config", str(path), "--out", str(out), "--quiet",
                                         "--epochs", "1", "--dim", "8"], capsys)
        case = f"{section}.{key} = {VALUES[kind]!r}: {err!r}"
        assert code == 2 and err.startswith(f"error: {path}") and err.count("\n") == 1, case
        assert f"{key} must be" in err, case
    assert not out.exists() and not (tmp_path / "data").exists()  # nothing started


@pytest.mark.parametrize("section", ["model", "training", "evaluation"])
@pytest.mark.parametrize("value", [3, "abc", [1, 2], True])
def test_a_scalar_where_a_section_belongs_is_named(section: str, value: object,
                                                   tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump({section: value}), encoding="utf-8")
    with pytest.raises(DataError, match=rf"bad.yaml: {section} must be a section"):
        load_config(path)


def test_lists_take_a_list_or_a_comma_string_and_numbers_take_exponents(tmp_path: Path) -> None:
    path = tmp_path / "ok.yaml"
    path.write_text("model:\n  modalities: structure\ntraining:\n  lr: 1e-3\n", encoding="utf-8")
    config = load_config(path)
    assert config.model.modalities == ("structure",) and config.training.lr == 0.001
    assert load_config(None, {"model.modalities": "structure, text"}).model.modalities == \
        ("structure", "text")


@pytest.mark.parametrize(("flags", "message"), [
    (["--epochs", "0"], "argument --epochs: must be >= 1, got 0"),
    (["--epochs", "2.5"], "argument --epochs: expected an integer, got '2.5'"),
    (["--runs", "-1"], "argument --runs: must be >= 1, got -1"),
    (["--seed", "-4"], "argument --seed: must be >= 0, got -4"),
    (["--lr", "-1"], "--lr: lr must be > 0, got -1.0"),
    (["--lr", "nan"], "--lr: lr must be a finite number, got nan"),
    (["--device", "gpu"], "--device: device 'gpu' is not a device name"),
    (["--modalities", "structure,smell"], "--modalities: modalities ['structure', 'smell']"),
    (["--format", "openke"], "--format: graph 'synthetic-tiny' is generated"),
])
def test_flag_errors_name_the_flag(run_module: ModuleType, flags: list[str], message: str,
                                   tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, err = run_cli(run_module, ["--graph", "synthetic-tiny", "--out", str(tmp_path / "o"),
                                     *flags], capsys)
    assert code == 2 and message in err and err.count("\n") == 1, err
    assert "defaults" not in err and not (tmp_path / "o").exists()


@pytest.mark.parametrize("pipeline", ["run", "experiments", "sample", "prepare", "partition",
                                      "predict", "train_dist", "tune"])
def test_integer_options_are_checked_when_parsed(pipeline: str, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    flag = {"prepare": "--seed", "partition": "--parts", "predict": "--top",
            "train_dist": "--epochs", "tune": "--trials"}.get(pipeline, "--epochs")
    required = {"partition": ["--out", str(tmp_path)], "experiments": ["--suite", "main"],
                "predict": ["--run", str(tmp_path), "--head", "a", "--relation", "r"],
                "train_dist": ["--partition-config", str(tmp_path / "p.json")]}
    code, err = run_cli(load_pipeline(pipeline), [*required.get(pipeline, []), flag, "-3"],
                        capsys)
    assert code == 2 and f"argument {flag}: must be >= " in err and err.count("\n") == 1, err


def test_the_roam_command_reports_flag_errors_in_one_line(
        capsys: pytest.CaptureFixture[str]) -> None:
    from roam_graph.cli import main
    with pytest.raises(SystemExit) as stop:
        main(["run", "--graph", "synthetic-tiny", "--epochs", "0"])
    err = capsys.readouterr().err
    assert stop.value.code == 2 and err == ("error: argument --epochs: must be >= 1, got 0 "
                                            "(see roam run --help)\n")
    assert main(["run", "--graph", "synthetic-tiny", "--format", "openke"]) == 2
    assert capsys.readouterr().err.startswith("error: --format: graph 'synthetic-tiny' is "
                                              "generated")


def test_the_command_line_prints_one_line_and_no_traceback(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("model:\n  dim: sixty-four\n", encoding="utf-8")
    env = dict(os.environ, ROAM_DATA_DIR=str(tmp_path / "data"), OMP_NUM_THREADS="1")
    result = subprocess.run([sys.executable, str(REPO / "pipelines" / "run.py"), "--config",
                             str(path), "--out", str(tmp_path / "out")],
                            capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr == (f"error: {path} [model]: dim must be an integer, got "
                             "'sixty-four' (a string)\n")
