"""The documentation points only at what exists: every relative link of README.md and docs/
resolves to a file (and to a heading of it, for a link with #anchor), every docs/*.md a file
of the repository names exists, and no text cites notes that are not in the repository."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
MARKDOWN = [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]
#: Text files that may name a docs/ page: documentation, configs, code, tests, packaging.
TEXT = [*MARKDOWN, *sorted((REPO / "configs").rglob("*.yaml")), REPO / "pyproject.toml",
        *(path for folder in ("roam_graph", "pipelines", "bench", "tests", "datasets")
          for path in sorted((REPO / folder).rglob("*.py")))]
LINK = re.compile(r"\]\(([^)\s]+)\)")
DOC_PATH = re.compile(r"\bdocs/[\w./-]+\.md\b")


def slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    text = path.read_text(encoding="utf-8")
    return {slug(line.lstrip("#")) for line in text.splitlines() if line.startswith("#")}


def relative_links(path: Path) -> list[str]:
    text = re.sub(r"```.*?```", "", path.read_text(encoding="utf-8"), flags=re.DOTALL)
    return [link for link in LINK.findall(text)
            if not re.match(r"[a-z]+:", link)]   # http:, https:, mailto: are not files


@pytest.mark.parametrize("path", MARKDOWN, ids=lambda p: str(p.relative_to(REPO)))
def test_every_relative_link_resolves_to_a_file_and_heading(path: Path) -> None:
    for link in relative_links(path):
        target, _, anchor = link.partition("#")
        resolved = (path.parent / target).resolve() if target else path
        assert resolved.exists(), f"{path.relative_to(REPO)}: link {link!r}: no such file"
        if anchor and resolved.suffix == ".md":
            assert anchor in anchors(resolved), \
                f"{path.relative_to(REPO)}: link {link!r}: no heading with that anchor"


def test_every_docs_page_a_file_names_exists() -> None:
    missing = sorted({f"{path.relative_to(REPO)}: {name}" for path in TEXT
                      for name in DOC_PATH.findall(path.read_text(encoding="utf-8"))
                      if not (REPO / name).is_file()})
    assert not missing, missing


def test_no_document_cites_notes_outside_the_repository() -> None:
    documents = [*MARKDOWN, *sorted((REPO / "configs").rglob("*.yaml")), REPO / "pyproject.toml",
                 *(path for folder in ("roam_graph", "bench", "pipelines")
                   for path in sorted((REPO / folder).rglob("*.py")))]
    citing = [str(path.relative_to(REPO)) for path in documents
              if re.search(r"ANCHORS|DEVELOPERS\.md", path.read_text(encoding="utf-8"))]
    assert not citing, f"these cite ANCHORS or DEVELOPERS.md, which are not in the repository: " \
                       f"{citing}; state the fact itself instead"
