"""Atomic file writes: write to ``NAME.part`` next to the target, rename only on success.

A run that dies (crash, Ctrl-C, full disk) leaves either the old file or the new one, never a
half-written one; the ``.part`` file is removed when the block raises.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


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
