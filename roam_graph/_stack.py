"""Import guard: check the installed stack before DGL fails with a cryptic native-library error.

DGL 2.1.0 loads GraphBolt, whose native library exists only for torch 2.0.0-2.2.1, and imports
``torchdata.datapipes`` (removed in torchdata 0.10); numpy 2 breaks its compiled parts. The
versions are read from package metadata, so the check costs nothing and imports nothing.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from importlib import metadata

#: package -> (lowest supported, first unsupported, what to install)
SUPPORTED: dict[str, tuple[tuple[int, ...], tuple[int, ...], str]] = {
    "torch": ((2, 0, 0), (2, 2, 2), "torch==2.2.1"),
    "torchdata": ((0, 6, 0), (0, 10, 0), "torchdata==0.7.1"),
    "numpy": ((1, 21, 0), (2, 0, 0), "numpy==1.26.4"),
    "dgl": ((2, 1, 0), (2, 2, 0), "dgl==2.1.0"),
}


def _release(version: str) -> tuple[int, ...]:
    """``2.2.1+cu121`` -> ``(2, 2, 1)``; ``0.7.1rc1`` -> ``(0, 7, 1)``."""
    numbers = re.match(r"\d+(\.\d+)*", version)
    return tuple(int(p) for p in numbers.group(0).split(".")) if numbers else ()


def _installed(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def stack_problems(installed: Callable[[str], str | None] = _installed) -> list[str]:
    """One line per package that is missing or outside its supported range."""
    problems = []
    for package, (low, high, pin) in SUPPORTED.items():
        found = installed(package)
        if found is None:
            problems.append(f"{package}: not installed (need {pin})")
            continue
        release = _release(found)
        if not low <= release < high:
            low_s, high_s = ".".join(map(str, low)), ".".join(map(str, high))
            problems.append(f"{package}: found {found}, need >={low_s},<{high_s} ({pin})")
    return problems


def check_stack(installed: Callable[[str], str | None] = _installed) -> None:
    """Raise ``ImportError`` naming every version found and needed."""
    problems = stack_problems(installed)
    if problems:
        raise ImportError(
            "roam_graph needs the stack DGL 2.1.0 runs on:\n  " + "\n  ".join(problems)
            + "\nInstall it with `make test` (creates .venv) or "
            "`pip install -e .` in a Python 3.11 environment (README: Set-up)."
        )
