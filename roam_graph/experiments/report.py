"""Everything a suite writes after its runs: ``table.csv``, ``table.md`` and its figures."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from roam_graph.atomic import atomic_path
from roam_graph.experiments import figures
from roam_graph.experiments.runner import RunRecord
from roam_graph.experiments.suites import Suite
from roam_graph.experiments.tables import aggregate, table_markdown, write_table_csv
from roam_graph.graph.mmkg import MultimodalKG
from roam_graph.training.config import ExperimentConfig

#: Fig. 6 compares these rows of the main suite.
MODALITY_WEIGHT_MODELS = ("ROAM", "MoMoK", "Sinkhorn-MoE")


def budget_text(config: ExperimentConfig, runs: int, kg: MultimodalKG) -> str:
    model, training = config.model, config.training
    features = ", ".join(["structure", *kg.modalities]) or "structure"
    return (f"{training.epochs} epochs (validation every {training.eval_every}), dim "
            f"{model.dim}, batch {training.batch_size}, lr {training.lr}, {training.loss} loss, "
            f"{runs} run(s) from seed {config.seed}; features: {features}")


def write_suite_outputs(suite: Suite, base: ExperimentConfig, kg: MultimodalKG,
                        records: Sequence[RunRecord], skipped: dict[str, str], out: Path,
                        runs: int) -> list[Path]:
    table = aggregate(suite, records)
    write_table_csv(out / "table.csv", suite, kg.name, table)
    markdown = table_markdown(suite, kg.name, table, skipped, budget_text(base, runs, kg))
    with atomic_path(out / "table.md") as temporary:
        temporary.write_text(markdown, encoding="utf-8")
    written = [out / "table.md", out / "table.csv"]
    # the routing and modality-weight figures load each row's selected model; result folders
    # committed without checkpoints (metrics, history, config) still give the table and curves
    first_run = {}
    for record in records:
        if (record.out / "best.pt").is_file():
            first_run.setdefault(record.row, record.out)
    for name in suite.figures:
        path = out / f"{name}.png"
        if name == "curves":
            result = figures.plot_curves(records, path, f"{suite.name} on {kg.name}")
        elif name == "groups":
            result = figures.plot_groups(table, path, kg.name)
        elif name == "efficiency":
            result = figures.plot_efficiency(table, path, kg.name)
        elif name == "routing":
            result = figures.plot_routing(first_run["ROAM"], kg, path) \
                if "ROAM" in first_run else None
        elif name == "modality_weights":
            result = figures.plot_modality_weights(
                {m: first_run[m] for m in MODALITY_WEIGHT_MODELS if m in first_run}, kg, path)
        else:
            raise ValueError(f"suite {suite.name}: unknown figure {name!r}")
        if result is not None:
            written.append(result)
    return written
