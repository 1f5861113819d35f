"""Shared fixtures: where the real benchmark files are, and a temporary data dir per test."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def shared_datasets_dir() -> Path:
    """``$ROAM_SHARED_DATASETS`` or ``../shared/datasets`` beside the checkout."""
    return Path(os.environ.get("ROAM_SHARED_DATASETS", REPO.parent / "shared" / "datasets"))


@pytest.fixture(scope="session")
def shared_datasets() -> Path:
    """The real benchmark files. In CI their absence is a failure, elsewhere a skip."""
    folder = shared_datasets_dir()
    if not (folder / "db15k" / "train2id.txt").is_file():
        if os.environ.get("CI"):
            pytest.fail(f"CI needs the shared benchmark files at {folder}")
        pytest.skip(f"shared benchmark files not found at {folder}")
    return folder


@pytest.fixture()
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh cache folder, also set as $ROAM_DATA_DIR so nothing writes into ./data."""
    folder = tmp_path / "data"
    monkeypatch.setenv("ROAM_DATA_DIR", str(folder))
    return folder


@pytest.fixture(autouse=True, scope="session")
def one_torch_thread() -> None:
    """Tests use tiny tensors: one intra-op thread is faster, and immune to a busy machine."""
    import torch
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def kg(tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201 (imports stay lazy here)
    """The tiny synthetic graph (no files needed), prepared once per test session."""
    from roam_graph.graph.prepare import PrepareOptions, prepare_graph
    folder = tmp_path_factory.mktemp("tiny-data")
    return prepare_graph(PrepareOptions("synthetic-tiny", data_dir=folder), log=lambda _: None).kg

