"""Download published files and verify their sha256; never leave a half-written file behind."""

from __future__ import annotations

import hashlib
import urllib.request
from collections.abc import Sequence
from pathlib import Path

from tqdm.auto import tqdm

from roam_datasets.registry import RemoteFile
from roam_graph.atomic import atomic_path
from roam_graph.data.errors import DataError


def sha256_of(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def verify_checksum(path: Path, expected: str | None) -> None:
    """Raise ``DataError`` naming the file and both digests when the content is not the
    published one (``expected`` None: nothing is known, nothing to check)."""
    if expected is None:
        return
    actual = sha256_of(path)
    if actual != expected:
        raise DataError(f"{path}: checksum mismatch: expected sha256 {expected}, got {actual}; "
                        f"the file is corrupt or not the published version")


def fetch_file(remote: RemoteFile, folder: Path, timeout: float = 60.0) -> Path:
    """Download ``remote`` into ``folder`` unless a verified copy is there already.

    The body goes to ``NAME.part`` and is renamed only after its checksum matched."""
    folder.mkdir(parents=True, exist_ok=True)
    destination = folder / remote.name
    if destination.is_file():
        verify_checksum(destination, remote.sha256)
        return destination
    try:
        with atomic_path(destination) as temporary:
            with urllib.request.urlopen(remote.url, timeout=timeout) as response, \
                    open(temporary, "wb") as out, \
                    tqdm(total=_length(response), unit="B", unit_scale=True, desc=remote.name,
                         disable=None, leave=False) as bar:   # disable=None: shown on a tty
                while block := response.read(1 << 20):
                    out.write(block)
                    bar.update(len(block))
            verify_checksum(temporary, remote.sha256)
    except OSError as error:
        raise DataError(f"could not download {remote.name} from {remote.url}: {error}") from None
    except DataError as error:
        raise DataError(f"downloaded from {remote.url}: {error}") from None
    return destination


def _length(response: object) -> int | None:
    """The body's size from Content-Length, None when the server does not say."""
    length = getattr(response, "headers", {}).get("Content-Length")
    return int(length) if length and str(length).isdigit() else None


def fetch_all(remotes: Sequence[RemoteFile], folder: Path) -> list[Path]:
    return [fetch_file(remote, folder) for remote in remotes]


def missing_files_message(graph: str, remotes: Sequence[RemoteFile], folder: Path) -> str:
    """What to tell a user who has neither the files nor a network."""
    lines = [f"graph {graph!r}: these files are missing from {folder}:"]
    lines += [f"  {r.name}  <- {r.url}" for r in remotes]
    lines.append(f"Download them there (roam prepare --graph {graph} --download; roam run "
                 "does it on first use unless --no-download) or point --source at a folder "
                 "that has them.")
    return "\n".join(lines)
