"""The paper's figures from finished runs (matplotlib, PNG, written atomically).

- ``curves``: validation MRR per evaluated epoch for every row (training curves);
- ``groups``: MRR and routing entropy against the number of groups K (Fig. 2);
- ``efficiency``: training seconds per epoch and peak memory per model (Fig. 4);
- ``routing``: relation x group selection heat-map, and one head entity routed to different
  groups under different relations (Fig. 5);
- ``modality_weights``: distribution of modality weights per group for ROAM, MoMoK and
  Sinkhorn-MoE (Fig. 6).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from matplotlib.figure import Figure  # the object API: no pyplot state, no display needed

from roam_graph.atomic import atomic_path
from roam_graph.experiments.runner import RunRecord
from roam_graph.graph.mmkg import MultimodalKG
from roam_graph.model.introspection import entity_modality_weights, routing_report
from roam_graph.training.runs import load_trained_model, read_run_history


def new_figure(columns: int, size: tuple[float, float], **options: Any) -> tuple[Figure, Any]:
    figure = Figure(figsize=size)
    return figure, figure.subplots(1, columns, **options)


def save_png(figure: Figure, path: Path) -> Path:
    with atomic_path(path) as temporary:
        figure.savefig(temporary, format="png", dpi=120, bbox_inches="tight")
    return path


def plot_curves(records: Sequence[RunRecord], path: Path, title: str) -> Path:
    """Validation MRR against epoch, one line per row (first seed of each row)."""
    figure, axis = new_figure(1, (6.4, 4.0))
    seen: set[str] = set()
    for record in records:
        if record.row in seen:
            continue
        seen.add(record.row)
        # history.csv has a row per epoch; only evaluated epochs have a validation MRR
        history = [r for r in read_run_history(record.out) if "valid_mrr" in r]
        axis.plot([r["epoch"] for r in history], [100 * r["valid_mrr"] for r in history],
                  marker="o", label=record.row)
    axis.set(xlabel="epoch", ylabel="validation MRR (%)", title=title)
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8)
    return save_png(figure, path)


def plot_groups(table: Sequence[dict[str, Any]], path: Path, graph: str) -> Path:
    """Fig. 2: MRR (left axis) and routing entropy (right axis) against K."""
    ks = [int(entry["label"].split("=")[1]) for entry in table]
    figure, axis = new_figure(1, (5.2, 3.6))
    axis.errorbar(ks, [100 * e["mrr_mean"] for e in table], [100 * e["mrr_std"] for e in table],
                  marker="o", color="tab:blue", label="MRR")
    axis.set(xlabel="number of expert groups K", ylabel="test MRR (%)",
             title=f"Effect of K on {graph} (Fig. 2)")
    twin = axis.twinx()
    twin.plot(ks, [e["routing_entropy_mean"] for e in table], marker="s", color="tab:red",
              label="routing entropy")
    twin.set_ylabel("routing entropy (nats)", color="tab:red")
    axis.set_xticks(ks)
    axis.grid(alpha=0.3)
    return save_png(figure, path)


def plot_efficiency(table: Sequence[dict[str, Any]], path: Path, graph: str) -> Path:
    """Fig. 4: seconds per training epoch and peak memory for each model, same graph and run."""
    labels = [e["label"] for e in table]
    figure, (left, right) = new_figure(2, (8.4, 3.4))
    left.bar(labels, [e["seconds_per_epoch_mean"] for e in table], color="tab:blue")
    left.set(ylabel="seconds per epoch", title="training time")
    right.bar(labels, [e["peak_memory_mb_mean"] for e in table], color="tab:orange")
    right.set(ylabel="peak memory (MB)", title="peak memory")
    for axis in (left, right):
        axis.tick_params(axis="x", rotation=20)
    figure.suptitle(f"Efficiency on {graph} (Fig. 4)")
    return save_png(figure, path)


def _queries(kg: MultimodalKG, limit: int = 4096) -> torch.Tensor:
    """Test queries in both directions (tail queries and reciprocal head queries)."""
    return kg.triples("test", reciprocal=True)[:, :2][:limit]


def plot_routing(run: Path, kg: MultimodalKG, path: Path, top_relations: int = 25) -> Path | None:
    """Fig. 5: (a) share of each relation's queries sent to each group, for the most frequent
    relations; (b) one head entity with many relations and the group each relation sends it to."""
    model = load_trained_model(run, kg)
    queries = _queries(kg)
    report = routing_report(model, queries[:, 0], queries[:, 1])
    if report is None:
        return None
    counts = report.relation_usage.sum(dim=1)
    order = torch.argsort(counts, descending=True)[:top_relations]
    order = order[counts[order] > 0]
    share = report.relation_usage[order] / counts[order, None]
    names = [relation_label(kg, int(r)) for r in order]
    figure, (left, right) = new_figure(2, (12, max(4.0, 0.28 * len(order))),
                                       gridspec_kw={"width_ratios": [3, 2]})
    image = left.imshow(share.cpu().numpy(), aspect="auto", cmap="viridis", vmin=0, vmax=1)
    left.set_yticks(range(len(names)), names, fontsize=7)
    left.set_xticks(range(share.shape[1]))
    left.set(xlabel="expert group", title="(a) relation x group selection")
    figure.colorbar(image, ax=left, fraction=0.04, label="share of the relation's queries")
    head, relations, chosen = example_head(queries, report.selected[:, 0].cpu())
    right.scatter(chosen.numpy(), range(len(relations)), c=chosen.numpy(), cmap="tab10",
                  vmin=0, vmax=9, s=60)
    right.set_yticks(range(len(relations)),
                     [relation_label(kg, int(r)) for r in relations], fontsize=7)
    right.set_xticks(range(share.shape[1]))
    right.set_xlim(-0.5, share.shape[1] - 0.5)
    right.set(xlabel="selected group", title=f"(b) head entity {entity_label(kg, head)}")
    right.grid(alpha=0.3)
    figure.subplots_adjust(wspace=0.6)
    figure.suptitle("Relation-aware routing (Fig. 5)")
    return save_png(figure, path)


def example_head(queries: torch.Tensor, selected: torch.Tensor, limit: int = 14
                 ) -> tuple[int, torch.Tensor, torch.Tensor]:
    """The head entity whose queries were sent to the most distinct groups (then: with the most
    relations), its relations and the group chosen under each (Fig. 5, right)."""
    pairs, first = unique_rows(queries[:, :2])
    groups = selected[first]
    best: tuple[int, int, int] = (-1, -1, -1)
    for head in torch.unique(pairs[:, 0]).tolist():
        mine = pairs[:, 0] == head
        key = (len(torch.unique(groups[mine])), int(mine.sum()), -head)
        best = max(best, key)
    head = -best[2]
    mine = pairs[:, 0] == head
    return head, pairs[mine, 1][:limit], groups[mine][:limit]


def unique_rows(rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Distinct rows and the index of each one's first occurrence."""
    unique, inverse = torch.unique(rows, dim=0, return_inverse=True)
    first = torch.full((len(unique),), len(rows), dtype=torch.long)
    first.scatter_reduce_(0, inverse, torch.arange(len(rows)), reduce="amin")
    return unique, first


def relation_label(kg: MultimodalKG, relation: int, width: int = 38) -> str:
    name = kg.relation_names[relation % kg.num_relations]
    name = name if relation < kg.num_relations else f"{name}^-1"
    return name if len(name) <= width else "…" + name[-width + 1:]


def entity_label(kg: MultimodalKG, entity: int, width: int = 30) -> str:
    name = kg.entity_names[entity]
    return name if len(name) <= width else name[:width - 1] + "…"


def plot_modality_weights(runs: dict[str, Path], kg: MultimodalKG, path: Path) -> Path | None:
    """Fig. 6: per model, the distribution over queries of each modality's weight, per group
    (ROAM, Sinkhorn-MoE: the chosen group's relation-aware attention, Eq. 4; MoMoK: its joint
    attention over modalities, which has no groups)."""
    panels = []
    queries = _queries(kg)
    for label, run in runs.items():
        model = load_trained_model(run, kg)
        report = routing_report(model, queries[:, 0], queries[:, 1])
        if report is not None:
            groups = report.selected[:, 0].cpu()
            weights = report.modality_weights.cpu()
            names = report.modality_names
        else:
            found = entity_modality_weights(model, queries[:, 0])
            if found is None:
                continue
            weights, names = found
            groups = torch.zeros(len(weights), dtype=torch.long)
            label = f"{label} (joint attention, no groups)"
        panels.append((label, groups, weights, names))
    if not panels:
        return None
    figure, axes = new_figure(len(panels), (4.6 * len(panels), 3.6), squeeze=False)
    for axis, (label, groups, weights, names) in zip(axes[0], panels, strict=True):
        used = [int(g) for g in torch.unique(groups)]
        width = 0.8 / len(names)
        for m, name in enumerate(names):
            data = [weights[groups == g, m].numpy() for g in used]
            positions = [g + (m - (len(names) - 1) / 2) * width for g in range(len(used))]
            parts = axis.boxplot(data, positions=positions, widths=width * 0.9,
                                 patch_artist=True, showfliers=False)
            for box in parts["boxes"]:
                box.set_facecolor(f"C{m}")
            axis.plot([], [], color=f"C{m}", linewidth=6, label=name)
        axis.set_xticks(range(len(used)), [f"g{g}" for g in used])
        axis.set(ylim=(0, 1), xlabel="group", ylabel="modality weight", title=label)
        axis.legend(fontsize=7)
    figure.suptitle("Modality weights per group (Fig. 6)", y=1.02)
    return save_png(figure, path)
