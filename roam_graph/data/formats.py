"""Readers for the structure files of the benchmark graphs and of a user's own graph.

Each reader returns ``(entity_names, relation_names, splits)`` with splits as int64 ``[n, 3]``
``(head, relation, tail)`` tensors. Every malformed line raises ``DataError`` with ``file:line``.

Formats (see ``docs/data-formats.md``):
- ``openke``   - ``entity2id.txt`` / ``relation2id.txt`` with a count line, then ``NAME ID``;
                 ``{train,valid,test}2id.txt`` with a count line, then ``HEAD TAIL REL`` (ids).
- ``momok``    - ``entity2id.txt`` / ``relation2id.txt`` as ``NAME ID`` without a count line;
                 ``{train,valid,test}.txt`` as ``HEAD REL TAIL .`` (names).
- ``conve``    - ``{train,valid,test}.txt`` as ``HEAD<TAB>REL<TAB>TAIL`` (names, CRLF allowed);
                 ids are given in order of first appearance over train, valid, test.
- ``tsv``      - the generic format for a user's graph: ``{train,valid,test}.tsv`` as
                 ``HEAD<TAB>REL<TAB>TAIL``, optional ``entities.txt`` / ``relations.txt`` (one name
                 per line) fixing the id order (needed when feature files are given in that order).
"""

from __future__ import annotations

import os
import tarfile
from collections.abc import Iterator
from pathlib import Path

import torch

from roam_graph.data.errors import DataError, at_line, in_file
from roam_graph.data.mmkg_data import SPLITS

Structure = tuple[tuple[str, ...], tuple[str, ...], dict[str, torch.Tensor]]
FORMATS: tuple[str, ...] = ("openke", "momok", "conve", "tsv")


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    """Non-blank lines with 1-based numbers; CRLF and a UTF-8 BOM are tolerated."""
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    with open(path, encoding="utf-8-sig", newline="") as handle:
        for number, raw in enumerate(handle, start=1):
            line = raw.rstrip("\r\n")
            if line.strip():
                yield number, line


def _read_name_ids(path: Path, count_line: bool) -> tuple[str, ...]:
    """``NAME<ws>ID`` lines -> names indexed by id; ids must be exactly ``0..n-1``."""
    lines = _lines(path)
    declared = None
    if count_line:
        number, first = next(lines, (1, ""))
        if not first.strip().isdigit():
            raise at_line(path, number, f"expected the entry count, got {first!r}")
        declared = int(first)
    names: dict[int, str] = {}
    for number, line in lines:
        parts = line.rsplit(None, 1)
        if len(parts) != 2 or not parts[1].isdigit():
            raise at_line(path, number, f"expected 'NAME ID', got {line!r}")
        name, ident = parts[0].strip(), int(parts[1])
        if ident in names:
            raise at_line(path, number, f"id {ident} given twice ({names[ident]!r} and {name!r})")
        names[ident] = name
    if declared is not None and declared != len(names):
        raise in_file(path, f"count line says {declared} entries but {len(names)} follow")
    if sorted(names) != list(range(len(names))):
        missing = sorted(set(range(len(names))) - set(names))[:5]
        raise in_file(path, f"ids must be 0..{len(names) - 1}; missing e.g. {missing}")
    if len(set(names.values())) != len(names):
        raise in_file(path, "the same name is listed under two ids")
    return tuple(names[i] for i in range(len(names)))


def _triples_tensor(rows: list[tuple[int, int, int]], path: Path) -> torch.Tensor:
    if not rows:
        raise in_file(path, "the split is empty")
    return torch.tensor(rows, dtype=torch.int64)


def read_openke(source: Path) -> Structure:
    """OpenKE benchmark folder (DB15K): ids, column order ``HEAD TAIL REL``."""
    entities = _read_name_ids(source / "entity2id.txt", count_line=True)
    relations = _read_name_ids(source / "relation2id.txt", count_line=True)
    splits = {}
    for split in SPLITS:
        path = source / f"{split}2id.txt"
        lines = _lines(path)
        number, first = next(lines, (1, ""))
        if not first.strip().isdigit():
            raise at_line(path, number, f"expected the triple count, got {first!r}")
        rows = []
        for number, line in lines:
            parts = line.split()
            if len(parts) != 3 or not all(p.isdigit() for p in parts):
                raise at_line(path, number, f"expected 'HEAD_ID TAIL_ID REL_ID', got {line!r}")
            head, tail, rel = (int(p) for p in parts)
            for what, ident, bound in (("head", head, len(entities)),
                                       ("tail", tail, len(entities)),
                                       ("relation", rel, len(relations))):
                if ident >= bound:
                    raise at_line(path, number, f"unknown {what} id {ident} "
                                                f"(ids go up to {bound - 1})")
            rows.append((head, rel, tail))
        if int(first) != len(rows):
            raise in_file(path, f"count line says {int(first)} triples but {len(rows)} follow")
        splits[split] = _triples_tensor(rows, path)
    return entities, relations, splits


def _name_triples(path: Path, entity_ids: dict[str, int], relation_ids: dict[str, int],
                  separator: str | None, trailing_dot: bool) -> torch.Tensor:
    """Name triples ``HEAD REL TAIL`` -> ids through the given maps; unknown names are errors."""
    expected = "'HEAD REL TAIL .'" if trailing_dot else "'HEAD<TAB>REL<TAB>TAIL'"
    rows = []
    for number, line in _lines(path):
        parts = line.split(separator)
        if trailing_dot:
            if len(parts) != 4 or parts[3] != ".":
                raise at_line(path, number, f"expected {expected}, got {line!r}")
            parts = parts[:3]
        elif len(parts) != 3:
            raise at_line(path, number, f"expected {expected}, got {line!r}")
        head, rel, tail = (p.strip() for p in parts)
        try:
            rows.append((entity_ids[head], relation_ids[rel], entity_ids[tail]))
        except KeyError:
            unknown = next(f"unknown {kind} {name!r}" for kind, name, known in (
                ("head entity", head, entity_ids), ("relation", rel, relation_ids),
                ("tail entity", tail, entity_ids)) if name not in known)
            raise at_line(path, number, unknown) from None
    return _triples_tensor(rows, path)


def read_momok(source: Path) -> Structure:
    """MoMoK benchmark folder (MKG-W, MKG-Y, KVC16K): names, ``HEAD REL TAIL .``."""
    entities = _read_name_ids(source / "entity2id.txt", count_line=False)
    relations = _read_name_ids(source / "relation2id.txt", count_line=False)
    entity_ids = {name: i for i, name in enumerate(entities)}
    relation_ids = {name: i for i, name in enumerate(relations)}
    splits = {split: _name_triples(source / f"{split}.txt", entity_ids, relation_ids,
                                   separator=None, trailing_dot=True)
              for split in SPLITS}
    return entities, relations, splits


def _first_appearance(paths: list[Path]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Entity and relation names in order of first appearance over the given TSV files."""
    entities: dict[str, None] = {}
    relations: dict[str, None] = {}
    for path in paths:
        for number, line in _lines(path):
            parts = line.split("\t")
            if len(parts) != 3:
                raise at_line(path, number, f"expected 'HEAD<TAB>REL<TAB>TAIL', got {line!r}")
            head, rel, tail = (p.strip() for p in parts)
            entities.setdefault(head)
            relations.setdefault(rel)
            entities.setdefault(tail)
    return tuple(entities), tuple(relations)


def _read_tab_splits(paths: dict[str, Path], entities: tuple[str, ...],
                     relations: tuple[str, ...]) -> dict[str, torch.Tensor]:
    entity_ids = {name: i for i, name in enumerate(entities)}
    relation_ids = {name: i for i, name in enumerate(relations)}
    return {split: _name_triples(path, entity_ids, relation_ids, "\t", trailing_dot=False)
            for split, path in paths.items()}


def read_conve(source: Path) -> Structure:
    """ConvE folder (FB15k-237): ``train.txt`` etc. as TSV names with CRLF line ends."""
    paths = {split: source / f"{split}.txt" for split in SPLITS}
    entities, relations = _first_appearance(list(paths.values()))
    return entities, relations, _read_tab_splits(paths, entities, relations)


def _read_name_list(path: Path) -> tuple[str, ...]:
    names = [line.strip() for _, line in _lines(path)]
    seen: set[str] = set()
    for number, name in enumerate(names, start=1):
        if name in seen:
            raise at_line(path, number, f"name {name!r} is listed twice")
        seen.add(name)
    return tuple(names)


def read_tsv(source: Path) -> Structure:
    """The generic format (``docs/data-formats.md``): ``{split}.tsv`` + optional name lists."""
    paths = {split: source / f"{split}.tsv" for split in SPLITS}
    entities, relations = _first_appearance(list(paths.values()))
    if (source / "entities.txt").is_file():
        entities = _read_name_list(source / "entities.txt")
    if (source / "relations.txt").is_file():
        relations = _read_name_list(source / "relations.txt")
    return entities, relations, _read_tab_splits(paths, entities, relations)


READERS = {"openke": read_openke, "momok": read_momok, "conve": read_conve, "tsv": read_tsv}


def read_structure(source: Path, fmt: str) -> Structure:
    """Dispatch on the format name; an unknown format is a ``DataError`` listing the known ones."""
    if fmt not in READERS:
        raise DataError(f"unsupported format {fmt!r}; supported formats: {', '.join(FORMATS)}")
    return READERS[fmt](Path(source))


def safe_extract(archive: Path, target: Path) -> list[Path]:
    """Extract a tar archive into ``target``, refusing members that would land outside it
    (absolute paths, ``..``, links pointing out) - the classic tar path-traversal hole."""
    target = Path(target).resolve()
    target.mkdir(parents=True, exist_ok=True)
    written = []
    with tarfile.open(archive) as tar:
        members = tar.getmembers()
        for member in members:
            destination = (target / member.name).resolve()
            if os.path.commonpath([target, destination]) != str(target):
                raise in_file(archive, f"member {member.name!r} would be extracted outside "
                                       f"{target}; refusing to extract")
            if member.issym() or member.islnk():
                raise in_file(archive, f"member {member.name!r} is a link; refusing to extract")
            if not (member.isfile() or member.isdir()):
                raise in_file(archive, f"member {member.name!r} is not a regular file")
        for member in members:
            if member.isfile():
                destination = target / member.name
                destination.parent.mkdir(parents=True, exist_ok=True)
                temporary = destination.with_name(destination.name + ".part")
                with tar.extractfile(member) as src, open(temporary, "wb") as dst:
                    dst.write(src.read())
                os.replace(temporary, destination)
                written.append(destination)
    return written
