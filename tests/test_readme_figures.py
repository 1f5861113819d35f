"""The README's figures are kept in a form a test can compare: every headline number the README
quotes for the default run is the rounded value of the committed result file of that run
(docs/results/issue11/default/metrics.json, written by `python pipelines/run.py --out DIR`).
Re-measuring means re-running that command, copying its metrics.json, history.csv and
config.json there, and updating the README sentence; this test fails until both agree."""

from __future__ import annotations

import json
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_RUN = REPO / "docs" / "results" / "issue11" / "default"


def test_readme_quotes_the_committed_default_run() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    found = re.search(r"\*\*test MRR ([0-9.]+)\*\* \(MR ([0-9]+), Hits@10 ([0-9.]+)\)", readme)
    assert found, "README must quote the default run as '**test MRR x** (MR y, Hits@10 z)'"
    metrics = json.loads((DEFAULT_RUN / "metrics.json").read_text(encoding="utf-8"))
    mrr, mr, hits = found.groups()
    assert float(mrr) == round(metrics["mrr"], len(mrr.split(".")[1]))
    assert int(mr) == round(metrics["mr"])
    assert float(hits) == round(metrics["hits@10"], len(hits.split(".")[1]))


def test_the_committed_default_run_is_the_default_configuration() -> None:
    """The result file must come from `python pipelines/run.py` as shipped: the configuration
    it records equals configs/synthetic.yaml resolved today (else the figure is stale)."""
    from roam_graph.training.config import default_config_path, load_config
    saved = json.loads((DEFAULT_RUN / "config.json").read_text(encoding="utf-8"))
    now = json.loads(json.dumps(load_config(default_config_path("synthetic"), {},
                                            graph="synthetic").to_dict()))
    for section in ("model", "training"):
        changed = {k: (saved[section].get(k), v) for k, v in now[section].items()
                   if saved[section].get(k, v) != v}
        assert not changed, f"default run is stale: {section} settings changed {changed}"
