"""Train and evaluate a model on a multimodal KG: the main job.

The command lives in roam_graph/cli/run.py; `roam run` runs the same function.
This script keeps `python pipelines/run.py ...` working from a checkout.
"""

from _cli import run_main
from roam_graph.cli.run import main

if __name__ == "__main__":
    run_main(main)
