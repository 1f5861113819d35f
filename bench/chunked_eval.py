"""Filtered evaluation with candidates streamed in chunks (``evaluation.candidate_chunk``):
time and peak memory against the chunk size, next to the unchunked evaluator (docs/SCALING.md).

    python bench/chunked_eval.py                       # N = 10^5 and 10^6, ROAM and Tucker
    python bench/chunked_eval.py --entities 1e5 --chunks none,all,16384 --model tucker

Same synthetic structure-only graphs as ``bench/scaling.py`` (``--triples`` training triples,
power-law entities); ``--queries`` held-out triples are ranked in both directions against all
entities, filtered by train + test, with an untrained model (seed 0; speed does not depend on
the weights). ``none`` is the unchunked evaluator (the model encodes all entities, then scores
``[batch, N]`` blocks); ``all`` is the chunked evaluator with one chunk of ``N``; a number is
the chunk width. Each configuration runs in its own process (``OMP_NUM_THREADS=1``). Memory is
the peak resident set of the evaluation alone: the kernel's high-water mark (``VmHWM``) is reset
after the graph, filter and model are built (``/proc/self/clear_refs``, Linux), read after the
evaluation, and the resident set at the reset is subtracted. The ranks of every chunked run are
checked against the unchunked run's (SHA-256 of all ranks).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import torch
from scaling import RELATIONS, make_triples, rss_mb

REPO = Path(__file__).resolve().parents[1]


def peak_rss_mb() -> float:
    """The resident set's high-water mark since the last reset (Linux ``VmHWM``), MB."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def worker(args: argparse.Namespace) -> dict:
    from roam_graph.evaluation import ModelScorer, evaluate
    from roam_graph.graph.answers import AnswerIndex
    from roam_graph.graph.mmkg import reciprocal_triples
    from roam_graph.model import build_model, resolve_config
    from roam_graph.model.config import same_widths

    triples = make_triples(args.entities, args.triples + args.queries)
    test = triples[args.triples:]
    known = AnswerIndex.build(reciprocal_triples(triples, RELATIONS), args.entities,
                              2 * RELATIONS)
    torch.manual_seed(0)
    config = resolve_config(args.model, modalities=("structure",), **same_widths(args.dim))
    model = build_model(config, args.entities, 2 * RELATIONS, {}).eval()
    with open("/proc/self/clear_refs", "w", encoding="ascii") as clear:
        clear.write("5")   # reset the peak resident set to the current one
    baseline = rss_mb()
    started = time.perf_counter()
    if args.chunk == "none":
        with torch.inference_mode():
            encoding = model.encode_entities()

            def score(heads: torch.Tensor, relations: torch.Tensor) -> torch.Tensor:
                return model(heads, relations, candidate_encoding=encoding).scores.float()

            result = evaluate(score, test, known, RELATIONS, batch_size=args.batch_size)
    else:
        chunk = None if args.chunk == "all" else int(float(args.chunk))
        result = evaluate(ModelScorer(model, torch.device("cpu")), test, known, RELATIONS,
                          batch_size=args.batch_size, candidate_chunk=chunk)
    seconds = time.perf_counter() - started
    peak = peak_rss_mb()
    ranks = torch.cat([result.ranks[m][d] for m in result.ranks for d in ("tail", "head")])
    return {"entities": args.entities, "model": args.model, "chunk": args.chunk,
            "queries": 2 * args.queries, "seconds": seconds, "peak_rss_mb": peak,
            "above_baseline_mb": peak - baseline, "mrr": result.headline["mrr"],
            "ranks_sha256": hashlib.sha256(ranks.numpy().tobytes()).hexdigest()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--entities", default="1e5,1e6", help="comma-separated entity counts")
    p.add_argument("--models", default="tucker,roam")
    p.add_argument("--chunks", default="none,all,65536,8192")
    p.add_argument("--triples", type=int, default=10**6, help="training triples (the filter)")
    p.add_argument("--queries", type=int, default=1000, help="test triples (2 queries each)")
    p.add_argument("--dim", type=int, default=32)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--json", type=Path, help="also write all rows here")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--chunk", help=argparse.SUPPRESS)
    p.add_argument("--model", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        torch.set_num_threads(1)
        args.entities = int(float(args.entities))
        print(json.dumps(worker(args)), flush=True)
        return
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONPATH=str(REPO))
    rows = []
    print("| model | entities | chunk | seconds | peak RSS MB | above baseline MB | ranks = "
          "unchunked |\n|---|---:|---:|---:|---:|---:|---|", flush=True)
    for model in args.models.split(","):
        for entities in args.entities.split(","):
            reference = None
            for chunk in args.chunks.split(","):
                result = subprocess.run(
                    [sys.executable, __file__, "--worker", "--entities", entities, "--chunk", chunk,
                     "--model", model, "--triples", str(args.triples), "--queries",
                     str(args.queries), "--dim", str(args.dim), "--batch-size",
                     str(args.batch_size)], capture_output=True, text=True, env=env)
                lines = [x for x in result.stdout.splitlines() if x.startswith("{")]
                if result.returncode or not lines:
                    print(f"| {model} | {entities} | {chunk} | failed: "
                          f"{(result.stderr.strip().splitlines() or ['?'])[-1][:120]} |||")
                    continue
                row = json.loads(lines[0])
                rows.append(row)
                reference = reference or (row["ranks_sha256"] if chunk == "none" else None)
                same = "-" if chunk == "none" or reference is None else \
                    ("yes" if row["ranks_sha256"] == reference else "NO")
                print(f"| {model} | {row['entities']:.0e} | {chunk} | {row['seconds']:.1f} | "
                      f"{row['peak_rss_mb']:,.0f} | {row['above_baseline_mb']:,.0f} | {same} |",
                      flush=True)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
