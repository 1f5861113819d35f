"""The flags that set configuration keys are defined once (``roam_graph/cli/_options.py``): each
sets keys the configuration knows, offers exactly the values the configuration accepts, and
means the same in every command that takes it."""

from __future__ import annotations

from dataclasses import fields
from types import ModuleType

import pytest

from roam_graph.cli import experiments, run, sample, tune
from roam_graph.cli._options import CONFIG_FLAGS, config_flags, flag_origins, flag_overrides
from roam_graph.data.errors import DataError
from roam_graph.model.config import WIDTHS
from roam_graph.training.config import SECTIONS, load_config

TINY = ["--graph", "synthetic-tiny"]


def test_every_flag_sets_keys_the_configuration_knows() -> None:
    known = {(section + "." if section else "") + f.name
             for section, cls in SECTIONS.items() for f in fields(cls)}
    for name, flag in CONFIG_FLAGS.items():
        assert set(flag.keys) <= known, name


@pytest.mark.parametrize("name", [n for n, f in CONFIG_FLAGS.items() if "choices" in f.options])
def test_a_flag_offers_the_values_the_configuration_accepts(name: str) -> None:
    flag = CONFIG_FLAGS[name]
    key = flag.keys[0]
    graph = "my-graph" if key == "format" else "synthetic-tiny"   # a generated graph has none
    for value in flag.options["choices"]:
        load_config(None, {key: value}, graph=graph)
    with pytest.raises(DataError):
        load_config(None, {key: "no-such-value"}, graph=graph)


def test_dim_sets_every_model_width() -> None:
    settings, origins = run.overrides(run.parse_args([*TINY, "--dim", "8"]))
    config = load_config(None, settings, graph="synthetic-tiny", origins=origins)
    assert {name: getattr(config.model, name) for name in WIDTHS} == dict.fromkeys(WIDTHS, 8)
    assert {origins[f"model.{name}"] for name in WIDTHS} == {"--dim"}


def test_regime_is_the_flag_of_training_regime_and_training_its_older_spelling() -> None:
    for flag in ("--regime", "--training"):
        settings, origins = run.overrides(run.parse_args([*TINY, flag, "negative-sampling"]))
        assert settings["training.regime"] == "negative-sampling"
        assert origins["training.regime"] == "--regime"


def test_large_graph_implies_negative_sampling_unless_a_regime_is_given() -> None:
    settings, origins = run.overrides(run.parse_args([*TINY, "--large-graph"]))
    assert settings["training.regime"] == "negative-sampling"
    assert origins["training.regime"] == "--large-graph"
    assert settings["training.large_graph"] is True
    settings, _ = run.overrides(run.parse_args([*TINY, "--large-graph", "--regime", "1-n"]))
    assert settings["training.regime"] == "1-n"   # refused by load_config, naming both flags


def test_flags_not_given_leave_the_config_file_alone() -> None:
    settings, _ = run.overrides(run.parse_args(TINY))
    assert all(value is None for value in settings.values()), settings


@pytest.mark.parametrize(("command", "argv"), [
    (run, []), (experiments, ["--suite", "main"]), (tune, ["--trials", "1"])])
def test_commands_that_build_a_configuration_share_the_graph_and_budget_flags(
        command: ModuleType, argv: list[str]) -> None:
    args = command.parse_args([*TINY, *argv, "--source", "folder", "--data-dir", "cache",
                               "--text-encoder", "none", "--seed", "3", "--device", "cpu",
                               "--dim", "8", "--epochs", "2", "--batch-size", "16",
                               "--eval-every", "1", "--patience", "2"])
    settings, origins = flag_overrides(config_flags(args, command.FLAGS))
    config = load_config(None, settings, graph="synthetic-tiny", origins=origins)
    assert (config.source, config.data_dir, config.seed, config.device) == \
        ("folder", "cache", 3, "cpu")
    assert (config.model.cost_hidden, config.training.epochs, config.training.batch_size,
            config.training.eval_every, config.training.patience) == (8, 2, 16, 1, 2)


def test_sample_errors_name_the_flag_behind_each_key() -> None:
    origins = flag_origins(sample.FLAGS)
    assert origins["model.cost_hidden"] == "--dim" and origins["training.lr"] == "--lr"
    assert origins["data_dir"] == "--data-dir"
