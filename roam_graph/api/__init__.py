"""The Python API: train, load a finished run, predict, score and export by name.

    import roam_graph.api as roam

    run = roam.train(graph="synthetic-tiny", out="runs/tiny", epochs=2, dim=16)
    run = roam.load_run("runs/tiny")
    run.predict_tails([("e00042", "r03")], top_k=10)        # pandas DataFrame
    run.score_triples([("e00042", "r03", "e00007")])
    run.export_embeddings("emb/")                              # DGL-KE layout, .npy

Tables carry entity and relation names; ``read_queries`` reads a TSV/CSV file of queries (or
triples) with line numbers, so unknown names are reported with their line (docs/api.md).
"""

from roam_graph.api.queries import NamedRow
from roam_graph.api.queries import read_rows as read_queries
from roam_graph.api.trained import TrainedRun, load_run
from roam_graph.api.training import train

__all__ = ["NamedRow", "TrainedRun", "load_run", "read_queries", "train"]
