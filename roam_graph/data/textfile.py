"""Reading the text files users give us (structure files, name lists, indexes, configs) as UTF-8.

Every text input is UTF-8; a byte that is not valid UTF-8 becomes a ``DataError`` naming the file,
the line, the byte offset and the byte, never a bare ``UnicodeDecodeError``. A UTF-8 byte order
mark is dropped and CRLF line ends are accepted, as the published benchmark files need.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from roam_graph.data.errors import DataError, at_line, in_file

ENCODING = "UTF-8"
BOM = b"\xef\xbb\xbf"


def not_utf8(path: Path, line_no: int, offset: int, byte: int) -> DataError:
    """The one message for undecodable text: where it is, which byte, what was expected."""
    return at_line(path, line_no, f"byte 0x{byte:02x} at byte offset {offset:,} is not valid "
                                  f"{ENCODING}; the file must be {ENCODING} text (convert it, "
                                  f"e.g. iconv -f LATIN1 -t {ENCODING})")


def _open_error(path: Path, error: OSError) -> DataError:
    if isinstance(error, FileNotFoundError):
        return in_file(path, "file not found")
    return in_file(path, f"cannot read ({error.strerror or type(error).__name__})")


def text_lines(path: Path) -> Iterator[tuple[int, str]]:
    """Every line of a UTF-8 file with its 1-based number, without its line end (LF or CRLF).
    Lines are decoded one at a time, so a large file is never held whole."""
    path = Path(path)
    try:
        handle = open(path, "rb")  # noqa: SIM115 (a with block follows; open errors come first)
    except OSError as error:
        raise _open_error(path, error) from None
    with handle:
        offset = 0
        for number, raw in enumerate(handle, start=1):
            start = len(BOM) if number == 1 and raw.startswith(BOM) else 0
            try:
                text = raw[start:].decode("utf-8")
            except UnicodeDecodeError as error:
                raise not_utf8(path, number, offset + start + error.start,
                               raw[start + error.start]) from None
            yield number, text.rstrip("\r\n")
            offset += len(raw)


def read_text(path: Path) -> str:
    """The whole of a UTF-8 file (BOM dropped), for formats parsed as one piece (YAML, JSON)."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as error:
        raise _open_error(path, error) from None
    start = len(BOM) if data.startswith(BOM) else 0
    try:
        return data[start:].decode("utf-8")
    except UnicodeDecodeError as error:
        position = start + error.start
        raise not_utf8(path, data.count(b"\n", 0, position) + 1, position,
                       data[position]) from None
