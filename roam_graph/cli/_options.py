"""Options shared by several subcommands, each defined here once: the flags that set
configuration keys (one table: the flag, the keys it sets, its parser options), the graph
options (run, experiments, tune, sample, prepare; pipelines/partition.py and the benchmarks),
reading a finished run (predict, export) and downloading a registered graph on first use."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from roam_datasets.registry import REGISTERED, SYNTHETIC
from roam_graph.api.trained import TrainedRun, load_run
from roam_graph.cli._parsing import non_negative_int, positive_int
from roam_graph.data.formats import FORMATS
from roam_graph.data.text import TEXT_ENCODERS
from roam_graph.graph.prepare import DATA_DIR_ENV, PrepareOptions
from roam_graph.model.config import MODALITIES, MODELS, VARIANTS
from roam_graph.sampling.negatives import STRATEGIES
from roam_graph.training.config import (
    LOSSES,
    REGIMES,
    ExperimentConfig,
    default_config_path,
    key_docs,
    load_config,
    parse_settings,
    width_overrides,
)
from roam_graph.training.precision import PRECISIONS


@dataclass(frozen=True)
class ConfigFlag:
    """A flag that sets configuration keys (``load_config``'s override keys)."""
    keys: tuple[str, ...]
    options: dict[str, Any] = field(default_factory=dict)   # add_argument's keywords
    aliases: tuple[str, ...] = ()                           # older spellings, still accepted


#: Every flag that sets configuration keys; a command picks the ones it takes by name.
CONFIG_FLAGS: dict[str, ConfigFlag] = {
    "--source": ConfigFlag(("source",), {"type": Path, "help": "folder with the graph's files"}),
    "--format": ConfigFlag(("format",), {
        "choices": FORMATS,
        "help": "file format of a graph of your own (default tsv; docs/data-formats.md)"}),
    "--data-dir": ConfigFlag(("data_dir",), {
        "type": Path, "help": f"cache folder (default ${DATA_DIR_ENV} or ./data)"}),
    "--text-encoder": ConfigFlag(("text_encoder",), {
        "choices": TEXT_ENCODERS,
        "help": "text features from entity names/descriptions (default: the config's)"}),
    "--seed": ConfigFlag(("seed",), {"type": non_negative_int}),
    "--device": ConfigFlag(("device",), {"help": "auto (default), cpu, cuda, cuda:1 ..."}),
    "--model": ConfigFlag(("model.model",), {"choices": MODELS}),
    "--variant": ConfigFlag(("model.variant",), {"choices": list(VARIANTS)}),
    "--modalities": ConfigFlag(("model.modalities",), {
        "help": f"comma-separated subset of {','.join(MODALITIES)}"}),
    "--groups": ConfigFlag(("model.num_groups",), {"type": positive_int}),
    "--input-noise": ConfigFlag(("model.input_noise",), {"type": float}),
    "--dim": ConfigFlag(tuple(width_overrides(None)), {
        "type": positive_int,
        "help": "sets every model width (embedding, relation, expert hidden, gating hidden)"}),
    "--epochs": ConfigFlag(("training.epochs",), {"type": positive_int}),
    "--batch-size": ConfigFlag(("training.batch_size",), {"type": positive_int}),
    "--lr": ConfigFlag(("training.lr",), {"type": float}),
    "--regime": ConfigFlag(("training.regime",), {"choices": REGIMES}, aliases=("--training",)),
    "--loss": ConfigFlag(("training.loss",), {"choices": LOSSES}),
    "--negatives": ConfigFlag(("training.negatives",), {"type": positive_int}),
    "--negative-strategy": ConfigFlag(("training.negative_strategy",), {
        "help": f"{', '.join(STRATEGIES)}, or several joined by '+' (e.g. bernoulli+filtered)"}),
    "--eval-every": ConfigFlag(("training.eval_every",), {
        "type": positive_int, "help": "epochs between validations (and, in roam tune, pruning)"}),
    "--patience": ConfigFlag(("training.patience",), {"type": positive_int}),
    "--precision": ConfigFlag(("training.precision",), {"choices": PRECISIONS}),
    "--large-graph": ConfigFlag(("training.large_graph",), {
        "action": "store_true",
        "help": "large-graph mode: negative sampling (implies --regime negative-sampling), "
                "sparse entity embeddings with SparseAdam, evaluation in candidate chunks "
                "(docs/SCALING.md)"}),
    "--candidate-chunk": ConfigFlag(("evaluation.candidate_chunk",), {
        "type": positive_int,
        "help": "evaluate against candidate entities in chunks of this size (memory batch x "
                "chunk; default: all at once, 8192 with --large-graph)"}),
}
#: The graph's files and cache, and how texts are encoded (every command that prepares a graph).
GRAPH_FLAGS = ("--source", "--format", "--data-dir", "--text-encoder")
#: What run, experiments and tune share: the graph, seed, device, widths and budget.
SHARED_FLAGS = (*GRAPH_FLAGS, "--seed", "--device", "--dim", "--epochs", "--batch-size",
                "--eval-every", "--patience", "--precision")

#: One option's part of the configuration: (flag, config key, value; None when not given).
Flag = tuple[str, str, object]


def add_config_flag(parser: argparse.ArgumentParser, name: str, **options: Any) -> None:
    """``name`` of ``CONFIG_FLAGS`` on ``parser``; ``options`` (a default, a help text) replace
    the table's for this command. Without a help text of its own, a flag is described by the
    documentation of the key it sets (docs/configuration.md)."""
    flag = CONFIG_FLAGS[name]
    described = {"help": key_docs()[flag.keys[0]].meaning}
    parser.add_argument(name, *flag.aliases, **{**described, **flag.options, **options})


def add_config_flags(parser: argparse.ArgumentParser, *names: str) -> None:
    for name in names:
        add_config_flag(parser, name)


def config_flags(args: argparse.Namespace, names: Sequence[str]) -> list[Flag]:
    """The configuration keys the flags ``names`` set, with their parsed values: paths become
    text (the configuration is saved as JSON), a switch not given (False) is None like any
    flag not given, so that it leaves the config file's value."""
    flags = []
    for name in names:
        value = getattr(args, name.removeprefix("--").replace("-", "_"))
        value = str(value) if isinstance(value, Path) else None if value is False else value
        flags += [(name, key, value) for key in CONFIG_FLAGS[name].keys]
    return flags


def flag_origins(names: Sequence[str]) -> dict[str, str]:
    """Config key -> the flag of ``names`` that sets it (``load_config``'s ``origins``)."""
    return {key: name for name in names for key in CONFIG_FLAGS[name].keys}


def add_graph_flag(parser: argparse.ArgumentParser, default: str | None = None,
                   help_text: str | None = None) -> None:
    known = ", ".join([*REGISTERED, *SYNTHETIC])
    parser.add_argument("--graph", default=default, help=help_text or (
        f"registered graph ({known}) or a name for your own graph (default: {default})"))


def add_graph_source_flags(parser: argparse.ArgumentParser) -> None:
    """The graph and how to build it, with ``PrepareOptions``' defaults and no configuration
    file (prepare, pipelines/partition.py)."""
    add_graph_flag(parser, default="synthetic")
    add_config_flags(parser, "--source", "--data-dir")
    add_config_flag(parser, "--text-encoder", default=PrepareOptions.text_encoder,
                    help="compute text features from entity names/descriptions")
    add_config_flag(parser, "--format", help="file format of a graph of your own (default: tsv; "
                                             "a registered graph's own format may be repeated)")
    add_config_flag(parser, "--seed", default=PrepareOptions.seed,
                    help="seed of the synthetic graph")


def add_configuration_arguments(parser: argparse.ArgumentParser, flags: Sequence[str]) -> None:
    """What a command that builds a configuration takes (run, experiments, tune): the graph and
    its files, the config file, ``--no-download``, then the other config flags of ``flags``."""
    add_graph_flag(parser, help_text="graph name (default: the --config file's graph, else "
                                     "synthetic)")
    add_config_flags(parser, *GRAPH_FLAGS)
    parser.add_argument("--config", type=Path, help="YAML config (default configs/<graph>.yaml; "
                                                    "keys: docs/configuration.md)")
    add_download_flag(parser)
    add_config_flags(parser, *(name for name in flags if name not in GRAPH_FLAGS))


def add_set_option(parser: argparse.ArgumentParser, help_text: str) -> None:
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help=help_text)


def add_download_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--no-download", action="store_true",
                        help="do not download a registered graph's missing files on first use "
                             "(they are fetched into <data dir>/raw/<graph>/, checksums "
                             "verified); report them instead")


def command_overrides(args: argparse.Namespace, names: Sequence[str],
                      items: list[str] | None = None) -> tuple[dict[str, object], dict[str, str]]:
    """``flag_overrides`` of the config flags ``names`` and the ``--set`` items."""
    return flag_overrides(config_flags(args, names), items)


def flag_overrides(flags: list[Flag], items: list[str] | None = None
                   ) -> tuple[dict[str, object], dict[str, str]]:
    """``load_config``'s overrides and origins: the config key each flag sets, then the
    ``--set KEY=VALUE`` items, and the flag (or item) behind each key, which errors name."""
    settings, origins = parse_settings(items or [])
    return ({**{key: value for _, key, value in flags}, **settings},
            {**{key: flag for flag, key, _ in flags}, **origins})


def base_config(args: argparse.Namespace, settings: dict[str, object],
                origins: dict[str, str]) -> ExperimentConfig:
    """``--config`` (default ``configs/<--graph>.yaml``, synthetic's without either) <- the
    flags' settings; every value checked before any work starts."""
    path = args.config or default_config_path(args.graph or ExperimentConfig.graph)
    return load_config(path, settings, graph=args.graph, origins=origins)


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--run", type=Path, required=True,
                        help="output folder of a finished run (config.json + best.pt)")
    add_config_flag(parser, "--data-dir", help="graph cache folder, if not the run's own "
                                               f"(default: the run's, else ${DATA_DIR_ENV} or "
                                               "./data)")
    add_config_flag(parser, "--source",
                    help="folder with the graph's files, if they moved since training")
    add_config_flag(parser, "--device", default="cpu", help="cpu (default), cuda, auto")


def load(args: argparse.Namespace, log: Callable[[str], None] = print) -> TrainedRun:
    """The run of ``--run``; ``log`` gets the note when it is read from last.pt."""
    return load_run(args.run, data_dir=args.data_dir, source=args.source, device=args.device,
                    log=log)
