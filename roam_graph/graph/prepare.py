"""Build a graph once from its files and cache it; later loads read the cache (< 2 s).

Cache layout under ``<data dir>/prepared/<graph>/``:
- ``graph.bin``   the DGL heterograph (``dgl.save_graphs``) with edge split/row and node features;
- ``meta.json``   names, the input fingerprint and provenance; written last, so it marks a
                  complete cache (it is deleted before a rebuild starts);
- ``texts.json``  entity texts, when the graph has them;
- ``text-<encoder>-<hash>.pt``  encoded text features keyed by the texts' hash, so a structure
                  rebuild does not re-encode text.

The fingerprint covers the preparation options and the name, size and modification time of every
file in the source folder: a second call with unchanged inputs is a no-op.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from roam_datasets.download import fetch_all, missing_files_message
from roam_datasets.registry import REGISTERED, SYNTHETIC, get_spec
from roam_graph.atomic import atomic_path, write_json
from roam_graph.data.errors import DataError, quote
from roam_graph.data.features import find_feature_files, load_feature_files
from roam_graph.data.formats import FORMATS, SPLIT_FILES, read_structure, safe_extract
from roam_graph.data.mmkg_data import MMKGData, Modality
from roam_graph.data.synthetic import SYNTHETIC_PRESETS, make_synthetic
from roam_graph.data.text import TEXT_ENCODERS, encode_texts, entity_texts
from roam_graph.graph import dgl_adapter
from roam_graph.graph.mmkg import MultimodalKG

#: Bump when the cache layout or a reader changes meaning: old caches are rebuilt.
CACHE_VERSION = 1
DATA_DIR_ENV = "ROAM_DATA_DIR"
#: Format of a graph of your own when none is given.
DEFAULT_FORMAT = "tsv"


@dataclass(frozen=True)
class PrepareOptions:
    graph: str
    source: Path | None = None
    data_dir: Path | None = None
    text_encoder: str = "none"
    download: bool = False      # fetch every registered file, verifying present ones too
    fetch_missing: bool = False  # first use: fetch the registered files missing from the data
    #                              dir's raw/<graph>/ (never into a --source folder)
    format: str | None = None
    seed: int = 0


@dataclass(frozen=True)
class Prepared:
    kg: MultimodalKG
    folder: Path
    rebuilt: bool


def default_data_dir() -> Path:
    """``$ROAM_DATA_DIR`` or ``./data``."""
    return Path(os.environ.get(DATA_DIR_ENV, "data"))


def prepare_graph(options: PrepareOptions, log: Callable[[str], None] = print) -> Prepared:
    """Return the graph, building and caching it only when its inputs changed."""
    check_text_encoder(options.text_encoder)
    fmt = graph_format(options.graph, options.format)
    data_dir = Path(options.data_dir) if options.data_dir else default_data_dir()
    folder = data_dir / "prepared" / options.graph
    source = _resolve_source(options, data_dir, fmt, log)
    fingerprint = _fingerprint(options, source, fmt)
    if is_fresh(folder, fingerprint):
        return Prepared(load_prepared(folder), folder, rebuilt=False)
    log(f"preparing graph {options.graph!r}" + (f" from {source}" if source else ""))
    data = _read_graph(options, fmt, source, folder, log)
    kg = MultimodalKG.from_data(data)
    save_prepared(kg, folder, fingerprint, source)
    log(f"cached at {folder}")
    return Prepared(kg, folder, rebuilt=True)


def check_text_encoder(name: str, origin: str = "--text-encoder") -> None:
    if name not in TEXT_ENCODERS:
        raise DataError(f"{origin}: unknown text encoder {quote(name)}; choose one of "
                        f"{', '.join(TEXT_ENCODERS)}")


def graph_format(graph: str, fmt: str | None, origin: str = "--format") -> str | None:
    """The format a graph's files are read in: a registered graph's own (another one is refused:
    its checks, file list and downloads are those of its format), the given one for a graph of
    your own (default ``tsv``), None for a generated graph. ``origin`` names where ``fmt`` came
    from (the flag, or the config file's key) in errors."""
    if fmt is not None and fmt not in FORMATS:
        raise DataError(f"{origin}: unknown format {quote(fmt)}; supported formats: "
                        f"{', '.join(FORMATS)}")
    if graph in SYNTHETIC:
        if fmt is not None:
            raise DataError(f"{origin}: graph {graph!r} is generated, it has no files to read "
                            f"in format {fmt!r}; leave the format out")
        return None
    spec = REGISTERED.get(graph)
    if spec is None:
        return fmt or DEFAULT_FORMAT
    if fmt is not None and fmt != spec.format:
        raise DataError(f"{origin}: format {fmt!r} contradicts graph {graph!r}, registered with "
                        f"format {spec.format!r} (datasets/registry.yaml); a copy in another "
                        f"layout needs a name of its own, e.g. --graph my-{graph} --format {fmt} "
                        f"--source DIR")
    return spec.format


def _resolve_source(options: PrepareOptions, data_dir: Path, fmt: str | None,
                    log: Callable[[str], None]) -> Path | None:
    """The folder holding the graph's files, downloading them first when asked."""
    if options.graph in SYNTHETIC:
        return None
    if options.graph not in REGISTERED:
        if options.source is None:
            get_spec(options.graph)  # raises with the list of known graphs
        source = Path(options.source)
        if not source.is_dir():
            raise DataError(f"--source {source}: no such folder")
        _check_split_files(source, fmt or DEFAULT_FORMAT, given=options.format is not None)
        return source
    spec = get_spec(options.graph)
    source = Path(options.source) if options.source else data_dir / "raw" / options.graph
    missing = [f for f in spec.files if not (source / f.name).is_file()]
    if options.download:
        fetch_all(spec.all_files, source)
    elif missing and options.fetch_missing and options.source is None:
        absent = [f for f in spec.all_files if not (source / f.name).is_file()]
        log(f"graph {options.graph!r}: first use, downloading {len(absent)} file(s) into "
            f"{source} (--no-download refuses)")
        fetch_all(absent, source)
    elif missing:
        raise DataError(missing_files_message(options.graph, missing, source))
    return source


def _check_split_files(source: Path, fmt: str, given: bool) -> None:
    """A graph of your own must hold its format's split files; without a format given, say
    that ``tsv`` was assumed and which formats exist (the usual cause is a missing --format)."""
    missing = [name for name in SPLIT_FILES[fmt] if not (source / name).is_file()]
    if missing:
        assumed = "" if given else (f" (no format given, so the default {fmt}; other "
                                    f"layouts: --format {'|'.join(FORMATS)})")
        raise DataError(f"--source {source}: {', '.join(missing)} not found, needed by format "
                        f"{fmt}{assumed}; see docs/data-formats.md")


def _fingerprint(options: PrepareOptions, source: Path | None, fmt: str | None) -> str:
    files = []
    if source is not None:
        for path in sorted(p for p in source.iterdir() if p.is_file()):
            stat = path.stat()
            files.append([path.name, stat.st_size, stat.st_mtime_ns])
    if options.graph in SYNTHETIC:  # a changed generator preset must invalidate the cache
        files.append(["preset", repr(SYNTHETIC_PRESETS[SYNTHETIC[options.graph]])])
    payload = {"cache_version": CACHE_VERSION, "graph": options.graph, "format": fmt,
               "text_encoder": options.text_encoder, "seed": options.seed,
               "source": str(source.resolve()) if source else None, "files": files}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def _read_graph(options: PrepareOptions, fmt: str | None, source: Path | None, folder: Path,
                log: Callable[[str], None]) -> MMKGData:
    if options.graph in SYNTHETIC:
        if options.text_encoder != "none":
            raise DataError("the synthetic graph has generated text features; "
                            "use --text-encoder none")
        return make_synthetic(SYNTHETIC[options.graph], seed=options.seed)
    assert source is not None and fmt is not None
    spec = REGISTERED.get(options.graph)
    if spec and spec.archive:
        with tempfile.TemporaryDirectory(prefix="roam-extract-") as extracted:
            safe_extract(source / spec.archive, Path(extracted))
            entities, relations, splits = read_structure(_archive_root(Path(extracted)), fmt)
    else:
        entities, relations, splits = read_structure(source, fmt)
    modalities = load_feature_files(find_feature_files(source, options.graph), entities)
    texts = entity_texts(options.graph, entities, source)
    if options.text_encoder != "none":
        if all(text is None for text in texts):
            raise DataError(f"graph {options.graph!r} has no entity names or descriptions to "
                            f"encode; provide text feature files in {source} instead")
        if "text" in modalities:
            log("note: --text-encoder replaces the text features found in the source folder")
        modalities["text"] = _encoded_texts(texts, options.text_encoder, folder, log)
    has_text = any(text is not None for text in texts)
    return MMKGData(options.graph, entities, relations, splits, modalities,
                    texts if has_text else None)


def _archive_root(extracted: Path) -> Path:
    """The folder inside an extracted archive that holds ``train.txt`` (top level or one down)."""
    candidates = [extracted, *sorted(p for p in extracted.iterdir() if p.is_dir())]
    for candidate in candidates:
        if (candidate / "train.txt").is_file():
            return candidate
    raise DataError(f"the archive has no train.txt at its top level or one folder down "
                    f"(found: {sorted(p.name for p in extracted.iterdir())})")


def _encoded_texts(texts: tuple[str | None, ...], encoder: str, folder: Path,
                   log: Callable[[str], None]) -> Modality:
    """Encode texts once; the result is cached by the hash of the texts and the encoder."""
    digest = hashlib.sha256(json.dumps(texts, ensure_ascii=False).encode()).hexdigest()[:16]
    cache = folder / f"text-{encoder}-{digest}.pt"
    if cache.is_file():
        stored = torch.load(cache, map_location="cpu", weights_only=True)
        return Modality(stored["values"], stored["present"])
    log(f"encoding {sum(t is not None for t in texts):,} entity texts with {encoder}")
    modality = encode_texts(texts, encoder=encoder, progress=True)
    with atomic_path(cache) as temporary:
        torch.save({"values": modality.values, "present": modality.present}, temporary)
    return modality


def save_prepared(kg: MultimodalKG, folder: Path, fingerprint: str, source: Path | None) -> None:
    """Write the cache; ``meta.json`` goes last, so an interrupted write is never taken as
    complete (the old ``meta.json`` is removed first)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "meta.json").unlink(missing_ok=True)
    dgl_adapter.save_graph(kg.graph, folder / "graph.bin")
    if kg.entity_texts is not None:
        write_json(folder / "texts.json", list(kg.entity_texts))
    else:
        (folder / "texts.json").unlink(missing_ok=True)
    write_json(folder / "meta.json", {
        "cache_version": CACHE_VERSION, "fingerprint": fingerprint, "name": kg.name,
        "source": str(source) if source else None, "entity_names": list(kg.entity_names),
        "relation_names": list(kg.relation_names), "modalities": list(kg.modality_names),
    })


def read_meta(folder: Path) -> dict | None:
    try:
        return json.loads((folder / "meta.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def is_fresh(folder: Path, fingerprint: str) -> bool:
    meta = read_meta(folder)
    return bool(meta and meta.get("fingerprint") == fingerprint
                and meta.get("cache_version") == CACHE_VERSION
                and (folder / "graph.bin").is_file())


def load_prepared(folder: Path) -> MultimodalKG:
    """Load a cached graph (no fingerprint check: ``prepare_graph`` does that)."""
    meta = read_meta(folder)
    if meta is None:
        raise DataError(f"{folder}: no prepared graph here (meta.json missing or unreadable); "
                        f"run python pipelines/prepare.py first")
    texts_path = folder / "texts.json"
    texts = json.loads(texts_path.read_text(encoding="utf-8")) if texts_path.is_file() else None
    graph = dgl_adapter.load_graph(folder / "graph.bin")
    return MultimodalKG(graph, meta["name"], meta["entity_names"], meta["relation_names"], texts)
