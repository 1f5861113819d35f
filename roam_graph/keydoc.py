"""A configuration key's documentation lives on its dataclass field: what it means, the paper's
symbol for it, and the values it allows. ``docs/configuration.md`` is rendered from these
(``python -m roam_graph.cli.configdoc``), and a test fails when a key has none, so a new key cannot
be added without saying what it is."""

from __future__ import annotations

from dataclasses import Field, dataclass, field, fields
from typing import Any

#: The ``Field.metadata`` entry that holds a key's ``KeyDoc``.
METADATA = "doc"
#: The ranges of numeric keys, in the words the documentation uses (a test checks each key's
#: range against the configuration's own checks).
AT_LEAST_1 = ">= 1"
NON_NEGATIVE = ">= 0"
POSITIVE = "> 0"
PROBABILITY = "[0, 1)"


@dataclass(frozen=True)
class KeyDoc:
    meaning: str
    symbol: str = ""                  # the paper's symbol or equation, "" where it has none
    choices: tuple[str, ...] = ()     # the allowed values of a key that takes names
    allowed: str = ""                 # the allowed values in words (ranges, formats)


def documented(default: Any, meaning: str, *, symbol: str = "", choices: tuple[str, ...] = (),
               allowed: str = "") -> Any:
    """A dataclass field with default ``default``, documented (``KeyDoc``)."""
    return field(default=default,
                 metadata={METADATA: KeyDoc(meaning, symbol, tuple(choices), allowed)})


def key_doc(f: Field) -> KeyDoc | None:
    """The documentation of a field made by ``documented``, None for any other field."""
    return f.metadata.get(METADATA)


def keys_at_least_1(cls: type) -> tuple[str, ...]:
    """The keys of dataclass ``cls`` documented as counts or sizes (``>= 1``), which its checks
    hold to that range."""
    return tuple(f.name for f in fields(cls)
                 if (doc := key_doc(f)) is not None and doc.allowed == AT_LEAST_1)
