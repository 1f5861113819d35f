"""Structure readers: every format parses to (head, relation, tail) ids, and every malformed
input names its file and line."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest
import torch

from roam_graph.data.errors import DataError
from roam_graph.data.formats import read_structure, safe_extract


def write(folder: Path, name: str, text: str, newline: str = "\n") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(text.replace("\n", newline).encode("utf-8"))
    return path


def momok_graph(folder: Path, train: str = "a r b .\nb s c .\n") -> Path:
    write(folder, "entity2id.txt", "a 0\nb 1\nc 2\n")
    write(folder, "relation2id.txt", "r 0\ns 1\n")
    write(folder, "train.txt", train)
    write(folder, "valid.txt", "a s c .\n")
    write(folder, "test.txt", "c r a .\n")
    return folder


def openke_graph(folder: Path, train: str = "2\n0 1 0\n1 2 1\n") -> Path:
    write(folder, "entity2id.txt", "3\na\t0\nb\t1\nc\t2\n")
    write(folder, "relation2id.txt", "2\nr 0\ns 1\n")
    write(folder, "train2id.txt", train)
    write(folder, "valid2id.txt", "1\n0 2 1\n")
    write(folder, "test2id.txt", "1\n2 0 0\n")
    return folder


def test_openke_columns_are_head_tail_relation(tmp_path: Path) -> None:
    entities, relations, splits = read_structure(openke_graph(tmp_path), "openke")
    assert entities == ("a", "b", "c") and relations == ("r", "s")
    assert splits["train"].tolist() == [[0, 0, 1], [1, 1, 2]]
    assert splits["test"].tolist() == [[2, 0, 0]]


def test_momok_names_map_through_the_id_files(tmp_path: Path) -> None:
    _, _, splits = read_structure(momok_graph(tmp_path), "momok")
    assert splits["train"].dtype == torch.int64
    assert splits["train"].tolist() == [[0, 0, 1], [1, 1, 2]]
    assert splits["valid"].tolist() == [[0, 1, 2]]


def test_conve_reads_crlf_and_numbers_entities_by_first_appearance(tmp_path: Path) -> None:
    write(tmp_path, "train.txt", "/m/x\t/r/one\t/m/y\n/m/y\t/r/two\t/m/z\n", newline="\r\n")
    write(tmp_path, "valid.txt", "/m/x\t/r/two\t/m/z\n", newline="\r\n")
    write(tmp_path, "test.txt", "/m/z\t/r/one\t/m/w\n", newline="\r\n")
    entities, relations, splits = read_structure(tmp_path, "conve")
    assert entities == ("/m/x", "/m/y", "/m/z", "/m/w")
    assert relations == ("/r/one", "/r/two")
    assert splits["test"].tolist() == [[2, 0, 3]]


def test_generic_tsv_takes_the_entity_order_from_entities_txt(tmp_path: Path) -> None:
    write(tmp_path, "train.tsv", "b\tr\ta\n")
    write(tmp_path, "valid.tsv", "a\tr\tb\n")
    write(tmp_path, "test.tsv", "c\tr\ta\n")
    write(tmp_path, "entities.txt", "c\nb\na\n")
    entities, _, splits = read_structure(tmp_path, "tsv")
    assert entities == ("c", "b", "a")
    assert splits["train"].tolist() == [[1, 0, 2]]


@pytest.mark.parametrize(("train", "message"), [
    ("a r b .\na r\n", "train.txt:2: expected 'HEAD REL TAIL .'"),
    ("a r b .\na r zz .\n", "train.txt:2: unknown tail entity 'zz'"),
    ("qq r b .\n", "train.txt:1: unknown head entity 'qq'"),
    ("a nope b .\n", "train.txt:1: unknown relation 'nope'"),
    ("\n\n", "train.txt: the split is empty"),
])
def test_momok_errors_name_file_and_line(tmp_path: Path, train: str, message: str) -> None:
    with pytest.raises(DataError, match=message.replace(".", r"\.").replace("(", r"\(")):
        read_structure(momok_graph(tmp_path, train=train), "momok")


@pytest.mark.parametrize(("train", "message"), [
    ("3\n0 1 0\n1 2 1\n", "train2id.txt: count line says 3 triples but 2 follow"),
    ("2\n0 1 0\n1 9 1\n", "train2id.txt:3: unknown tail id 9"),
    ("2\n0 1 0\n1 2 5\n", "train2id.txt:3: unknown relation id 5"),
    ("two\n0 1 0\n", "train2id.txt:1: expected the triple count"),
    ("1\n0 1\n", "train2id.txt:2: expected 'HEAD_ID TAIL_ID REL_ID'"),
])
def test_openke_errors_name_file_and_line(tmp_path: Path, train: str, message: str) -> None:
    with pytest.raises(DataError, match=message):
        read_structure(openke_graph(tmp_path, train=train), "openke")


def test_id_files_must_number_names_without_gaps(tmp_path: Path) -> None:
    momok_graph(tmp_path)
    write(tmp_path, "entity2id.txt", "a 0\nb 1\nc 3\n")
    with pytest.raises(DataError, match=r"entity2id.txt: ids must be 0..2"):
        read_structure(tmp_path, "momok")


def test_missing_file_is_named(tmp_path: Path) -> None:
    momok_graph(tmp_path)
    (tmp_path / "valid.txt").unlink()
    with pytest.raises(DataError, match=r"valid.txt: file not found"):
        read_structure(tmp_path, "momok")


def test_unsupported_format_lists_the_supported_ones(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"unsupported format 'rdf'.*openke, momok, conve, tsv"):
        read_structure(tmp_path, "rdf")


def make_tar(path: Path, members: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for name, content in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
    return path


def test_tar_extraction_refuses_paths_outside_the_target(tmp_path: Path) -> None:
    archive = make_tar(tmp_path / "evil.tar.gz", {"ok.txt": b"x", "../escaped.txt": b"y"})
    with pytest.raises(DataError, match=r"'\.\./escaped\.txt' would be extracted outside"):
        safe_extract(archive, tmp_path / "out")
    assert not (tmp_path / "escaped.txt").exists()
    assert not (tmp_path / "out" / "ok.txt").exists()  # nothing is written before the check


def test_tar_extraction_refuses_links(tmp_path: Path) -> None:
    archive = tmp_path / "link.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        info = tarfile.TarInfo("train.txt")
        info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tar.addfile(info)
    with pytest.raises(DataError, match="is a link"):
        safe_extract(archive, tmp_path / "out")


def test_tar_extraction_writes_regular_members(tmp_path: Path) -> None:
    archive = make_tar(tmp_path / "ok.tar.gz", {"Graph/train.txt": b"a\tr\tb\r\n"})
    written = safe_extract(archive, tmp_path / "out")
    assert [p.relative_to(tmp_path / "out").as_posix() for p in written] == ["Graph/train.txt"]
    assert (tmp_path / "out" / "Graph" / "train.txt").read_bytes() == b"a\tr\tb\r\n"


def test_names_format_reads_whitespace_or_tab_lines_with_an_optional_dot(tmp_path: Path) -> None:
    write(tmp_path, "train.txt", "a r b .\nNew York\tlocated in\tc\n  b   r c\n")
    write(tmp_path, "valid.txt", "a\tr\tc .\n")
    write(tmp_path, "test.txt", "c r a\t.\n")
    entities, relations, splits = read_structure(tmp_path, "names")
    assert entities == ("a", "b", "New York", "c") and relations == ("r", "located in")
    assert splits["train"].tolist() == [[0, 0, 1], [2, 1, 3], [1, 0, 3]]
    assert splits["test"].tolist() == [[3, 0, 0]]


@pytest.mark.parametrize("line", ["a r .", "a r b c", "a\tr\t\t.", "a r b . ."])
def test_names_format_needs_three_names(tmp_path: Path, line: str) -> None:
    write(tmp_path, "train.txt", f"a r b .\n{line}\n")
    write(tmp_path, "valid.txt", "a r b\n")
    write(tmp_path, "test.txt", "a r b\n")
    with pytest.raises(DataError, match=r"train.txt:2: expected 'HEAD REL TAIL' \(whitespace"):
        read_structure(tmp_path, "names")
