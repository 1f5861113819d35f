"""Write a finished run's embeddings: entity and relation tables, their names, the config.

The command lives in roam_graph/cli/export.py; `roam export` runs the same function.
This script keeps `python pipelines/export.py ...` working from a checkout.
"""

from _cli import run_main
from roam_graph.cli.export import main

if __name__ == "__main__":
    run_main(main)
