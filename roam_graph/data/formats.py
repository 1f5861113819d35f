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
- ``names``    - name triples without id files: ``{train,valid,test}.txt`` as ``HEAD REL TAIL``,
                 whitespace- or tab-separated, optional trailing `` .``; ids as ``tsv``.
"""

from __future__ import annotations

import gzip
import os
import shutil
import tarfile
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

import torch

from roam_graph.atomic import atomic_path
from roam_graph.data.errors import DataError, at_line, in_file, quote, shorten
from roam_graph.data.mmkg_data import SPLITS
from roam_graph.data.textfile import text_lines

Structure = tuple[tuple[str, ...], tuple[str, ...], dict[str, torch.Tensor]]
FORMATS: tuple[str, ...] = ("openke", "momok", "conve", "tsv", "names")
#: An id longer than this is refused as not an id (Python also refuses to parse > 4,300 digits).
MAX_ID_DIGITS = 18
#: A line's fields -> ``[HEAD, REL, TAIL]``, or None when the line does not have that layout.
Fields = Callable[[str], "list[str] | None"]


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    """Non-blank lines with 1-based numbers; CRLF and a UTF-8 BOM are tolerated."""
    for number, line in text_lines(path):
        if line.strip():
            yield number, line


def _parse_id(text: str) -> int | None:
    """A non-negative decimal id in ASCII digits, or None (``'²'.isdigit()`` is True, too)."""
    text = text.strip()
    if not (text.isascii() and text.isdigit()) or len(text) > MAX_ID_DIGITS:
        return None
    return int(text)


def _read_name_ids(path: Path, count_line: bool) -> tuple[str, ...]:
    """``NAME<ws>ID`` lines -> names indexed by id; ids must be exactly ``0..n-1``."""
    lines = _lines(path)
    declared = None
    if count_line:
        number, first = next(lines, (1, ""))
        declared = _parse_id(first)
        if declared is None:
            raise at_line(path, number, f"expected the entry count, got {quote(first)}")
    names: dict[int, str] = {}
    for number, line in lines:
        parts = line.rsplit(None, 1)
        ident = _parse_id(parts[1]) if len(parts) == 2 else None
        if ident is None:
            raise at_line(path, number, f"expected 'NAME ID', got {quote(line)}")
        name = parts[0].strip()
        if ident in names:
            raise at_line(path, number, f"id {ident} given twice ({quote(names[ident])} and "
                                        f"{quote(name)})")
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


def _openke_split(path: Path, num_entities: int, num_relations: int) -> torch.Tensor:
    """A count line, then ``HEAD_ID TAIL_ID REL_ID`` lines -> ``(head, relation, tail)``."""
    lines = _lines(path)
    number, first = next(lines, (1, ""))
    declared = _parse_id(first)
    if declared is None:
        raise at_line(path, number, f"expected the triple count, got {quote(first)}")
    rows = []
    for number, line in lines:
        ids = [_parse_id(p) for p in line.split()]
        if len(ids) != 3 or None in ids:
            raise at_line(path, number, f"expected 'HEAD_ID TAIL_ID REL_ID', got {quote(line)}")
        head, tail, rel = ids
        for what, ident, bound in (("head", head, num_entities), ("tail", tail, num_entities),
                                   ("relation", rel, num_relations)):
            if ident >= bound:
                raise at_line(path, number, f"unknown {what} id {ident} "
                                            f"(ids go up to {bound - 1})")
        rows.append((head, rel, tail))
    if declared != len(rows):
        raise in_file(path, f"count line says {declared} triples but {len(rows)} follow")
    return _triples_tensor(rows, path)


def read_openke(source: Path) -> Structure:
    """OpenKE benchmark folder (DB15K): ids, column order ``HEAD TAIL REL``."""
    entities = _read_name_ids(source / "entity2id.txt", count_line=True)
    relations = _read_name_ids(source / "relation2id.txt", count_line=True)
    splits = {split: _openke_split(source / f"{split}2id.txt", len(entities), len(relations))
              for split in SPLITS}
    return entities, relations, splits


def _momok_fields(line: str) -> list[str] | None:
    parts = line.split()
    return parts[:3] if len(parts) == 4 and parts[3] == "." else None


def _tab_fields(line: str) -> list[str] | None:
    parts = line.split("\t")
    return [p.strip() for p in parts] if len(parts) == 3 else None


def _names_fields(line: str) -> list[str] | None:
    """``HEAD REL TAIL`` with an optional trailing `` .`` (N-Triples style). A line holding a tab
    is split at tabs (names may then contain spaces), any other line at runs of whitespace."""
    line = line.strip()
    if len(line) > 1 and line.endswith(".") and line[-2].isspace():
        line = line[:-1].rstrip()
    parts = [p.strip() for p in line.split("\t")] if "\t" in line else line.split()
    return parts if len(parts) == 3 and all(parts) else None


#: Layout of the name-triple lines of each format: fields of a line, and how to say what was due.
TRIPLE_LINES: dict[str, tuple[Fields, str]] = {
    "momok": (_momok_fields, "'HEAD REL TAIL .'"),
    "conve": (_tab_fields, "'HEAD<TAB>REL<TAB>TAIL'"),
    "tsv": (_tab_fields, "'HEAD<TAB>REL<TAB>TAIL'"),
    "names": (_names_fields, "'HEAD REL TAIL' (whitespace or tabs, optional trailing ' .')"),
}


def _triple_lines(path: Path, fmt: str) -> Iterator[tuple[int, list[str]]]:
    """``(line number, [head, rel, tail])`` of every non-blank line, in the layout of ``fmt``."""
    fields_of, expected = TRIPLE_LINES[fmt]
    for number, line in _lines(path):
        parts = fields_of(line)
        if parts is None:
            raise at_line(path, number, f"expected {expected}, got {quote(line)}")
        yield number, parts


def _name_triples(path: Path, fmt: str, entity_ids: dict[str, int],
                  relation_ids: dict[str, int]) -> torch.Tensor:
    """Name triples -> ids through the given maps; unknown names are errors."""
    rows = []
    for number, (head, rel, tail) in _triple_lines(path, fmt):
        try:
            rows.append((entity_ids[head], relation_ids[rel], entity_ids[tail]))
        except KeyError:
            unknown = next(f"unknown {kind} {quote(name)}" for kind, name, known in (
                ("head entity", head, entity_ids), ("relation", rel, relation_ids),
                ("tail entity", tail, entity_ids)) if name not in known)
            raise at_line(path, number, unknown) from None
    return _triples_tensor(rows, path)


def read_momok(source: Path) -> Structure:
    """MoMoK benchmark folder (MKG-W, MKG-Y, KVC16K): names, ``HEAD REL TAIL .``."""
    entities = _read_name_ids(source / "entity2id.txt", count_line=False)
    relations = _read_name_ids(source / "relation2id.txt", count_line=False)
    return entities, relations, _read_splits(
        {split: source / f"{split}.txt" for split in SPLITS}, "momok", entities, relations)


def _first_appearance(paths: list[Path], fmt: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Entity and relation names in order of first appearance over the given files."""
    entities: dict[str, None] = {}
    relations: dict[str, None] = {}
    for path in paths:
        for _, (head, rel, tail) in _triple_lines(path, fmt):
            entities.setdefault(head)
            relations.setdefault(rel)
            entities.setdefault(tail)
    return tuple(entities), tuple(relations)


def _read_splits(paths: dict[str, Path], fmt: str, entities: tuple[str, ...],
                 relations: tuple[str, ...]) -> dict[str, torch.Tensor]:
    entity_ids = {name: i for i, name in enumerate(entities)}
    relation_ids = {name: i for i, name in enumerate(relations)}
    return {split: _name_triples(path, fmt, entity_ids, relation_ids)
            for split, path in paths.items()}


def read_conve(source: Path) -> Structure:
    """ConvE folder (FB15k-237): ``train.txt`` etc. as TSV names with CRLF line ends."""
    paths = {split: source / f"{split}.txt" for split in SPLITS}
    entities, relations = _first_appearance(list(paths.values()), "conve")
    return entities, relations, _read_splits(paths, "conve", entities, relations)


def _read_name_list(path: Path) -> tuple[str, ...]:
    names: dict[str, int] = {}
    for number, line in _lines(path):
        name = line.strip()
        if name in names:
            raise at_line(path, number, f"name {quote(name)} is listed twice (first on line "
                                        f"{names[name]})")
        names[name] = number
    return tuple(names)


def _read_named_triples(source: Path, fmt: str, suffix: str) -> Structure:
    """``{split}<suffix>`` name triples; ids in order of first appearance over train, valid,
    test, unless ``entities.txt`` / ``relations.txt`` (one name per line) fix the order."""
    paths = {split: source / f"{split}{suffix}" for split in SPLITS}
    entities, relations = _first_appearance(list(paths.values()), fmt)
    if (source / "entities.txt").is_file():
        entities = _read_name_list(source / "entities.txt")
    if (source / "relations.txt").is_file():
        relations = _read_name_list(source / "relations.txt")
    return entities, relations, _read_splits(paths, fmt, entities, relations)


def read_tsv(source: Path) -> Structure:
    """The generic format (``docs/data-formats.md``): ``{split}.tsv`` + optional name lists."""
    return _read_named_triples(source, "tsv", ".tsv")


def read_names(source: Path) -> Structure:
    """Name triples without id files (N-Triples-like dumps, several MMKG releases):
    ``{split}.txt`` as ``HEAD REL TAIL`` with an optional trailing `` .``, optional name lists."""
    return _read_named_triples(source, "names", ".txt")


READERS: dict[str, Callable[[Path], Structure]] = {
    "openke": read_openke, "momok": read_momok, "conve": read_conve, "tsv": read_tsv,
    "names": read_names}
#: The split files each format needs (what a folder in that layout must hold).
SPLIT_FILES: dict[str, tuple[str, ...]] = {
    "openke": tuple(f"{split}2id.txt" for split in SPLITS),
    "momok": tuple(f"{split}.txt" for split in SPLITS),
    "conve": tuple(f"{split}.txt" for split in SPLITS),
    "tsv": tuple(f"{split}.tsv" for split in SPLITS),
    "names": tuple(f"{split}.txt" for split in SPLITS),
}


def read_structure(source: Path, fmt: str) -> Structure:
    """Dispatch on the format name; an unknown format is a ``DataError`` listing the known ones."""
    if fmt not in READERS:
        raise DataError(f"unsupported format {quote(fmt)}; supported formats: "
                        f"{', '.join(FORMATS)}")
    return READERS[fmt](Path(source))


def safe_extract(archive: Path, target: Path) -> list[Path]:
    """Extract a tar archive into ``target``, refusing members that would land outside it
    (absolute paths, ``..``, links pointing out) - the classic tar path-traversal hole. A damaged
    or truncated archive is a ``DataError`` naming it."""
    target = Path(target).resolve()
    target.mkdir(parents=True, exist_ok=True)
    try:
        with tarfile.open(archive) as tar:
            members = tar.getmembers()
            _check_members(archive, members, target)
            return [_extract(tar, member, target) for member in members if member.isfile()]
    except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as error:
        raise in_file(archive, f"not a readable tar archive ({shorten(str(error))})") from None


def _check_members(archive: Path, members: list[tarfile.TarInfo], target: Path) -> None:
    """Every member is checked before anything is written."""
    for member in members:
        destination = (target / member.name).resolve()
        if os.path.commonpath([target, destination]) != str(target):
            raise in_file(archive, f"member {quote(member.name)} would be extracted outside "
                                   f"{target}; refusing to extract")
        if member.issym() or member.islnk():
            raise in_file(archive, f"member {quote(member.name)} is a link; refusing to extract")
        if not (member.isfile() or member.isdir()):
            raise in_file(archive, f"member {quote(member.name)} is not a regular file")


def _extract(tar: tarfile.TarFile, member: tarfile.TarInfo, target: Path) -> Path:
    destination = target / member.name
    destination.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(destination) as temporary, tar.extractfile(member) as src, \
            open(temporary, "wb") as dst:
        shutil.copyfileobj(src, dst)
    return destination
