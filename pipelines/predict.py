"""Top-k tails for a query of a trained run, with the group it was routed to.

The command lives in roam_graph/cli/predict.py; `roam predict` runs the same function.
This script keeps `python pipelines/predict.py ...` working from a checkout.
"""

from _cli import run_main
from roam_graph.cli.predict import main

if __name__ == "__main__":
    run_main(main)
