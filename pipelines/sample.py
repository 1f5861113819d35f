"""Compare training samplers: negative-sampling strategies, negatives per positive, 1-N vs

The command lives in roam_graph/cli/sample.py; `roam sample` runs the same function.
This script keeps `python pipelines/sample.py ...` working from a checkout.
"""

from _cli import run_main
from roam_graph.cli.sample import main

if __name__ == "__main__":
    run_main(main)
