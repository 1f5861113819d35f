"""Hyper-parameter search with Optuna on validation MRR (test is never evaluated), resumable.

    roam tune --graph synthetic --trials 20                       # space configs/search/roam.yaml
    roam tune --graph db15k --source DIR --epochs 50 --trials 30 --out runs/db15k/tune
    roam tune --graph synthetic --model tucker --space my-space.yaml --trials 10
    roam run --config runs/synthetic/tune/roam-full/best.yaml      # train the best again

The base configuration resolves as for `roam run` (configs/<graph>.yaml <- flags <- --set);
each trial overrides the keys of the search space (YAML: roam_graph/tuning/space.py; defaults in
configs/search/<model>.yaml; ROAM's: lr, Sinkhorn iterations L, OT weight lambda, the paper's
Fig. 3). Trials report validation MRR after every evaluation (--eval-every) and are pruned
below the median. OUT gets study.db (the Optuna study, SQLite), trials/<n>/ (run folders),
trials.csv and best.yaml. --trials N is the number of finished trials the study should hold:
the same command again resumes an interrupted search. Needs the extra roam-graph[tune].
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from roam_graph.cli._options import (
    SHARED_FLAGS,
    add_configuration_arguments,
    add_set_option,
    base_config,
    command_overrides,
)
from roam_graph.cli._parsing import Parser, positive_int
from roam_graph.graph.prepare import prepare_graph
from roam_graph.training.config import prepare_options
from roam_graph.tuning.search import require_optuna, run_search
from roam_graph.tuning.space import default_space_path, load_space

#: The flags of this command that set configuration keys (``_options.CONFIG_FLAGS``).
FLAGS = (*SHARED_FLAGS, "--model", "--variant")


def parse_args(argv: list[str] | None, prog: str | None = None) -> argparse.Namespace:
    p = Parser(prog=prog, description=__doc__)
    add_configuration_arguments(p, FLAGS)
    p.add_argument("--space", type=Path, help="search space YAML "
                                              "(default configs/search/<model>.yaml)")
    p.add_argument("--trials", type=positive_int, required=True,
                   help="finished trials the study should hold (resume: the same command)")
    add_set_option(p, "any config key of the base configuration, as in roam experiments")
    p.add_argument("--out", type=Path, help="default runs/<graph>/tune/<model>-<variant>")
    return p.parse_args(argv)


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    args = parse_args(argv, prog)
    require_optuna()  # before any work
    base = base_config(args, *command_overrides(args, FLAGS, args.set))
    space = load_space(args.space or default_space_path(base.model.model))
    started = time.perf_counter()
    kg = prepare_graph(prepare_options(base, download=not args.no_download)).kg
    print(repr(kg))
    out = args.out or Path("runs") / base.graph / "tune" / \
        f"{base.model.model}-{base.model.variant}"
    print(f"searching {', '.join(d.key for d in space.dimensions)} ({space.path}) for "
          f"{base.model.model} ({base.model.variant}), {base.training.epochs} epochs per trial")
    result = run_search(base, space, kg, out, args.trials)
    params = ", ".join(f"{k}={v}" for k, v in result.best_params.items())
    print(f"best: trial {result.best_number}, validation MRR {result.best_value:.4f} ({params}); "
          f"{result.finished} finished trial(s), {result.ran} run now, "
          f"{time.perf_counter() - started:.0f} s")
    print(f"files: {out / 'best.yaml'}, {out / 'trials.csv'}, {out / 'study.db'}")
    return 0
