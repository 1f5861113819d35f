"""The paper's experiments, one command each: tables (markdown + CSV) and figures (PNG).

The command lives in roam_graph/cli/experiments.py; `roam experiments` runs the same function.
This script keeps `python pipelines/experiments.py ...` working from a checkout.
"""

from _cli import run_main
from roam_graph.cli.experiments import main

if __name__ == "__main__":
    run_main(main)
