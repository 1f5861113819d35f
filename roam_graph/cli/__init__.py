"""The ``roam`` command: one entry point whose subcommands are the modules of this package.

    roam run --graph synthetic-tiny --epochs 2        # same as python pipelines/run.py ...
    roam predict --run DIR --queries queries.tsv --out top10.tsv
    roam --help

Each subcommand module has ``main(argv, prog) -> int``; ``pipelines/<name>.py`` runs the same
function, so both spellings behave identically. User errors (``DataError``) end with one line on
stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Sequence

from roam_graph.cli._parsing import MESSAGE_LIMIT
from roam_graph.data.errors import DataError, quote, shorten

#: Subcommand -> one-line summary (kept here so ``roam --help`` imports no torch-heavy module).
COMMANDS: dict[str, str] = {
    "prepare": "turn a benchmark's (or your own graph's) files into a cached DGL graph",
    "run": "train and evaluate a model (the main job)",
    "experiments": "the paper's tables and figures, one suite of runs each",
    "sample": "compare training samplers (negative sampling, 1-N, subgraphs)",
    "predict": "top-k tails or heads of a finished run, one query or a file of them; score "
               "triples",
    "export": "write a finished run's entity and relation embeddings (.npy or .tsv)",
    "compare": "Wilcoxon signed-rank test of two runs on per-relation metrics",
    "tune": "hyper-parameter search with Optuna on validation MRR (resumable)",
}

Main = Callable[..., int]


def run_command(main: Main, argv: Sequence[str] | None = None, prog: str | None = None) -> int:
    """Run a subcommand's ``main`` and return its exit code; a ``DataError`` becomes one line on
    stderr and code 2, Ctrl-C code 130."""
    args = None if argv is None else list(argv)
    try:  # prog only when given: pipelines/partition.py and train_dist.py take argv alone
        return main(args) if prog is None else main(args, prog)
    except DataError as error:
        print(f"error: {shorten(str(error), MESSAGE_LIMIT)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def usage() -> str:
    width = max(map(len, COMMANDS))
    lines = ["usage: roam <command> [options]   (roam <command> --help for its options)", "",
             "commands:"]
    lines += [f"  {name:<{width}}  {summary}" for name, summary in COMMANDS.items()]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """``roam <command> ...``: dispatch to ``roam_graph.cli.<command>.main``."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print(usage())
        return 0 if args else 2
    name, rest = args[0], args[1:]
    if name not in COMMANDS:
        print(f"error: unknown command {quote(name)}; commands: {', '.join(COMMANDS)}",
              file=sys.stderr)
        return 2
    module = importlib.import_module(f"roam_graph.cli.{name}")
    return run_command(module.main, rest, prog=f"roam {name}")


def entry() -> None:
    """The console script ``roam`` (``[project.scripts]`` in pyproject.toml)."""
    sys.stdout.reconfigure(line_buffering=True)  # progress lines appear at once in logs too
    sys.exit(main())
