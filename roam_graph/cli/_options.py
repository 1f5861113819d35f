"""Options shared by several subcommands: reading a finished run (predict, export),
downloading a registered graph on first use (run, experiments, sample, tune), and the graph and
training options that become configuration keys (run, experiments, tune)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

from roam_graph.api.trained import TrainedRun, load_run
from roam_graph.data.formats import FORMATS
from roam_graph.data.text import TEXT_ENCODERS
from roam_graph.training.config import (
    ExperimentConfig,
    default_config_path,
    load_config,
    parse_settings,
    width_overrides,
)


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--run", type=Path, required=True,
                        help="output folder of a finished run (config.json + best.pt)")
    parser.add_argument("--data-dir", type=Path,
                        help="graph cache folder, if not the run's own (default: the run's, "
                             "else $ROAM_DATA_DIR or ./data)")
    parser.add_argument("--source", type=Path,
                        help="folder with the graph's files, if they moved since training")
    parser.add_argument("--device", default="cpu", help="cpu (default), cuda, auto")


def load(args: argparse.Namespace, log: Callable[[str], None] = print) -> TrainedRun:
    """The run of ``--run``; ``log`` gets the note when it is read from last.pt."""
    return load_run(args.run, data_dir=args.data_dir, source=args.source, device=args.device,
                    log=log)


def add_download_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--no-download", action="store_true",
                        help="do not download a registered graph's missing files on first use "
                             "(they are fetched into <data dir>/raw/<graph>/, checksums "
                             "verified); report them instead")


#: One option's part of the configuration: (flag, config key, value; None when not given).
Flag = tuple[str, str, object]


def add_graph_arguments(parser: argparse.ArgumentParser) -> None:
    """Which graph, its files and format, the cache, the config file, the text encoder and
    ``--no-download`` (run, experiments, tune)."""
    parser.add_argument("--graph", help="graph name (default: the --config file's graph, else "
                                        "synthetic)")
    parser.add_argument("--source", type=Path, help="folder with the graph's files")
    parser.add_argument("--format", choices=FORMATS,
                        help="file format of a graph of your own (default tsv; "
                             "docs/data-formats.md)")
    parser.add_argument("--data-dir", type=Path,
                        help="cache folder (default $ROAM_DATA_DIR or ./data)")
    parser.add_argument("--config", type=Path, help="YAML config (default configs/<graph>.yaml)")
    parser.add_argument("--text-encoder", choices=TEXT_ENCODERS)
    add_download_flag(parser)


def shared_flags(args: argparse.Namespace) -> list[Flag]:
    """The options run, experiments and tune share, as config keys."""
    return [("--source", "source", str(args.source) if args.source else None),
            ("--format", "format", args.format),
            ("--data-dir", "data_dir", str(args.data_dir) if args.data_dir else None),
            ("--text-encoder", "text_encoder", args.text_encoder),
            ("--seed", "seed", args.seed), ("--device", "device", args.device),
            *(("--dim", key, dim) for key, dim in width_overrides(args.dim).items()),
            ("--epochs", "training.epochs", args.epochs),
            ("--batch-size", "training.batch_size", args.batch_size),
            ("--eval-every", "training.eval_every", args.eval_every),
            ("--patience", "training.patience", args.patience)]


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
