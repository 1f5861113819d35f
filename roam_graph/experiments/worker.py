"""One run of a suite in its own process: ``python -m roam_graph.experiments.worker SPEC OUT``.

SPEC is the resolved configuration (``config.json`` layout) written by the runner; the graph comes
from the preparation cache, so starting a run costs the imports and a cache read.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from roam_graph.data.errors import DataError
from roam_graph.graph.prepare import prepare_graph
from roam_graph.training.config import load_config, prepare_options
from roam_graph.training.trainer import run_training


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("spec", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--resume", action="store_true")
    args = parser.parse_args(argv)
    try:
        config = load_config(args.spec)
        kg = prepare_graph(prepare_options(config)).kg
        run_training(config, kg, args.out, resume=args.resume, progress=False)
    except DataError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
