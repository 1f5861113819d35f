"""Data layer: files -> plain tensors (``MMKGData``). No DGL here; ``roam_graph.graph`` adds it."""

from roam_graph.data.errors import DataError
from roam_graph.data.mmkg_data import SPLITS, MMKGData, Modality

__all__ = ["SPLITS", "DataError", "MMKGData", "Modality"]
