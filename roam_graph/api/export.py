"""Write a trained model's embeddings in the layout DGL-KE users know.

    OUT/<graph>_<model>_entity.npy          float32 [entities, d] (one file per table,
    OUT/<graph>_<model>_relation.npy         api/embeddings.py lists them)
    OUT/<graph>_<model>_entity_group0.npy    ROAM: per expert group
    OUT/entities.tsv, OUT/relations.tsv      "id<TAB>name", row i of every table is id i
    OUT/config.json                          the run's resolved configuration
    OUT/embeddings.json                      what each file holds: rows, shape, description

``format="tsv"`` writes each table as ``<stem>.tsv`` (tab-separated vectors, no header) and the
names once more as ``entity_metadata.tsv`` / ``relation_metadata.tsv`` (one name per line), the
two files the TensorBoard embedding projector loads. The folder appears complete or not at all
(``atomic_directory``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from roam_graph.api.embeddings import EmbeddingTable
from roam_graph.atomic import atomic_directory
from roam_graph.data.errors import DataError

FORMATS = ("npy", "tsv")


def export_tables(tables: Sequence[EmbeddingTable], out: Path, prefix: str,
                  names: dict[str, Sequence[str]], config: dict[str, Any],
                  format: str = "npy", overwrite: bool = False) -> list[Path]:
    """Write ``tables`` to ``out`` (module docstring); ``names`` maps ``entities`` and
    ``relations`` to the row names. Returns the files written, as they are in ``out``."""
    if format not in FORMATS:
        raise DataError(f"--format {format!r}: choose one of {', '.join(FORMATS)}")
    for kind, values in names.items():
        _check_names(kind, values)
    manifest: dict[str, Any] = {"format": format, "files": {}}
    with atomic_directory(out, overwrite) as staging:
        for kind, singular in (("entities", "entity"), ("relations", "relation")):
            (staging / f"{kind}.tsv").write_text("".join(f"{i}\t{n}\n" for i, n in
                                                       enumerate(names[kind])), encoding="utf-8")
            if format == "tsv":
                metadata = "".join(f"{n}\n" for n in names[kind])
                (staging / f"{singular}_metadata.tsv").write_text(metadata, encoding="utf-8")
        for table in tables:
            if len(table.values) != len(names[table.rows]):
                raise DataError(f"table {table.name}: {len(table.values)} rows for "
                                f"{len(names[table.rows])} {table.rows}")
            file = f"{prefix}_{table.name}.{format}"
            if format == "npy":
                np.save(staging / file, table.values)
            else:
                np.savetxt(staging / file, table.values, delimiter="\t", fmt="%.7g")
            manifest["files"][file] = {"rows": table.rows, "shape": list(table.values.shape),
                                       "description": table.description}
        (staging / "config.json").write_text(json.dumps(config, indent=1), encoding="utf-8")
        (staging / "embeddings.json").write_text(json.dumps(manifest, indent=1),
                                                 encoding="utf-8")
    return sorted(out.iterdir())


def _check_names(kind: str, names: Sequence[str]) -> None:
    """Names go into one-name-per-line files: a tab or newline inside one would shift rows."""
    bad = [n for n in names if "\t" in n or "\n" in n or "\r" in n]
    if bad:
        raise DataError(f"{len(bad)} {kind} name(s) hold a tab or line break (first: {bad[0]!r}); "
                        "they cannot be written one per line")
