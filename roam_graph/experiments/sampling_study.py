"""The sampling study: how the training sampler trades accuracy (MRR, Hits@10) for training time.

Configurations are data (``CONFIGURATIONS``): a group, a name, overrides of the study's base
configuration in ``load_config`` keys, and optionally a training subgraph. Every configuration is
one ``run_training`` run in ``OUT/runs/<name>``; configurations that resolve to the same training
(e.g. ``uniform`` at the base ``k`` and ``k16``) share the run of the first one. A run whose
``metrics.json`` exists is not repeated, one with a ``last.pt`` is resumed. Results:
``sampling.csv`` (one row per configuration), ``sampling.md`` and ``sampling.png``
(docs/sampling.md, "Sampling experiments").
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from matplotlib.figure import Figure  # the object API: no pyplot state, no display needed

from roam_graph.atomic import atomic_path, write_table
from roam_graph.data.errors import DataError
from roam_graph.graph.mmkg import MultimodalKG
from roam_graph.model.config import WIDTHS
from roam_graph.sampling import neighbourhood_edges, random_entities, sample_edge_fraction
from roam_graph.training.config import ExperimentConfig, default_config_path, load_config
from roam_graph.training.runs import (
    read_metrics,
    read_run_history,
    resolve_run_config,
    train_here,
    train_or_reuse,
)

Log = Callable[[str], None]


@dataclass(frozen=True)
class Configuration:
    """One point of the study. ``subgraph`` is ``{"edge_fraction": f}`` or
    ``{"seed_fraction": s, "fanout": f, "hops": h, "induced": bool}`` (``neighbourhood_edges``
    from ``round(s * N)`` random seed entities); None trains on all of train."""
    group: str
    name: str
    overrides: dict[str, Any] = field(default_factory=dict)
    subgraph: dict[str, Any] | None = None


def _strategy(name: str) -> Configuration:
    return Configuration("negative-strategy", name, {"training.negative_strategy": name})


def _k(k: int) -> Configuration:
    return Configuration("negatives-per-positive", f"k{k}", {"training.negatives": k})


#: Neighbourhood sampling: 5% of the entities as seeds, up to 10 triples per reached entity and
#: hop. Measured share of train kept (seed 0): 2 hops 37% (synthetic) / 26% (DB15K); 1 hop
#: induced 22% / 19%, i.e. near the 0.25 edge fraction, which makes them comparable.
NEIGHBOURHOOD = {"seed_fraction": 0.05, "fanout": 10, "hops": 2, "induced": False}

CONFIGURATIONS: tuple[Configuration, ...] = (
    *(_strategy(name) for name in ("uniform", "bernoulli", "degree", "type-constrained",
                                   "shared", "filtered", "bernoulli+filtered")),
    *(_k(k) for k in (1, 4, 16, 64)),
    Configuration("regime", "1-n", {"training.regime": "1-n"}),
    Configuration("regime", "negative-sampling", {"training.regime": "negative-sampling"}),
    *(Configuration("subgraph", f"edges-{f}", {}, {"edge_fraction": f}) for f in (0.25, 0.5, 1.0)),
    Configuration("subgraph", "neighbourhood", {}, NEIGHBOURHOOD),
    Configuration("subgraph", "neighbourhood-induced", {},
                  {**NEIGHBOURHOOD, "hops": 1, "induced": True}),
)
GROUPS: tuple[str, ...] = tuple(dict.fromkeys(c.group for c in CONFIGURATIONS))

COLUMNS = ("group", "name", "run", "regime", "negative_strategy", "negatives", "subgraph",
           "train_triples", "train_entities", "epochs", "best_epoch", "train_seconds",
           "seconds_per_epoch", "valid_mrr", "test_mrr", "test_hits@10")


def select(groups: Sequence[str] | None = None,
           configurations: Sequence[Configuration] = CONFIGURATIONS) -> list[Configuration]:
    """The configurations of ``groups`` (all when None), in the study's order."""
    known = list(dict.fromkeys(c.group for c in configurations))
    unknown = [g for g in groups or () if g not in known]
    if unknown:
        raise DataError(f"--groups: unknown group {unknown[0]!r}; choose from {', '.join(known)}")
    return [c for c in configurations if groups is None or c.group in groups]


def study_config(graph: str, *, model: str = "tucker", dim: int = 64, epochs: int = 8,
                 lr: float = 0.01, batch_size: int = 256, negatives: int = 16, seed: int = 0,
                 source: str | None = None, data_dir: str | None = None,
                 text_encoder: str | None = None, graph_format: str | None = None,
                 origins: dict[str, str] | None = None) -> ExperimentConfig:
    """The base every configuration overrides: ``configs/<graph>.yaml`` with the study's model,
    widths and budget; negative sampling (uniform, ``negatives`` per positive); softmax loss for
    both regimes (BCE barely moves in a few epochs, docs/training.md); validation after every
    epoch (the history then holds every epoch's time) and no early stopping within the budget.
    ``origins`` names the flag behind a key in errors (``load_config``)."""
    if text_encoder is None and model == "tucker":
        text_encoder = "none"  # TuckER reads no features: skip encoding the text
    return load_config(default_config_path(graph), {
        "source": source, "data_dir": data_dir, "format": graph_format,
        "text_encoder": text_encoder, "seed": seed,
        "model.model": model, "model.variant": "full",
        **{f"model.{key}": dim for key in WIDTHS},
        "training.epochs": epochs, "training.lr": lr, "training.batch_size": batch_size,
        "training.loss": "softmax", "training.regime": "negative-sampling",
        "training.negative_strategy": "uniform", "training.negatives": negatives,
        "training.eval_every": 1, "training.patience": epochs}, graph=graph, origins=origins)


def configured(base: ExperimentConfig, configuration: Configuration) -> ExperimentConfig:
    """``base`` with the configuration's overrides, validated like a config file."""
    return resolve_run_config(base, configuration.overrides)


def _subgraph(configuration: Configuration) -> dict[str, Any] | None:
    """The subgraph spec, None when it keeps every edge (same training as no subgraph)."""
    spec = configuration.subgraph
    return None if not spec or spec == {"edge_fraction": 1.0} else dict(spec)


def training_triples(kg: MultimodalKG, configuration: Configuration,
                     seed: int) -> torch.Tensor | None:
    """The configuration's training triples (seeded), or None for the whole train split."""
    spec = _subgraph(configuration)
    if spec is None:
        return None
    train = kg.triples("train")
    if "edge_fraction" in spec:
        return sample_edge_fraction(train, spec["edge_fraction"], seed)
    count = max(1, round(spec["seed_fraction"] * kg.num_entities))
    seeds = random_entities(kg.num_entities, count, seed)
    return neighbourhood_edges(train, kg.num_entities, seeds, spec["fanout"], spec["hops"],
                               seed=seed, induced=spec.get("induced", False))


def describe_subgraph(configuration: Configuration) -> str:
    spec = _subgraph(configuration)
    if spec is None:
        return "all"
    if "edge_fraction" in spec:
        return f"{spec['edge_fraction']:.0%} of edges"
    return (f"{spec['seed_fraction']:.0%} seeds, fanout {spec['fanout']}, {spec['hops']} hop(s)"
            + (", induced" if spec.get("induced") else ""))


def run_names(base: ExperimentConfig, configurations: Sequence[Configuration],
              reference: Sequence[Configuration] = CONFIGURATIONS) -> dict[str, str]:
    """Configuration name -> run folder name: the first configuration of ``reference`` (then of
    ``configurations``) with the same resolved training, so equal runs are trained once and the
    folder does not depend on which groups were selected."""
    def key(configuration: Configuration) -> str:
        return json.dumps([configured(base, configuration).to_dict(), _subgraph(configuration)],
                          sort_keys=True)
    first: dict[str, str] = {}
    for configuration in (*reference, *configurations):
        first.setdefault(key(configuration), configuration.name)
    return {c.name: first[key(c)] for c in configurations}


def result_row(configuration: Configuration, config: ExperimentConfig, run: str, out: Path,
               triples: torch.Tensor) -> dict[str, Any]:
    """One CSV row, read back from the run's files (the same for new and reused runs)."""
    metrics = read_metrics(out)
    history = read_run_history(out)
    seconds = sum(row["seconds"] for row in history)  # training only: validation is separate
    training = config.training
    sampled = training.regime == "negative-sampling"
    return {
        "group": configuration.group, "name": configuration.name, "run": run,
        "regime": training.regime,
        "negative_strategy": training.negative_strategy if sampled else "",
        "negatives": training.negatives if sampled else "",
        "subgraph": describe_subgraph(configuration),
        "train_triples": len(triples),
        "train_entities": int(torch.cat([triples[:, 0], triples[:, 2]]).unique().numel()),
        "epochs": int(history[-1]["epoch"]) if history else 0,
        "best_epoch": metrics.get("selected_epoch"),
        "train_seconds": round(seconds, 4),
        "seconds_per_epoch": round(seconds / max(len(history), 1), 4),
        "valid_mrr": metrics["validation"].get("mrr"),
        "test_mrr": metrics["mrr"], "test_hits@10": metrics["hits@10"],
    }


def run_study(base: ExperimentConfig, kg: MultimodalKG, out: Path,
              configurations: Sequence[Configuration] = CONFIGURATIONS, *, log: Log = print,
              train_log: Log | None = None, progress: bool = False) -> list[dict[str, Any]]:
    """Run (or reuse) every configuration; write ``sampling.csv`` after each one, then
    ``sampling.md`` and ``sampling.png``. Returns the rows."""
    names = [c.name for c in configurations]
    if len(set(names)) != len(names):
        raise ValueError(f"configuration names must be unique: {names}")
    folders = run_names(base, configurations)
    rows: list[dict[str, Any]] = []
    for index, configuration in enumerate(configurations, 1):
        config = configured(base, configuration)
        run = folders[configuration.name]
        triples = training_triples(kg, configuration, config.seed)
        share = "" if run == configuration.name else f" (same run as {run})"
        log(f"[{index}/{len(configurations)}] {configuration.group}: {configuration.name}"
            f"{share}")
        train_or_reuse(config, kg, out / "runs" / run, log=log, label="  ",
                       train=partial(train_here, train_triples=triples, log=train_log,
                                     progress=progress))
        used = kg.triples("train") if triples is None else triples
        rows.append(result_row(configuration, config, run, out / "runs" / run, used))
        write_csv(out / "sampling.csv", rows)
    title = f"{kg.name}, {base.model.model} d={base.model.dim}, {base.training.epochs} epochs"
    write_markdown(out / "sampling.md", rows, title)
    plot_study(rows, out / "sampling.png", title)
    return rows


def write_csv(path: Path, rows: Sequence[Mapping[str, Any]]) -> None:
    write_table(path, pd.DataFrame(list(rows), columns=list(COLUMNS)))


def markdown_table(rows: Sequence[Mapping[str, Any]]) -> str:
    lines = ["| group | configuration | regime | k | subgraph | train triples | epochs | "
             "train s | s/epoch | valid MRR | test MRR | test Hits@10 |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        strategy = f" ({r['negative_strategy']})" if r["negative_strategy"] else ""
        lines.append(f"| {r['group']} | {r['name']} | {r['regime']}{strategy} | {r['negatives']} "
                     f"| {r['subgraph']} | {r['train_triples']} | {r['epochs']} | "
                     f"{r['train_seconds']:.1f} | {r['seconds_per_epoch']:.2f} | "
                     f"{r['valid_mrr']:.4f} | {r['test_mrr']:.4f} | {r['test_hits@10']:.4f} |")
    return "\n".join(lines)


def write_markdown(path: Path, rows: Sequence[Mapping[str, Any]], title: str) -> None:
    text = (f"Sampling study: {title} (filtered, realistic ties; train s = sum of epoch "
            f"times).\n\n{markdown_table(rows)}\n")
    with atomic_path(path) as temporary:
        temporary.write_text(text, encoding="utf-8")


def plot_study(rows: Sequence[Mapping[str, Any]], path: Path, title: str) -> Path:
    """Test MRR and Hits@10 against training seconds, one colour per group. A point is labelled
    by the first configuration of its run (``k16`` sits under ``uniform`` at the base k)."""
    figure = Figure(figsize=(12, 4.8))
    axes = figure.subplots(1, 2)
    groups = list(dict.fromkeys(r["group"] for r in rows))
    for axis, metric, label in zip(axes, ("test_mrr", "test_hits@10"), ("MRR", "Hits@10"),
                                   strict=True):
        for index, group in enumerate(groups):
            points = [r for r in rows if r["group"] == group]
            axis.scatter([r["train_seconds"] for r in points], [r[metric] for r in points],
                         color=f"C{index}", marker="osD^v<>"[index % 7], label=group, alpha=0.8)
            for r in points:
                if r["run"] != r["name"]:
                    continue  # the same run as an earlier configuration: labelled there
                axis.annotate(r["name"], (r["train_seconds"], r[metric]), fontsize=7,
                              xytext=(3, 3), textcoords="offset points", color=f"C{index}")
        axis.set(xlabel="training time (s, sum of epoch times)", ylabel=f"test {label}",
                 title=f"{label} vs training time")
        axis.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    figure.suptitle(title)
    with atomic_path(path) as temporary:
        figure.savefig(temporary, format="png", dpi=110, bbox_inches="tight")
    return path
