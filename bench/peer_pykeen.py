"""Peer comparison: our ``tucker`` against PyKEEN's TuckER (LCWA) on the same graph, in one run.

    pip install -e '.[bench]'      # PyKEEN is a benchmark dependency only
    OMP_NUM_THREADS=1 python bench/peer_pykeen.py --graph fb15k237img \
        --source ../shared/datasets/fb15k237img --dim 32 --batch-size 256 --epochs 2 --threads 1

Both models see exactly the same triples and ids: PyKEEN's ``TriplesFactory`` is built from our
prepared graph's id tensors with ``create_inverse_triples=True``, so its LCWA trains on the same
149,689 unique ``(head, relation')`` queries (reciprocals included) as our 1-N sampler. Same
embedding dimension (entity = relation = ``--dim``), batch size, epochs, Adam and learning rate,
loss (``--loss bce``, BCE on logits as TuckER, or ``softmax`` cross-entropy) with label smoothing,
TuckER's three dropouts and two batch norms, Xavier-normal embeddings and a U(-1, 1) core, seed,
and torch threads. Epochs alternate between the two models
(ours first on odd epochs) so that a change in machine load hits both alike.

Seconds per epoch = wall clock of one pass over the training batches (batch construction with its
dense targets, forward, loss, backward, Adam step); evaluation and set-up are excluded for both.
Validation MRR (filtered, realistic ties) of both models comes from OUR evaluator; PyKEEN's model is
wrapped into our score function. PyKEEN's own ``RankBasedEvaluator`` (filtered by train + valid +
test) is reported beside it as a cross-check. Differences that could not be removed are listed in
``DIFFERENCES`` and written with the results. Goal to aim at: ours >= 1.5x faster per epoch at
equal validation MRR.
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from roam_graph.atomic import atomic_path, write_json
from roam_graph.cli._options import add_config_flags, add_graph_flag
from roam_graph.data.errors import DataError
from roam_graph.evaluation import build_filter, evaluate, relation_categories
from roam_graph.graph.mmkg import MultimodalKG
from roam_graph.graph.prepare import PrepareOptions, prepare_graph
from roam_graph.model import build_model, resolve_config
from roam_graph.model.config import same_widths
from roam_graph.training.config import (
    LOSSES,
    EvaluationConfig,
    ExperimentConfig,
    TrainingConfig,
)
from roam_graph.training.regimes import regime_for
from roam_graph.training.trainer import (
    evaluate_split,
    make_sampler,
    seed_everything,
    train_epoch,
)

#: What still differs between the two set-ups (everything else is matched; module docstring).
DIFFERENCES = (
    "Relation dropout (TuckER's hidden_dropout1 on W_r): ours draws one mask per distinct relation "
    "of the batch (the core is contracted once per relation), PyKEEN one mask per query.",
    "Core contraction: ours computes W_r once per distinct relation of a batch (U d^3), PyKEEN "
    "once per query (B d^3); same function, different cost.",
    "Tail scoring: ours is one [B, d] x [d, N] matmul; PyKEEN's TuckERInteraction scores by "
    "broadcasting (h x r) [B, 1, d] against all tails [1, N, d] and summing, which materialises a "
    "[B, N, d] tensor in forward and in backward.",
    "Label smoothing: ours (1 - eps) * y + eps / N (on = 1 - eps + eps/N, off = eps/N); PyKEEN "
    "on = 1 - eps, off = eps / (N - 1); each value differs by at most eps / N. With --loss "
    "softmax ours normalises the smoothed targets per query, PyKEEN smooths the normalised ones "
    "(identical for queries with one answer).",
    "Batch order: our sampler derives each epoch's permutation from (seed, epoch); PyKEEN's "
    "DataLoader shuffles with the global torch generator. Same batch size, last partial batch "
    "kept by both (PyKEEN's default drop_last=True for batch-norm models is switched off).",
    "Parameter initialisation draws different random numbers (same distributions, same seed "
    "value, different order of draws).",
)


# -- data conversion (pure: no PyKEEN needed) ---------------------------------------------------
def label_maps(entity_names: Sequence[str], relation_names: Sequence[str]
               ) -> tuple[dict[str, int], dict[str, int]]:
    """``entity_to_id`` and ``relation_to_id`` that reproduce our ids exactly (name -> position)."""
    maps = []
    for kind, names in (("entity", entity_names), ("relation", relation_names)):
        mapping = {name: index for index, name in enumerate(names)}
        if len(mapping) != len(names):
            seen: set[str] = set()
            duplicate = next(n for n in names if n in seen or seen.add(n))
            raise DataError(f"{kind} name {duplicate!r} occurs twice: PyKEEN's label maps need "
                            "unique names")
        maps.append(mapping)
    return maps[0], maps[1]


def pykeen_relation_ids(relations: torch.Tensor, num_relations: int) -> torch.Tensor:
    """Our relation ids ``[0, 2R)`` (``r + R`` = reciprocal of ``r``) -> PyKEEN's internal ids
    with inverse triples (PyKEEN's ``DefaultRelationInverter``: ``r`` -> ``2r``, its inverse
    -> ``2r + 1``)."""
    if len(relations) and (int(relations.min()) < 0 or int(relations.max()) >= 2 * num_relations):
        raise ValueError(f"relation ids must lie in [0, {2 * num_relations})")
    reciprocal = (relations >= num_relations).to(torch.int64)
    return 2 * (relations.to(torch.int64) - reciprocal * num_relations) + reciprocal


def to_triples_factory(kg: MultimodalKG, split: str = "train") -> Any:
    """PyKEEN ``TriplesFactory`` over ``kg``'s ``split`` with our entity/relation ids and inverse
    triples (so PyKEEN's LCWA uses reciprocal relations as our 1-N training does)."""
    from pykeen.triples import TriplesFactory
    entity_to_id, relation_to_id = label_maps(kg.entity_names, kg.relation_names)
    return TriplesFactory(mapped_triples=kg.triples(split).to(torch.int64),
                          entity_to_id=entity_to_id, relation_to_id=relation_to_id,
                          create_inverse_triples=True)


def pykeen_score_fn(model: Any, num_relations: int) -> Callable[[torch.Tensor, torch.Tensor],
                                                                 torch.Tensor]:
    """Our evaluator's ``(heads, relations in [0, 2R)) -> [B, N]`` around PyKEEN's ``score_t``."""
    def score(heads: torch.Tensor, relations: torch.Tensor) -> torch.Tensor:
        pairs = torch.stack([heads, pykeen_relation_ids(relations, num_relations)], dim=1)
        return model.score_t(pairs.to(model.device))
    return score


# -- the two contestants ----------------------------------------------------------------------
class Ours:
    """Our ``tucker`` trained with the trainer's own epoch function (roam_graph.training)."""

    name = "roam-graph tucker"

    def __init__(self, kg: MultimodalKG, config: ExperimentConfig) -> None:
        self.kg, self.config, self.device = kg, config, torch.device("cpu")
        seed_everything(config.seed, self.device)
        self.model = build_model(config.model, kg.num_entities, 2 * kg.num_relations,
                                 kg.modalities, seed=config.seed)
        self.optimiser = torch.optim.Adam(self.model.parameters(), lr=config.training.lr)
        self.regime = regime_for(config)
        self.sampler = make_sampler(self.regime, kg)

    def epoch(self, epoch: int) -> dict[str, float]:
        self.sampler.set_epoch(epoch)
        stats = train_epoch(self.model, self.sampler, self.regime, self.optimiser, self.config,
                            self.device, None, progress=False)
        return {"seconds": stats["seconds"], "loss": stats["loss_triple"]}

    def validate(self, known: Any, categories: torch.Tensor) -> dict[str, float]:
        result = evaluate_split(self.model, self.kg, "valid", known, categories, self.config,
                                self.device)
        return dict(result.headline)


class Peer:
    """PyKEEN's TuckER in its LCWA training loop, each epoch one ``train`` call."""

    name = "PyKEEN TuckER (LCWA)"

    def __init__(self, kg: MultimodalKG, config: ExperimentConfig) -> None:
        from pykeen.losses import BCEWithLogitsLoss, CrossEntropyLoss
        from pykeen.models import TuckER
        from pykeen.training import LCWATrainingLoop
        self.kg, self.config = kg, config
        self.factory = to_triples_factory(kg)
        model, training = config.model, config.training
        self.model = TuckER(
            triples_factory=self.factory, embedding_dim=model.dim, relation_dim=model.relation_dim,
            dropout_0=model.input_dropout, dropout_1=model.hidden_dropout1,
            dropout_2=model.hidden_dropout2, apply_batch_normalization=True,
            # torch's Xavier normal, as our model and the TuckER code use (PyKEEN's default
            # xavier_normal_ has std sqrt(2 / d), ignoring the number of rows)
            entity_initializer=torch.nn.init.xavier_normal_,
            relation_initializer=torch.nn.init.xavier_normal_,
            loss=BCEWithLogitsLoss() if training.loss == "bce" else CrossEntropyLoss(),
            random_seed=config.seed)
        self.loop = LCWATrainingLoop(
            model=self.model, triples_factory=self.factory,
            optimizer=torch.optim.Adam(self.model.get_grad_params(), lr=training.lr),
            automatic_memory_optimization=False)
        self.seconds: list[float] = []
        timed = self.loop._train_epoch

        def timed_epoch(*args: Any, **kwargs: Any) -> float:  # set-up of train() excluded
            started = time.perf_counter()
            loss = timed(*args, **kwargs)
            self.seconds.append(time.perf_counter() - started)
            return loss
        self.loop._train_epoch = timed_epoch

    def epoch(self, epoch: int) -> dict[str, float]:
        training = self.config.training
        losses = self.loop.train(
            triples_factory=self.factory, num_epochs=epoch, batch_size=training.batch_size,
            label_smoothing=training.label_smoothing, continue_training=epoch > 1,
            use_tqdm=False, use_tqdm_batch=False, drop_last=False, pin_memory=False,
            num_workers=0)
        return {"seconds": self.seconds[-1], "loss": float(losses[-1])}

    def validate(self, known: Any, categories: torch.Tensor) -> dict[str, float]:
        self.model.eval()
        with torch.inference_mode():
            result = evaluate(pykeen_score_fn(self.model, self.kg.num_relations),
                              self.kg.triples("valid"), known, self.kg.num_relations,
                              batch_size=self.config.evaluation.batch_size, categories=categories)
        return dict(result.headline)

    def own_evaluator(self) -> dict[str, float]:
        """PyKEEN's RankBasedEvaluator on validation, filtered by train + valid + test."""
        from pykeen.evaluation import RankBasedEvaluator
        result = RankBasedEvaluator(filtered=True).evaluate(
            self.model, self.kg.triples("valid").to(torch.int64),
            additional_filter_triples=[self.factory.mapped_triples,
                                       self.kg.triples("test").to(torch.int64)],
            batch_size=self.config.evaluation.batch_size, use_tqdm=False)
        keys = {"mrr": "inverse_harmonic_mean_rank", "hits@1": "hits_at_1",
                "hits@10": "hits_at_10", "mr": "arithmetic_mean_rank"}
        return {name: float(result.get_metric(f"both.realistic.{key}"))
                for name, key in keys.items()}


# -- the run -----------------------------------------------------------------------------------
def experiment_config(args: argparse.Namespace) -> ExperimentConfig:
    model = resolve_config("tucker", **same_widths(args.dim))
    training = TrainingConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                              regime="1-n", label_smoothing=args.label_smoothing,
                              loss=args.loss)
    return ExperimentConfig(graph=args.graph, seed=args.seed, device="cpu", model=model,
                            training=training,
                            evaluation=EvaluationConfig(batch_size=args.eval_batch_size))


def run(kg: MultimodalKG, config: ExperimentConfig, eval_every: int | None = None,
        log: Callable[[str], None] = print) -> dict[str, Any]:
    """Train both models epoch by epoch (alternating), validating both every ``eval_every``
    epochs and after the last; a JSON-able report."""
    contestants = {"ours": Ours(kg, config), "pykeen": Peer(kg, config)}
    history: dict[str, list[dict[str, float]]] = {key: [] for key in contestants}
    known = build_filter(kg)
    categories = relation_categories(kg.triples("train"), kg.num_relations)
    epochs = config.training.epochs
    valid: dict[str, dict[str, float]] = {}
    for epoch in range(1, epochs + 1):
        order = ["ours", "pykeen"] if epoch % 2 else ["pykeen", "ours"]
        for key in order:
            stats = contestants[key].epoch(epoch)
            log(f"epoch {epoch} {contestants[key].name}: {stats['seconds']:.1f} s, "
                f"loss {stats['loss']:.5f}")
            if epoch == epochs or (eval_every and epoch % eval_every == 0):
                valid[key] = contestants[key].validate(known, categories)
                stats["valid_mrr"] = valid[key]["mrr"]
                log(f"epoch {epoch} {contestants[key].name}: valid MRR {valid[key]['mrr']:.4f} "
                    "(our evaluator)")
            history[key].append({"epoch": epoch, **stats})
    report: dict[str, Any] = {"train_queries": contestants["ours"].sampler.answers.num_queries}
    for key, contestant in contestants.items():
        seconds = [row["seconds"] for row in history[key]]
        report[key] = {"name": contestant.name, "history": history[key],
                       "seconds_per_epoch": sum(seconds) / len(seconds), "valid": valid[key]}
    report["pykeen"]["valid_pykeen_evaluator"] = contestants["pykeen"].own_evaluator()
    report["speedup"] = report["pykeen"]["seconds_per_epoch"] / report["ours"]["seconds_per_epoch"]
    report["mrr_difference"] = report["ours"]["valid"]["mrr"] - report["pykeen"]["valid"]["mrr"]
    return report


def markdown(result: dict[str, Any]) -> str:
    """The human-readable tables of a ``run`` result (with its settings)."""
    s = result["settings"]
    lines = [f"Command: `{result['command']}`", "",
             f"Graph {s['graph']} ({s['entities']:,} entities, {s['relations']} relations, "
             f"{s['train_queries']:,} training queries with reciprocals); dim {s['dim']}, batch "
             f"{s['batch_size']}, {s['epochs']} epoch(s), Adam lr {s['lr']}, loss {s['loss']}, "
             f"label smoothing {s['label_smoothing']}, dropouts {s['dropouts']}, "
             f"{s['threads']} torch thread(s), seed {s['seed']}; torch {s['torch']}, PyKEEN "
             f"{s['pykeen']}; load average {s['load_before']:.1f} before, "
             f"{s['load_after']:.1f} after.", "",
             "| implementation | s / epoch (mean) | final loss | valid MRR | valid Hits@10 "
             "| valid MRR, PyKEEN's evaluator |",
             "|---|---:|---:|---:|---:|---:|"]
    for key in ("ours", "pykeen"):
        row = result[key]
        own = row.get("valid_pykeen_evaluator", {}).get("mrr")
        lines.append(
            f"| {row['name']} | {row['seconds_per_epoch']:.1f} | "
            f"{row['history'][-1]['loss']:.5f} | {row['valid']['mrr']:.4f} | "
            f"{row['valid']['hits@10']:.4f} | {'-' if own is None else f'{own:.4f}'} |")
    lines += ["", "| epoch | ours s | PyKEEN s | ours loss | PyKEEN loss | ours valid MRR "
              "| PyKEEN valid MRR |", "|---:|---:|---:|---:|---:|---:|---:|"]
    for mine, theirs in zip(result["ours"]["history"], result["pykeen"]["history"], strict=True):
        mrr = [f"{h['valid_mrr']:.4f}" if "valid_mrr" in h else "" for h in (mine, theirs)]
        lines.append(f"| {mine['epoch']} | {mine['seconds']:.1f} | {theirs['seconds']:.1f} | "
                     f"{mine['loss']:.5f} | {theirs['loss']:.5f} | {mrr[0]} | {mrr[1]} |")
    lines += ["", f"PyKEEN / ours seconds per epoch: {result['speedup']:.1f}x; validation MRR "
              f"ours - PyKEEN: {result['mrr_difference']:+.4f} (both by our evaluator).", "",
              "Differences that remain:", ""] + [f"- {d}" for d in result["differences"]]
    return "\n".join(lines) + "\n"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_graph_flag(parser, default="fb15k237img")
    add_config_flags(parser, "--source", "--data-dir")
    parser.add_argument("--dim", type=int, default=32,
                        help="entity = relation dimension (PyKEEN's cost grows as B*N*dim)")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--label-smoothing", type=float, default=0.1)
    parser.add_argument("--loss", choices=LOSSES, default="bce",
                        help="bce: BCE on logits (TuckER, our Eq. 10); softmax: cross-entropy "
                             "(PyKEEN's CrossEntropyLoss), which learns in far fewer epochs")
    parser.add_argument("--eval-every", type=int,
                        help="also validate both models every N epochs (default: last only)")
    parser.add_argument("--eval-batch-size", type=int, default=256)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=Path("runs/peer_pykeen"),
                        help="folder for peer_pykeen.json and peer_pykeen.md")
    args = parser.parse_args(argv)
    for name in ("dim", "batch_size", "epochs", "eval_batch_size", "threads", "eval_every"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            raise DataError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    if args.batch_size == 1:
        raise DataError("--batch-size 1 cannot train TuckER's batch norms; use >= 2")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        import pykeen
    except ImportError:
        raise DataError("bench/peer_pykeen.py needs PyKEEN: pip install -e '.[bench]'") from None
    torch.set_num_threads(args.threads)
    kg = prepare_graph(PrepareOptions(args.graph, args.source, args.data_dir)).kg
    config = experiment_config(args)
    load_before = os.getloadavg()[0]
    result = run(kg, config, args.eval_every)
    model = config.model
    result.update(
        command="python " + shlex.join(["bench/peer_pykeen.py", *(argv or sys.argv[1:])]),
        differences=list(DIFFERENCES),
        settings={"graph": kg.name, "entities": kg.num_entities, "relations": kg.num_relations,
                  "train_queries": result.pop("train_queries"),
                  "dim": model.dim, "batch_size": args.batch_size, "epochs": args.epochs,
                  "lr": args.lr, "label_smoothing": args.label_smoothing, "loss": args.loss,
                  "dropouts": [model.input_dropout, model.hidden_dropout1, model.hidden_dropout2],
                  "threads": args.threads, "seed": args.seed, "torch": torch.__version__,
                  "pykeen": pykeen.get_version(), "python": platform.python_version(),
                  "deterministic_algorithms": torch.are_deterministic_algorithms_enabled(),
                  "load_before": load_before, "load_after": os.getloadavg()[0]})
    write_json(args.out / "peer_pykeen.json", result)
    with atomic_path(args.out / "peer_pykeen.md") as temporary:
        temporary.write_text(markdown(result), encoding="utf-8")
    print(markdown(result))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except DataError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
