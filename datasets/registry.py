"""The benchmark registry: ``registry.yaml`` (data) as typed specs."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml

from roam_graph.data.errors import DataError

REGISTRY_FILE = Path(__file__).with_name("registry.yaml")
#: Generated graphs (no files): name -> synthetic preset.
SYNTHETIC: dict[str, str] = {"synthetic": "default", "synthetic-tiny": "tiny",
                             "synthetic-routing": "routing"}


@dataclass(frozen=True)
class RemoteFile:
    name: str
    url: str
    sha256: str | None


@dataclass(frozen=True)
class DatasetSpec:
    """One registered benchmark: its reader format, required files and optional side files."""

    name: str
    title: str
    format: str
    files: tuple[RemoteFile, ...]
    side_files: tuple[RemoteFile, ...] = ()
    archive: str | None = None
    manual_features: dict[str, str] = field(default_factory=dict)

    @property
    def all_files(self) -> tuple[RemoteFile, ...]:
        return self.files + self.side_files


def _remote_files(entries: dict | None) -> tuple[RemoteFile, ...]:
    return tuple(RemoteFile(name, e["url"], e.get("sha256")) for name, e in (entries or {}).items())


def load_registry(path: Path = REGISTRY_FILE) -> dict[str, DatasetSpec]:
    with open(path, encoding="utf-8") as handle:
        raw = yaml.safe_load(handle)
    return {name: DatasetSpec(name=name, title=entry["title"], format=entry["format"],
                              files=_remote_files(entry.get("files")),
                              side_files=_remote_files(entry.get("side_files")),
                              archive=entry.get("archive"),
                              manual_features=dict(entry.get("manual_features") or {}))
            for name, entry in raw.items()}


REGISTERED: dict[str, DatasetSpec] = load_registry()


def get_spec(name: str) -> DatasetSpec:
    """The spec of a registered benchmark; unknown names list the known ones."""
    if name not in REGISTERED:
        known = ", ".join([*REGISTERED, *SYNTHETIC])
        raise DataError(f"unknown graph {name!r}; registered graphs: {known} "
                        f"(a graph of your own: pass --source DIR, see docs/data-formats.md)")
    return REGISTERED[name]
