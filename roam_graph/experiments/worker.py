"""One run of a suite in its own process: ``python -m roam_graph.experiments.worker SPEC OUT``.

SPEC is the resolved configuration (``config.json`` layout) written by the runner; the graph comes
from the preparation cache, so starting a run costs the imports and a cache read.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from roam_graph.data.errors import DataError
from roam_graph.training.runs import train_saved


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("spec", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--resume", action="store_true")
    args = parser.parse_args(argv)
    try:
        train_saved(args.spec, args.out, args.resume)
    except DataError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
