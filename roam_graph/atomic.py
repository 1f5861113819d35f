"""Atomic file writes: write to ``NAME.part`` next to the target, rename only on success.

A run that dies (crash, Ctrl-C, full disk) leaves either the old file or the new one, never a
half-written one; the ``.part`` file is removed when the block raises.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from roam_graph.data.errors import DataError


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path to write; on normal exit it replaces ``path`` atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".part")
    try:
        yield temporary
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def write_json(path: Path, payload: Any) -> None:
    with atomic_path(path) as temporary:
        temporary.write_text(json.dumps(payload, ensure_ascii=False, indent=1), encoding="utf-8")


@contextmanager
def atomic_directory(path: Path, overwrite: bool = False) -> Iterator[Path]:
    """Yield an empty staging folder ``NAME.part`` to fill; on normal exit it becomes ``path``.

    A folder that dies half-filled is removed, so ``path`` holds a complete result or nothing.
    An existing non-empty ``path`` is refused unless ``overwrite`` (then replaced only once the
    new content is complete)."""
    path = Path(path)
    if path.exists() and not overwrite and (not path.is_dir() or any(path.iterdir())):
        raise DataError(f"{path}: exists and is not empty; choose another folder or overwrite")
    staging = path.with_name(path.name + ".part")
    shutil.rmtree(staging, ignore_errors=True)   # left by a run killed without clean-up
    staging.mkdir(parents=True)
    try:
        yield staging
        if path.exists():
            old = path.with_name(path.name + ".old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(path, old)
            os.replace(staging, path)
            shutil.rmtree(old)
        else:
            os.replace(staging, path)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def write_table(path: Path, frame: Any) -> None:
    """A pandas DataFrame as CSV (``.csv``) or tab-separated text (any other suffix), atomically,
    without the index; missing values as empty cells."""
    separator = "," if Path(path).suffix.lower() == ".csv" else "\t"
    with atomic_path(path) as temporary:
        frame.to_csv(temporary, sep=separator, index=False)
