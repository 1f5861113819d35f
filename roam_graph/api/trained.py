"""A finished run, loaded for use: predictions, triple scores and embeddings by name.

    run = load_run("runs/synthetic/roam-full/seed0")
    run.predict_tails([("e00042", "r03")], top_k=10)      # pandas DataFrame
    run.predict_heads([("r03", "e00007")])
    run.score_triples([("e00042", "r03", "e00007")])
    run.export_embeddings("emb/")

The model is the run's selected checkpoint (``best.pt``; ``last.pt`` of a run stopped before its
first validation) in eval mode; the graph is prepared (or
read from its cache) from the run's ``config.json``.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable, Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from roam_graph.api import queries
from roam_graph.api.embeddings import EmbeddingTable, embedding_tables
from roam_graph.api.export import export_tables
from roam_graph.api.prediction import KnownTriples, predict_table, score_table
from roam_graph.data.errors import DataError
from roam_graph.graph.mmkg import MultimodalKG
from roam_graph.graph.prepare import prepare_graph
from roam_graph.model.contract import KGModel
from roam_graph.training.config import ExperimentConfig, prepare_options
from roam_graph.training.runs import (
    load_trained_model,
    read_metrics,
    read_run_config,
    selected_checkpoint,
)
from roam_graph.training.trainer import resolve_device

Names = Iterable[Sequence[str]] | pd.DataFrame
SKIP_HINT = "skip_unknown=True predicts the rest"


class TrainedRun:
    """The selected model of a run folder with its graph and configuration."""

    def __init__(self, folder: Path, config: ExperimentConfig, kg: MultimodalKG,
                 model: KGModel, device: torch.device) -> None:
        self.folder, self.config, self.kg, self.model, self.device = \
            Path(folder), config, kg, model, device

    @property
    def metrics(self) -> dict[str, Any] | None:
        """The run's ``metrics.json`` (test metrics of the selected model), if written."""
        return read_metrics(self.folder) if (self.folder / "metrics.json").is_file() else None

    @cached_property
    def known(self) -> KnownTriples:
        return KnownTriples.of(self.kg)

    # -- predictions ---------------------------------------------------------------------
    def predict_tails(self, pairs: Names, top_k: int = 10, skip_unknown: bool = False
                      ) -> pd.DataFrame:
        """Top-k tails of ``(head, relation)`` queries; ``relation`` may be ``NAME^-1``."""
        return self.predict(queries.from_pairs(_records(pairs, ("head", "relation")), "tail"),
                            top_k, skip_unknown)

    def predict_heads(self, pairs: Names, top_k: int = 10, skip_unknown: bool = False
                      ) -> pd.DataFrame:
        """Top-k heads of ``(relation, tail)`` queries."""
        return self.predict(queries.from_pairs(_records(pairs, ("relation", "tail")), "head"),
                            top_k, skip_unknown)

    def predict(self, rows: Sequence[queries.NamedRow], top_k: int = 10,
                skip_unknown: bool = False, hint: str = SKIP_HINT) -> pd.DataFrame:
        """Top-k answers of query rows (``queries.read_rows`` or ``from_pairs``): one table row
        per (query, rank) with ``target``, names, ``score``, ``known`` and, for ROAM, the route.
        Rows skipped for unknown names are in ``table.attrs["skipped"]``."""
        if top_k < 1:
            raise DataError(f"top_k must be >= 1, got {top_k}")
        resolved = queries.resolve(self.kg, rows, skip_unknown, hint)
        table = predict_table(self.model, self.kg, resolved, top_k, self.known,
                              self.config.evaluation.batch_size, self.device)
        table.attrs["skipped"] = list(resolved.skipped)
        return table

    def score_triples(self, triples: Names, skip_unknown: bool = False,
                      hint: str = SKIP_HINT) -> pd.DataFrame:
        """The model's score of each ``(head, relation, tail)``, with ``known`` and the route."""
        rows = triples if _are_rows(triples) else queries.from_triples(
            _records(triples, ("head", "relation", "tail")))
        resolved = queries.resolve(self.kg, rows, skip_unknown, hint)
        table = score_table(self.model, self.kg, resolved, self.known,
                            self.config.evaluation.batch_size, self.device)
        table.attrs["skipped"] = list(resolved.skipped)
        return table

    # -- embeddings ----------------------------------------------------------------------
    def embeddings(self) -> list[EmbeddingTable]:
        """Every embedding table of the model (api/embeddings.py says which)."""
        return embedding_tables(self.model)

    def export_embeddings(self, out: str | Path, format: str = "npy",
                          overwrite: bool = False) -> list[Path]:
        """Write the tables, names and config to ``out`` (api/export.py: DGL-KE's layout)."""
        names = {"entities": self.kg.entity_names,
                 "relations": [self.kg.relation_name(r) for r in range(2 * self.kg.num_relations)]}
        prefix = f"{self.config.graph}_{self.config.model.model}"
        return export_tables(self.embeddings(), Path(out), prefix, names,
                             self.config.to_dict(), format, overwrite)

    def __repr__(self) -> str:
        return (f"TrainedRun({str(self.folder)!r}, {self.config.model.model} "
                f"({self.config.model.variant}) on {self.kg.name!r})")


def load_run(folder: str | Path, data_dir: str | Path | None = None,
             source: str | Path | None = None, device: str = "cpu",
             log: Callable[[str], None] | None = None) -> TrainedRun:
    """Load a run folder (``config.json`` + ``best.pt``). ``data_dir`` / ``source`` replace the
    run's own when its cache or files have moved; ``device``: cpu, cuda, auto. A run stopped
    before its first validation has no ``best.pt``: its ``last.pt`` is loaded and ``log`` (a
    warning without one) gets a note saying so."""
    folder = Path(folder)
    config = read_run_config(folder, {"data_dir": None if data_dir is None else str(data_dir),
                                      "source": None if source is None else str(source)})
    checkpoint, note = selected_checkpoint(folder)
    if note is not None:
        (log or warnings.warn)(note)
    kg = prepare_graph(prepare_options(config), log=lambda _: None).kg
    target = resolve_device(device)
    model = load_trained_model(folder, kg, str(target), checkpoint)
    return TrainedRun(folder, config, kg, model, target)


def _are_rows(values: object) -> bool:
    return isinstance(values, list | tuple) and bool(values) and \
        isinstance(values[0], queries.NamedRow)


def _records(values: Names, columns: tuple[str, ...]) -> list[tuple[str, ...]]:
    """Tuples from a sequence of sequences or from a DataFrame's named columns."""
    if isinstance(values, pd.DataFrame):
        missing = [c for c in columns if c not in values.columns]
        if missing:
            raise DataError(f"the table has no column(s) {missing}; expected {list(columns)}")
        return list(values[list(columns)].astype(str).itertuples(index=False, name=None))
    return [tuple(v) for v in values]
