"""Top-k tails or heads of a finished run, for one query or a file of them; or score triples.

The command lives in roam_graph/cli/predict.py; `roam predict` runs the same function.
This script keeps `python pipelines/predict.py ...` working from a checkout.
"""

from _cli import run_main
from roam_graph.cli.predict import main

if __name__ == "__main__":
    run_main(main)
