"""``python -m roam_graph.cli <command> ...``: the ``roam`` command without installing it."""

from roam_graph.cli import entry

entry()
