"""Queries and triples by name, from Python or from a TSV/CSV file, resolved to ids.

A row names ``(head, relation, tail)``; a query leaves exactly one end open (``None`` here,
``?`` or empty in a file). Names are resolved all at once: every unknown name is reported with
where it came from (``FILE:LINE`` or ``query N``), so a user fixes a file in one pass instead of
one error per run. With ``skip_unknown`` the rows that resolve are kept and the others listed.

File layout (docs/api.md): tab-separated, or comma-separated for ``.csv``; blank lines and lines
starting with ``#`` are ignored; an optional first line names the columns (``head``,
``relation``, ``tail`` in any order). Without it, three fields are ``head relation tail`` and two
are ``head relation`` (tail prediction) or, with ``target="head"``, ``relation tail``.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from roam_graph.data.errors import DataError
from roam_graph.data.textfile import read_text
from roam_graph.graph.mmkg import MultimodalKG

COLUMNS = ("head", "relation", "tail")
OPEN = ("?", "")          # how a file marks the end to predict
TARGETS = ("tail", "head")


@dataclass(frozen=True)
class NamedRow:
    """One input row: ``index`` counts rows as given (0-based), ``line`` is the file line."""
    index: int
    head: str | None
    relation: str
    tail: str | None
    line: int | None = None
    source: str | None = None

    @property
    def where(self) -> str:
        return f"{self.source}:{self.line}" if self.line is not None else f"query {self.index}"

    @property
    def target(self) -> str | None:
        """The open end (``tail`` or ``head``), None for a complete triple."""
        return "tail" if self.tail is None else "head" if self.head is None else None


@dataclass(frozen=True)
class Resolved:
    """Rows that resolved: ``ids [n, 3]`` in query form ``(anchor, relation', answer)`` where a
    head prediction ``(?, r, t)`` becomes the tail query ``(t, r^-1, ?)``; answer -1 when open."""
    rows: tuple[NamedRow, ...]
    ids: torch.Tensor
    skipped: tuple[str, ...]


def from_pairs(pairs: Iterable[Sequence[str]], target: str) -> list[NamedRow]:
    """``(head, relation)`` pairs (target tail) or ``(relation, tail)`` pairs (target head)."""
    rows = []
    for index, pair in enumerate(pairs):
        first, relation_or_tail = _pair(pair, index)
        rows.append(NamedRow(index, first, relation_or_tail, None) if target == "tail"
                    else NamedRow(index, None, first, relation_or_tail))
    return rows


def from_triples(triples: Iterable[Sequence[str]]) -> list[NamedRow]:
    rows = []
    for index, triple in enumerate(triples):
        if isinstance(triple, str) or len(triple) != 3:
            raise DataError(f"query {index}: expected (head, relation, tail), got {triple!r}")
        rows.append(NamedRow(index, *(str(name) for name in triple)))
    return rows


def _pair(pair: Sequence[str], index: int) -> tuple[str, str]:
    if isinstance(pair, str) or len(pair) != 2:
        raise DataError(f"query {index}: expected a pair of names, got {pair!r}")
    return str(pair[0]), str(pair[1])


def read_rows(path: Path, target: str | None = None, complete: bool = False) -> list[NamedRow]:
    """Rows of a query file (``complete=False``: each row leaves one end open) or of a triple
    file (``complete=True``). Format problems are collected and raised together."""
    path = Path(path)
    if target is not None and target not in TARGETS:
        raise DataError(f"target {target!r}: choose tail or head")
    lines = read_text(path).splitlines()  # not UTF-8: the line and byte offset are named
    delimiter = "," if path.suffix.lower() == ".csv" else "\t"
    quoting = csv.QUOTE_MINIMAL if delimiter == "," else csv.QUOTE_NONE  # names may hold quotes
    numbered = [(number, fields) for number, fields in enumerate(
        csv.reader(lines, delimiter=delimiter, quoting=quoting), start=1)
        if fields and any(f.strip() for f in fields) and not fields[0].startswith("#")]
    columns, numbered = _header(numbered)
    rows, problems = [], []
    for index, (number, fields) in enumerate(numbered):
        names = dict(zip(columns or _default_columns(len(fields), target), fields, strict=False))
        problem = _check(fields, columns, names, complete, target)
        if problem:
            problems.append(f"{path}:{number}: {problem}")
            continue
        head, tail = (None if names.get(k, "").strip() in OPEN else names[k].strip()
                      for k in ("head", "tail"))
        rows.append(NamedRow(index, head, names["relation"].strip(), tail, number, str(path)))
    if problems:
        raise DataError(f"{path}: {len(problems)} malformed line(s):\n  " + "\n  ".join(problems))
    if not rows:
        raise DataError(f"{path}: no {'triples' if complete else 'queries'} in the file")
    return rows


def _header(numbered: list[tuple[int, list[str]]]
            ) -> tuple[tuple[str, ...] | None, list[tuple[int, list[str]]]]:
    """Column order from a header line naming the columns, if the first line is one."""
    if numbered:
        first = tuple(f.strip().lower() for f in numbered[0][1])
        if set(first) <= set(COLUMNS) and len(set(first)) == len(first) >= 2 \
                and "relation" in first:
            return first, numbered[1:]
    return None, numbered


def _default_columns(count: int, target: str | None) -> tuple[str, ...]:
    if count == 2:
        return ("relation", "tail") if target == "head" else ("head", "relation")
    return COLUMNS


def _check(fields: list[str], columns: tuple[str, ...] | None, names: dict[str, str],
           complete: bool, target: str | None) -> str | None:
    """What is wrong with one line, or None."""
    expected = (len(columns),) if columns else (3,) if complete else (2, 3)
    if len(fields) not in expected:
        return (f"expected {' or '.join(map(str, expected))} fields, got {len(fields)} "
                f"({fields!r})")
    if not names.get("relation", "").strip():
        return "no relation"
    open_ends = [k for k in ("head", "tail") if names.get(k, "").strip() in OPEN]
    if complete:
        return f"the {open_ends[0]} is missing" if open_ends else None
    if len(open_ends) != 1:
        return "a query needs exactly one open end (? or empty): the head or the tail"
    if target is not None and open_ends[0] != target:
        return f"this query predicts the {open_ends[0]}, but the target is {target}"
    return None


def resolve(kg: MultimodalKG, rows: Sequence[NamedRow], skip_unknown: bool = False,
            hint: str = "skip_unknown=True predicts the rest") -> Resolved:
    """Ids of every row; unknown names are raised together (or skipped and listed)."""
    kept, ids, problems = [], [], []
    for row in rows:
        try:
            ids.append(_row_ids(kg, row))
            kept.append(row)
        except _Unknown as unknown:
            problems.append(f"{row.where}: " + "; ".join(unknown.args[0]))
    if problems and (not skip_unknown or not kept):
        advice = hint if kept else "no row is left to predict"
        raise DataError(f"{len(problems)} row(s) with unknown names, nothing was predicted "
                        f"({advice}):\n  " + "\n  ".join(problems))
    tensor = torch.tensor(ids, dtype=torch.int64).view(-1, 3)
    return Resolved(tuple(kept), tensor, tuple(problems))


class _Unknown(Exception):
    """Internal: the unknown names of one row."""


def _row_ids(kg: MultimodalKG, row: NamedRow) -> tuple[int, int, int]:
    """``(anchor, relation', answer)`` in tail-query form (see ``Resolved``)."""
    missing = []
    relation = _lookup(kg.relation_id, row.relation)   # NAME^-1: the reciprocal relation
    if relation is None:
        missing.append(f"unknown relation {row.relation!r}")
    ends = []
    for kind, name in (("head", row.head), ("tail", row.tail)):
        entity = -1 if name is None else _lookup(kg.entity_id, name)
        if entity is None:
            missing.append(f"unknown {kind} entity {name!r}")
        ends.append(entity)
    if missing:
        raise _Unknown(missing)
    if row.head is None:  # (?, r, t) -> (t, r^-1, ?)
        return ends[1], (relation + kg.num_relations) % (2 * kg.num_relations), -1
    return ends[0], relation, ends[1]


def _lookup(find: Callable[[str], int], name: str) -> int | None:
    try:
        return find(name)
    except DataError:
        return None
