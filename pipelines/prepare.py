"""Turn a benchmark's files (or your own graph's) into a cached multimodal DGL graph.

The command lives in roam_graph/cli/prepare.py; `roam prepare` runs the same function.
This script keeps `python pipelines/prepare.py ...` working from a checkout.
"""

from _cli import run_main
from roam_graph.cli.prepare import main

if __name__ == "__main__":
    run_main(main)
