"""docs/configuration.md documents every configuration key: it is the rendering of the keys'
documentation, kept beside the dataclass fields (roam_graph/keydoc.py), and the ranges and
choices it states are those the configuration enforces."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from roam_graph.cli.configdoc import COMMAND, DOC, render, section_table
from roam_graph.data.errors import DataError
from roam_graph.keydoc import AT_LEAST_1, NON_NEGATIVE, POSITIVE, PROBABILITY, documented
from roam_graph.training.config import key_docs, load_config

#: A documented range -> (values it refuses, a value it accepts).
RANGES = {AT_LEAST_1: ((0, -3), 1), NON_NEGATIVE: ((-1,), 0), POSITIVE: ((0, -1e-3), 1e-6),
          PROBABILITY: ((1, -0.1), 0)}


def test_every_key_has_a_meaning() -> None:
    missing = [key for key, doc in key_docs().items() if doc is None or not doc.meaning.strip()]
    assert not missing, (f"configuration keys without documentation: {missing}; declare each "
                         f"with roam_graph.keydoc.documented(default, meaning, ...), then run "
                         f"`{COMMAND}`")


def test_the_committed_file_is_the_rendering_of_the_code() -> None:
    committed = DOC.read_text(encoding="utf-8") if DOC.is_file() else ""
    assert committed == render(), f"{DOC} is out of date: run `{COMMAND}` and commit the file"


def test_the_file_has_one_row_per_key_in_its_section() -> None:
    text = DOC.read_text(encoding="utf-8")
    sections = {"": "## Top level", "model": "## `model:`", "training": "## `training:`",
                "evaluation": "## `evaluation:`"}
    for key in key_docs():
        section, _, name = key.rpartition(".")
        start = text.index(sections[section])
        block = text[start:text.index("\n## ", start + 1)]
        assert block.count(f"\n| `{name}` |") == 1, key


def test_a_key_without_documentation_stops_the_rendering() -> None:
    @dataclass(frozen=True)
    class Extra:
        described: int = documented(1, "a documented key")
        bare: int = 2

    with pytest.raises(ValueError, match=r"extra\.bare has no documentation"):
        section_table("extra", Extra)


@pytest.mark.parametrize("key", [k for k, d in key_docs().items() if d.allowed in RANGES])
def test_a_documented_range_is_the_range_enforced(key: str) -> None:
    refused, accepted = RANGES[key_docs()[key].allowed]
    load_config(None, {key: accepted}, graph="synthetic-tiny")
    for value in refused:
        with pytest.raises(DataError, match=key.rpartition(".")[2]):
            load_config(None, {key: value}, graph="synthetic-tiny")


@pytest.mark.parametrize("key", [k for k, d in key_docs().items() if d.choices])
def test_documented_choices_are_the_values_accepted(key: str) -> None:
    graph = "my-graph" if key == "format" else "synthetic-tiny"   # a generated graph has no format
    for choice in key_docs()[key].choices:
        load_config(None, {key: choice}, graph=graph)
    with pytest.raises(DataError):
        load_config(None, {key: "no-such-choice"}, graph=graph)
