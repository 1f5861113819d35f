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


def registered_tsv_graph(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A registered graph 'tinyreg' whose published files are file:// URLs in tmp_path."""
    from roam_datasets.registry import REGISTERED, DatasetSpec
    remote = tmp_path / "published"
    remote.mkdir()
    contents = {"train.tsv": "a\tr\tb\nb\tr\tc\nc\ts\ta\na\ts\tb\n", "valid.tsv": "a\ts\tc\n",
                "test.tsv": "b\ts\ta\n"}
    files = []
    for name, text in contents.items():
        (remote / name).write_text(text)
        files.append(RemoteFile(name, (remote / name).as_uri(),
                                hashlib.sha256(text.encode()).hexdigest()))
    monkeypatch.setitem(REGISTERED, "tinyreg", DatasetSpec("tinyreg", "tiny", "tsv",
                                                           tuple(files)))
    return "tinyreg"


def test_run_downloads_a_registered_graph_on_first_use_and_no_download_refuses(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    from roam_graph.cli import main
    graph = registered_tsv_graph(tmp_path, monkeypatch)
    command = ["run", "--graph", graph, "--model", "tucker", "--epochs", "1", "--dim", "4",
               "--quiet"]
    code = main([*command, "--data-dir", str(tmp_path / "fresh"), "--no-download",
                 "--out", str(tmp_path / "refused")])
    assert code == 2
    error = capsys.readouterr().err
    assert "these files are missing" in error and "published/train.tsv" in error
    assert not (tmp_path / "fresh" / "raw" / graph / "train.tsv").exists()
    code = main([*command, "--data-dir", str(tmp_path / "data"), "--out", str(tmp_path / "run")])
    assert code == 0, capsys.readouterr().err
    assert "first use, downloading 3 file(s)" in capsys.readouterr().out
    raw = tmp_path / "data" / "raw" / graph
    assert sorted(p.name for p in raw.iterdir()) == ["test.tsv", "train.tsv", "valid.tsv"]
    assert (tmp_path / "run" / "metrics.json").is_file()
    code = main([*command, "--data-dir", str(tmp_path / "data"), "--out", str(tmp_path / "two")])
    assert code == 0 and "downloading" not in capsys.readouterr().out  # used as they are
