"""Fuzz: every supported input format, written correctly and then damaged (random bytes flipped,
truncated, non-UTF-8 bytes, a huge line), either loads or fails with a ``DataError`` that names
a file of the graph in a message of bounded length - never another exception. Damage that keeps
the meaning (a BOM, CRLF line ends, blank lines) must load exactly as the original did.

A damaged file may also be a valid, different graph (a flipped letter renames an entity): such a
load must still be well-formed. The seed of every case is in its id, so a failure reproduces."""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from roam_graph.data.errors import QUOTE_LIMIT, DataError
from roam_graph.data.features import read_feature_matrix, read_image_index
from roam_graph.data.formats import FORMATS, Structure, read_structure
from roam_graph.training.config import load_config

CASES_PER_FORMAT = 100
#: A message may hold a path, a quoted value (QUOTE_LIMIT) and the explanation around them.
MESSAGE_LIMIT = 2 * QUOTE_LIMIT + 400

ENTITIES = ("a", "b", "c", "d")
RELATIONS = ("r", "s")
SPLIT_TRIPLES = {"train": [(0, 0, 1), (1, 1, 2), (2, 0, 3)], "valid": [(0, 1, 2)],
                 "test": [(3, 0, 0)]}


def _write(folder: Path, files: dict[str, str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name).write_bytes(text.encode("utf-8"))
    return folder


def _named(triples: list[tuple[int, int, int]], line: Callable[[str, str, str], str]) -> str:
    return "".join(line(ENTITIES[h], RELATIONS[r], ENTITIES[t]) for h, r, t in triples)


def graph_files(fmt: str) -> dict[str, str]:
    """A small graph in ``fmt``: file name -> content."""
    ids = "".join(f"{n} {i}\n" for i, n in enumerate(ENTITIES))
    rel_ids = "".join(f"{n} {i}\n" for i, n in enumerate(RELATIONS))
    if fmt == "openke":
        files = {"entity2id.txt": f"{len(ENTITIES)}\n{ids}",
                 "relation2id.txt": f"{len(RELATIONS)}\n{rel_ids}"}
        files.update({f"{split}2id.txt": f"{len(rows)}\n" + "".join(
            f"{h} {t} {r}\n" for h, r, t in rows) for split, rows in SPLIT_TRIPLES.items()})
        return files
    line = {"momok": lambda h, r, t: f"{h} {r} {t} .\n",
            "conve": lambda h, r, t: f"{h}\t{r}\t{t}\n",
            "tsv": lambda h, r, t: f"{h}\t{r}\t{t}\n",
            "names": lambda h, r, t: f"{h}\t{r}\t{t} .\n"}[fmt]
    suffix = ".tsv" if fmt == "tsv" else ".txt"
    files = {f"{split}{suffix}": _named(rows, line) for split, rows in SPLIT_TRIPLES.items()}
    if fmt == "momok":
        files.update({"entity2id.txt": ids, "relation2id.txt": rel_ids})
    if fmt in ("tsv", "names"):
        files["entities.txt"] = "".join(f"{n}\n" for n in ENTITIES)
    return files


def damage(data: bytes, rng: random.Random, huge: int = 1_000_000) -> tuple[str, bytes]:
    """One random kind of damage: flipped bytes, a cut, non-UTF-8 bytes or a huge line."""
    kind = rng.choice(("flip", "flip", "truncate", "latin1", "invalid", "huge"))
    position = rng.randrange(len(data) + 1)
    if kind == "flip":
        mutable = bytearray(data)
        for _ in range(rng.randint(1, 3)):
            if mutable:
                mutable[rng.randrange(len(mutable))] = rng.randrange(256)
        return kind, bytes(mutable)
    if kind == "truncate":
        return kind, data[:position]
    if kind == "latin1":
        return kind, data[:position] + "é".encode("latin-1") + data[position:]
    if kind == "invalid":
        return kind, data[:position] + bytes([rng.choice((0x80, 0xC3, 0xFF, 0xFE))]) + \
            data[position:]
    return kind, data[:position] + b"x" * huge + data[position:]


def check_well_formed(structure: Structure) -> None:
    entities, relations, splits = structure
    assert all(isinstance(name, str) for name in (*entities, *relations))
    for triples in splits.values():
        assert triples.dtype == torch.int64 and triples.shape[1] == 3 and len(triples)
        assert int(triples[:, [0, 2]].max()) < len(entities)
        assert int(triples[:, 1].max()) < len(relations) and int(triples.min()) >= 0


def check_error(error: DataError, folder: Path) -> None:
    message = str(error)
    assert message.startswith(str(folder)), message[:500]  # names a file of the graph
    assert len(message) <= MESSAGE_LIMIT, message[:500]
    assert "\n" not in message


@pytest.mark.parametrize("fmt", FORMATS)
def test_damaged_structure_files_load_or_name_the_file(fmt: str, tmp_path: Path) -> None:
    files = graph_files(fmt)
    check_well_formed(read_structure(_write(tmp_path / "original", files), fmt))
    kinds: set[str] = set()  # the kinds of damage that gave a DataError
    for case in range(CASES_PER_FORMAT):
        rng = random.Random(f"{fmt}-{case}")
        name = rng.choice(sorted(files))
        kind, damaged = damage(files[name].encode("utf-8"), rng)
        folder = _write(tmp_path / str(case), files)
        (folder / name).write_bytes(damaged)
        try:
            check_well_formed(read_structure(folder, fmt))
        except DataError as error:
            check_error(error, folder)
            kinds.add(kind)
        except Exception as error:  # noqa: BLE001 (the point: nothing but DataError)
            pytest.fail(f"case {fmt}-{case} ({kind} in {name}): {type(error).__name__}: "
                        f"{str(error)[:300]}")
    assert {"latin1", "invalid"} <= kinds  # non-UTF-8 text always fails


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("change", ["bom", "crlf", "blank lines"])
def test_harmless_changes_load_exactly_as_the_original(fmt: str, change: str,
                                                       tmp_path: Path) -> None:
    files = graph_files(fmt)
    original = read_structure(_write(tmp_path / "original", files), fmt)
    changed = {"bom": lambda text: "\ufeff" + text,
               "crlf": lambda text: text.replace("\n", "\r\n"),
               "blank lines": lambda text: "\n" + text.replace("\n", "\n\n") + "\n \n"}[change]
    again = read_structure(_write(tmp_path / "changed",
                                  {k: changed(v) for k, v in files.items()}), fmt)
    assert again[:2] == original[:2]
    assert all(torch.equal(again[2][s], original[2][s]) for s in original[2])


def test_non_utf8_names_file_line_and_byte_offset(tmp_path: Path) -> None:
    files = graph_files("momok")
    files["train.txt"] = "a r b .\n"
    folder = _write(tmp_path, files)
    (folder / "train.txt").write_bytes(b"a r b .\nb s caf\xe9 .\n")
    with pytest.raises(DataError) as error:
        read_structure(folder, "momok")
    assert str(error.value) == (f"{folder / 'train.txt'}:2: byte 0xe9 at byte offset 15 is not "
                                "valid UTF-8; the file must be UTF-8 text (convert it, e.g. "
                                "iconv -f LATIN1 -t UTF-8)")


def test_a_huge_line_is_quoted_short_with_its_length(tmp_path: Path) -> None:
    folder = _write(tmp_path, graph_files("tsv"))
    (folder / "valid.tsv").write_text("a" * 10_000_000 + "\n")
    with pytest.raises(DataError) as error:
        read_structure(folder, "tsv")
    assert len(str(error.value)) < 400 and "(10,000,000 characters)" in str(error.value)


def _feature_files(folder: Path) -> dict[str, bytes]:
    matrix = np.arange(8, dtype=np.float32).reshape(4, 2) + 1
    np.save(folder / "image.npy", matrix)
    torch.save(torch.from_numpy(matrix), folder / "image.pt")
    (folder / "Index.txt").write_text("".join(f"<{n}>\tIMG{i}\n" for i, n in enumerate(ENTITIES)))
    return {name: (folder / name).read_bytes() for name in ("image.npy", "image.pt", "Index.txt")}


def test_damaged_feature_and_index_files_load_or_name_the_file(tmp_path: Path) -> None:
    originals = _feature_files(tmp_path)
    readers = {"image.npy": lambda p: read_feature_matrix(p, len(ENTITIES)),
               "image.pt": lambda p: read_feature_matrix(p, len(ENTITIES)),
               "Index.txt": read_image_index}
    for case in range(3 * CASES_PER_FORMAT):
        rng = random.Random(f"features-{case}")
        name = rng.choice(sorted(originals))
        kind, damaged = damage(originals[name], rng)
        path = tmp_path / name
        path.write_bytes(damaged)
        try:
            readers[name](path)
        except DataError as error:
            check_error(error, tmp_path)
        except Exception as error:  # noqa: BLE001
            pytest.fail(f"case features-{case} ({kind} in {name}): {type(error).__name__}: "
                        f"{str(error)[:300]}")
        path.write_bytes(originals[name])


def test_damaged_config_files_load_or_name_the_file(tmp_path: Path) -> None:
    text = yaml.safe_dump({"graph": "synthetic-tiny", "seed": 3, "model": {"dim": 8},
                           "training": {"epochs": 2, "lr": 0.01, "regime": "1-n"},
                           "evaluation": {"batch_size": 64}}).encode()
    for case in range(2 * CASES_PER_FORMAT):
        rng = random.Random(f"config-{case}")
        kind, damaged = damage(text, rng, huge=5_000)  # PyYAML scans ~3 MB/s: keep it short
        path = tmp_path / f"{case}.yaml"
        path.write_bytes(damaged)
        try:
            load_config(path)
        except DataError as error:
            check_error(error, path)
        except Exception as error:  # noqa: BLE001
            pytest.fail(f"case config-{case} ({kind}): {type(error).__name__}: "
                        f"{str(error)[:300]}")
