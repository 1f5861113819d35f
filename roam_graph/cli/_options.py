"""Options shared by several subcommands: reading a finished run (predict, export) and
downloading a registered graph on first use (run, experiments, sample, tune)."""

from __future__ import annotations

import argparse
from pathlib import Path

from roam_graph.api.trained import TrainedRun, load_run


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--run", type=Path, required=True,
                        help="output folder of a finished run (config.json + best.pt)")
    parser.add_argument("--data-dir", type=Path,
                        help="graph cache folder, if not the run's own (default: the run's, "
                             "else $ROAM_DATA_DIR or ./data)")
    parser.add_argument("--source", type=Path,
                        help="folder with the graph's files, if they moved since training")
    parser.add_argument("--device", default="cpu", help="cpu (default), cuda, auto")


def load(args: argparse.Namespace) -> TrainedRun:
    return load_run(args.run, data_dir=args.data_dir, source=args.source, device=args.device)


def add_download_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--no-download", action="store_true",
                        help="do not download a registered graph's missing files on first use "
                             "(they are fetched into <data dir>/raw/<graph>/, checksums "
                             "verified); report them instead")
