"""Hyper-parameter search with Optuna on validation MRR (test is never evaluated), resumable.

The command lives in roam_graph/cli/tune.py; `roam tune` runs the same function.
This script keeps `python pipelines/tune.py ...` working from a checkout.
"""

from _cli import run_main
from roam_graph.cli.tune import main

if __name__ == "__main__":
    run_main(main)
