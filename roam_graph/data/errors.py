"""One error type for every bad input a user can hit, with the file, line or value in the message."""

from __future__ import annotations

from pathlib import Path


class DataError(ValueError):
    """Raised for malformed or inconsistent input data. The message names the file and line or the
    offending value, so the user can fix the input without reading our code."""


def at_line(path: str | Path, line_no: int, problem: str) -> DataError:
    """``DataError`` pointing at ``path:line_no`` (1-based, as editors count)."""
    return DataError(f"{path}:{line_no}: {problem}")


def in_file(path: str | Path, problem: str) -> DataError:
    """``DataError`` about a whole file."""
    return DataError(f"{path}: {problem}")
