"""Downloads verify checksums and never leave a partial file; tested with file:// URLs."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from roam_datasets.download import fetch_file
from roam_datasets.registry import REGISTERED, RemoteFile, get_spec
from roam_graph.data.errors import DataError


def published(tmp_path: Path, content: bytes = b"a r b .\n") -> tuple[Path, str]:
    path = tmp_path / "remote" / "train.txt"
    path.parent.mkdir()
    path.write_bytes(content)
    return path, hashlib.sha256(content).hexdigest()


def test_download_with_matching_checksum_lands_the_file(tmp_path: Path) -> None:
    remote_path, digest = published(tmp_path)
    fetched = fetch_file(RemoteFile("train.txt", remote_path.as_uri(), digest), tmp_path / "raw")
    assert fetched.read_bytes() == b"a r b .\n"


def test_checksum_mismatch_is_an_error_and_leaves_nothing(tmp_path: Path) -> None:
    remote_path, _ = published(tmp_path)
    remote = RemoteFile("train.txt", remote_path.as_uri(), "0" * 64)
    with pytest.raises(DataError, match="checksum mismatch: expected sha256 0000"):
        fetch_file(remote, tmp_path / "raw")
    assert list((tmp_path / "raw").iterdir()) == []


def test_unreachable_url_names_the_file_and_url(tmp_path: Path) -> None:
    remote = RemoteFile("train.txt", (tmp_path / "nowhere.txt").as_uri(), None)
    with pytest.raises(DataError, match="could not download train.txt from file://"):
        fetch_file(remote, tmp_path / "raw")
    assert list((tmp_path / "raw").iterdir()) == []


def test_an_existing_corrupt_copy_is_detected(tmp_path: Path) -> None:
    remote_path, digest = published(tmp_path)
    (tmp_path / "raw").mkdir()
    (tmp_path / "raw" / "train.txt").write_bytes(b"tampered")
    with pytest.raises(DataError, match="train.txt: checksum mismatch"):
        fetch_file(RemoteFile("train.txt", remote_path.as_uri(), digest), tmp_path / "raw")


def test_registry_checksums_match_the_shared_files(shared_datasets: Path) -> None:
    from roam_datasets.download import sha256_of
    for name, spec in REGISTERED.items():
        for remote in spec.all_files:
            local = shared_datasets / name / remote.name
            assert sha256_of(local) == remote.sha256, f"{name}/{remote.name}"


def test_every_benchmark_is_registered() -> None:
    assert set(REGISTERED) == {"db15k", "mkg-w", "mkg-y", "kvc16k", "fb15k237img"}
    assert get_spec("db15k").format == "openke"
