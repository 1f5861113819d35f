"""Paired significance test of two runs on per-relation metrics (the paper's Table 7).

The command lives in roam_graph/cli/compare.py; `roam compare` runs the same function.
This script keeps `python pipelines/compare.py ...` working from a checkout.
"""

from _cli import run_main
from roam_graph.cli.compare import main

if __name__ == "__main__":
    run_main(main)
