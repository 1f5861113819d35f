"""One error type for every bad input a user can hit, with the file, line or value in the message."""

from __future__ import annotations

from pathlib import Path

#: At most this many characters of an offending value go into a message: a 10 MB line without a
#: separator must not become 10 MB on stderr, and 200 characters show enough to find it.
QUOTE_LIMIT = 200


class DataError(ValueError):
    """Raised for malformed or inconsistent input data. The message names the file and line or the
    offending value, so the user can fix the input without reading our code."""


def at_line(path: str | Path, line_no: int, problem: str) -> DataError:
    """``DataError`` pointing at ``path:line_no`` (1-based, as editors count)."""
    return DataError(f"{path}:{line_no}: {problem}")


def in_file(path: str | Path, problem: str) -> DataError:
    """``DataError`` about a whole file."""
    return DataError(f"{path}: {problem}")


def quote(value: object, limit: int = QUOTE_LIMIT) -> str:
    """``repr(value)`` for a message, cut to ``limit`` characters of the value; a longer value
    shows its start and its full length, e.g. ``'abc…' (10,485,760 characters)``."""
    if isinstance(value, str):
        if len(value) <= limit:
            return repr(value)
        return f"{value[:limit]!r}… ({len(value):,} characters)"
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}… ({len(text):,} characters)"


def shorten(text: str, limit: int = QUOTE_LIMIT) -> str:
    """Free text (an exception's message) cut to ``limit`` characters, saying so."""
    return text if len(text) <= limit else f"{text[:limit]}… ({len(text):,} characters)"
