"""Top-k answers and triple scores of a trained model, as pandas tables with names.

Queries are scored as evaluation scores them (model in eval mode, all entities encoded once, each
query routed on its own), so a table's scores do not depend on how queries are batched. For
ROAM the table also says where each query was routed (``group``, or ``group_<modality>`` for
the per-modality layouts) and the head's modality weights in the chosen group (``weight_<m>``).
``known`` names the split that holds the triple (``train``, ``valid``, ``test``) or is empty.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from roam_graph.api.queries import NamedRow, Resolved
from roam_graph.data.mmkg_data import SPLITS
from roam_graph.graph.answers import AnswerIndex
from roam_graph.graph.mmkg import MultimodalKG
from roam_graph.model.contract import KGModel
from roam_graph.model.outputs import ModelOutput


@dataclass(frozen=True)
class KnownTriples:
    """Per split, an index of its triples in tail-query form (reciprocals included)."""
    indexes: tuple[tuple[str, AnswerIndex], ...]

    @classmethod
    def of(cls, kg: MultimodalKG) -> KnownTriples:
        return cls(tuple((split, AnswerIndex.build(kg.triples(split, reciprocal=True),
                                                   kg.num_entities, 2 * kg.num_relations))
                         for split in SPLITS))

    def label(self, triples: torch.Tensor) -> np.ndarray:
        """The first split holding each ``(h, r', t)`` row, or ``""``."""
        labels = np.full(len(triples), "", dtype=object)
        for split, index in reversed(self.indexes):   # earlier splits win
            labels[index.contains(triples).numpy()] = split
        return labels


def predict_table(model: KGModel, kg: MultimodalKG, resolved: Resolved, top_k: int,
                  known: KnownTriples, batch_size: int = 256,
                  device: torch.device | str = "cpu") -> pd.DataFrame:
    """One row per (query, rank): the top ``top_k`` answers of every resolved query."""
    k = min(top_k, kg.num_entities)
    ids = resolved.ids
    scores, answers, routing = [], [], []
    with torch.inference_mode():
        encoding = model.encode_entities()
        for start in range(0, len(ids), batch_size):
            batch = ids[start:start + batch_size].to(device)
            output = model(batch[:, 0], batch[:, 1], candidate_encoding=encoding)
            top = torch.topk(output.scores.float(), k, dim=1)
            scores.append(top.values.cpu())
            answers.append(top.indices.cpu())
            routing.append(_routing(output))
    scores_all, answers_all = torch.cat(scores), torch.cat(answers)
    triples = torch.stack([ids[:, 0, None].expand(-1, k), ids[:, 1, None].expand(-1, k),
                           answers_all], dim=-1).reshape(-1, 3)
    table = _row_columns(resolved.rows, kg, repeat=k, answers=answers_all)
    table["rank"] = np.tile(np.arange(1, k + 1), len(ids))
    table["score"] = scores_all.reshape(-1).numpy()
    table["known"] = known.label(triples)
    for name, values in _routing_columns(routing, model).items():
        table[name] = np.repeat(values, k, axis=0)
    return pd.DataFrame(table)


def score_table(model: KGModel, kg: MultimodalKG, resolved: Resolved, known: KnownTriples,
                batch_size: int = 256, device: torch.device | str = "cpu") -> pd.DataFrame:
    """One row per resolved triple with the model's score of it."""
    ids = resolved.ids
    scores, routing = [], []
    with torch.inference_mode():
        for start in range(0, len(ids), batch_size):
            batch = ids[start:start + batch_size].to(device)
            output = model(batch[:, 0], batch[:, 1], candidates=batch[:, 2:])
            scores.append(output.scores[:, 0].float().cpu())
            routing.append(_routing(output))
    table = _row_columns(resolved.rows, kg, repeat=1, answers=None)
    table["score"] = torch.cat(scores).numpy()
    table["known"] = known.label(ids)
    table.update(_routing_columns(routing, model))
    return pd.DataFrame(table)


def _row_columns(rows: Sequence[NamedRow], kg: MultimodalKG, repeat: int,
                 answers: torch.Tensor | None) -> dict[str, np.ndarray]:
    """``query`` (and ``line`` for file input), ``target`` for predictions, then the names of
    head, relation and tail, the predicted end filled from ``answers [n, repeat]``."""
    columns: dict[str, np.ndarray] = {"query": np.repeat([r.index for r in rows], repeat)}
    if any(r.line is not None for r in rows):
        columns["line"] = np.repeat([r.line or 0 for r in rows], repeat)
    names = np.asarray(kg.entity_names, dtype=object)
    predicted = None if answers is None else names[answers.numpy()]
    heads = np.repeat(np.asarray([r.head for r in rows], dtype=object), repeat)
    tails = np.repeat(np.asarray([r.tail for r in rows], dtype=object), repeat)
    if predicted is not None:
        targets = np.repeat([r.target for r in rows], repeat)
        flat = predicted.reshape(-1)
        heads = np.where(targets == "head", flat, heads)
        tails = np.where(targets == "tail", flat, tails)
        columns["target"] = targets
    columns["head"] = heads
    columns["relation"] = np.repeat(np.asarray([r.relation for r in rows], dtype=object), repeat)
    columns["tail"] = tails
    return columns


def _routing(output: ModelOutput) -> tuple[torch.Tensor, torch.Tensor] | None:
    selected, weights = output.selected, output.modality_weights
    if selected is None or weights is None:
        return None
    return selected.cpu(), weights.float().cpu()


def _routing_columns(parts: list[tuple[torch.Tensor, torch.Tensor] | None], model: KGModel
                     ) -> dict[str, np.ndarray]:
    """``group`` (one router) or ``group_<modality>`` (one per modality), and ``weight_<m>``;
    nothing for models without routing."""
    if not parts or parts[0] is None:
        return {}
    selected = torch.cat([p[0] for p in parts]).numpy()
    weights = torch.cat([p[1] for p in parts]).numpy()
    names = tuple(model.modality_names)
    columns = ({"group": selected[:, 0]} if selected.shape[1] == 1 else
               {f"group_{m}": selected[:, i] for i, m in enumerate(names)})
    columns.update({f"weight_{m}": weights[:, i] for i, m in enumerate(names)})
    return columns
