"""Per-entity feature files (image / text) in the published MMKGC layouts -> ``Modality``.

Layouts (details, provenance and how sure we are: ``docs/feature-files.md``):

* ``generic``: ``<modality>.npy`` / ``.pt`` / ``.pth`` matrix ``[entities, width]`` in the order of
  the graph's entity file, optional ``<modality>_present.npy`` bool mask.
* ``momok``: ``img_features.pth`` / ``text_features.pth`` (zjukg/MoMoK), tensor in entity2id order.
* ``native``: ``<DATA>-visual.pth`` / ``<DATA>-textual.pth`` (zjukg/NATIVE), tensor in entity2id
  order.
* ``mmkb``: ``DB15K_ImageData.h5`` / ``FB15K_ImageData.h5`` (mniepert/mmkb): one HDF5 dataset per
  image id (``DBIMG00001``), mapped to entities by ``*_ImageIndex.txt``.

Without a mask file an all-zero row means "this entity lacks the modality". Files are never
unpickled beyond ``torch.load(weights_only=True)`` / ``numpy.load(allow_pickle=False)``.
"""

from __future__ import annotations

import logging
import pickle
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import h5py
import numpy as np
import torch

from roam_graph.data.errors import at_line, in_file, quote, shorten
from roam_graph.data.mmkg_data import Modality, check_modality
from roam_graph.data.textfile import text_lines

log = logging.getLogger(__name__)

MATRIX_SUFFIXES: tuple[str, ...] = (".npy", ".pt", ".pth")
MODALITIES: tuple[str, ...] = ("image", "text")
Layout = Literal["generic", "momok", "native", "mmkb"]
#: When several layouts exist for one modality, the first of this order wins.
LAYOUT_PREFERENCE: tuple[Layout, ...] = ("generic", "momok", "native", "mmkb")

MOMOK_NAMES: dict[str, str] = {"image": "img_features.pth", "text": "text_features.pth"}
NATIVE_SUFFIXES: dict[str, str] = {"image": "-visual.pth", "text": "-textual.pth"}
#: Registry graph name -> file-name prefix used by the NativE feature release.
NATIVE_PREFIXES: dict[str, str] = {
    "db15k": "DB15K", "mkg-w": "MKG-W", "mkg-y": "MKG-Y", "kvc16k": "Kuai16K",
}
#: Registry graph name -> MMKB prefix of ``<P>_ImageData.h5`` and ``<P>_ImageIndex.txt``.
MMKB_PREFIXES: dict[str, str] = {"db15k": "DB15K", "fb15k237img": "FB15K"}

_SUPPORTED = "supported: .npy, .pt, .pth holding one matrix [entities, width]"


@dataclass(frozen=True)
class FeatureFile:
    """One feature file found for a modality, and how to read it."""

    modality: str
    path: Path
    layout: Layout
    index_path: Path | None = None
    present_path: Path | None = None


# --------------------------------------------------------------------------- matrices


def read_feature_matrix(path: Path, num_entities: int,
                        present_path: Path | None = None) -> Modality:
    """Read a ``[num_entities, width]`` matrix from ``.npy`` / ``.pt`` / ``.pth`` as a ``Modality``.

    Row ``i`` belongs to entity id ``i``. With ``present_path`` (a ``.npy`` bool / 0-1 vector) the
    mask decides presence and rows it marks absent are zeroed; without it, all-zero rows are absent.

    Raises:
        DataError: naming the file for an unsupported extension, a file torch refuses to load with
            ``weights_only=True``, a non-2-D or non-numeric array, a row count different from
            ``num_entities``, a bad mask, or NaN/inf in a present row (with row and column).
    """
    path = Path(path)
    values = _load_matrix(path)
    if values.shape[0] != num_entities:
        raise in_file(path, f"{values.shape[0]} rows but the graph has {num_entities} entities "
                            "(expected one row per entity, in entity-id order)")
    if present_path is None:
        present = (values != 0).any(dim=1)
    else:
        present = _load_mask(Path(present_path), num_entities)
        values = values.masked_fill(~present.unsqueeze(1), 0.0)
    bad = present & ~torch.isfinite(values).all(dim=1)
    if bool(bad.any()):
        row = int(bad.nonzero()[0, 0])
        column = int((~torch.isfinite(values[row])).nonzero()[0, 0])
        raise in_file(path, f"row {row} (entity {row}) has {float(values[row, column])} in column "
                            f"{column}; features of present entities must be finite")
    modality = Modality(values=values.contiguous(), present=present)
    check_modality(path.stem, modality, num_entities, origin=str(path))
    return modality


def _load_matrix(path: Path) -> torch.Tensor:
    suffix = path.suffix.lower()
    if suffix not in MATRIX_SUFFIXES:
        raise in_file(path, f"unsupported feature file extension {path.suffix!r}; {_SUPPORTED}")
    if not path.is_file():
        raise in_file(path, "feature file not found")
    if suffix == ".npy":
        try:
            obj: object = np.load(path, allow_pickle=False)
        except Exception as exc:  # noqa: BLE001 (a damaged header fails in numpy's parser:
            # SyntaxError, TokenError, ...; whatever it raises, the file is what is wrong)
            raise in_file(path, f"not a readable .npy array without pickle "
                                f"({shorten(str(exc))})") from exc
    else:
        obj = _torch_load(path)
    if isinstance(obj, np.ndarray):
        if obj.dtype.kind not in "fiu":
            raise in_file(path, f"array dtype {obj.dtype} is not numeric; {_SUPPORTED}")
        tensor = torch.from_numpy(np.asarray(obj, dtype=np.float32))
    elif isinstance(obj, torch.Tensor):
        if obj.dtype.is_complex or obj.dtype == torch.bool:
            raise in_file(path, f"tensor dtype {obj.dtype} is not real-valued; {_SUPPORTED}")
        tensor = obj.detach().to(torch.float32)
    else:
        what = type(obj).__name__
        if isinstance(obj, Mapping):
            what += f" with keys {sorted(map(str, obj))[:5]}"
        raise in_file(path, f"holds a {what}, not a tensor or array; {_SUPPORTED}")
    if tensor.dim() != 2:
        raise in_file(path, f"expected a 2-D matrix [entities, width], got shape "
                            f"{tuple(tensor.shape)} ({tensor.dim()}-D); {_SUPPORTED}")
    if tensor.shape[1] == 0:
        raise in_file(path, "feature matrix has width 0")
    return tensor


def _torch_load(path: Path) -> object:
    """``torch.load(weights_only=True)``; anything it refuses becomes a ``DataError``."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        detail = str(exc)
        if "Weights only load failed" not in detail:
            raise in_file(path, f"not a torch.save file ({shorten(detail)})") from exc
        reason = detail.split("WeightsUnpickler error:")[-1].strip()
        hint = ""
        if "numpy" in reason:
            hint = (" It holds a pickled numpy array, which torch's weights_only loader refuses; "
                    "if you trust the file, convert it once, e.g. numpy.save('image.npy', "
                    "torch.load('<file>', weights_only=False)), and use the .npy (generic "
                    "layout: image.npy / text.npy).")
        raise in_file(path, "torch.load(weights_only=True) refused the file: it contains pickled "
                            f"Python objects, not only tensors ({shorten(reason)}).{hint} "
                            f"Feature files must hold a plain tensor; {_SUPPORTED}") from exc
    except Exception as exc:  # noqa: BLE001 (damaged zip or pickle data fails in many ways)
        raise in_file(path, f"torch.load(weights_only=True) could not read it ({shorten(str(exc))})") from exc


def _load_mask(path: Path, num_entities: int) -> torch.Tensor:
    if path.suffix.lower() != ".npy":
        raise in_file(path, "presence mask must be a .npy file holding a bool vector")
    try:
        mask = np.load(path, allow_pickle=False)
    except Exception as exc:  # noqa: BLE001 (as in _load_matrix)
        raise in_file(path, f"not a readable .npy presence mask ({shorten(str(exc))})") from exc
    if mask.ndim != 1 or mask.shape[0] != num_entities:
        raise in_file(path, f"presence mask must be a vector of {num_entities} entries (one per "
                            f"entity), got shape {tuple(mask.shape)}")
    if mask.dtype != np.bool_:
        not_01 = ~np.isin(mask, (0, 1)) if mask.dtype.kind in "iuf" else np.ones(mask.shape, bool)
        if not_01.any():
            row = int(np.flatnonzero(not_01)[0])
            raise in_file(path, f"presence mask must be bool or 0/1; entry {row} is {mask[row]!r}")
    return torch.from_numpy(mask.astype(np.bool_))


# --------------------------------------------------------------------------- MMKB h5


def read_image_index(index_path: Path) -> dict[str, list[str]]:
    """Parse an MMKB ``*_ImageIndex.txt`` (``<entity name><TAB><image id>`` lines).

    Returns bare entity name (angle brackets removed) -> image ids in file order; an entity can be
    listed more than once (DB15K lists 4 entities twice). Blank lines are skipped, CRLF accepted.
    """
    index_path = Path(index_path)
    keys: dict[str, list[str]] = {}
    for line_no, raw in text_lines(index_path):
        line = raw.strip()
        if not line:
            continue
        fields = [field.strip() for field in (line.split("\t") if "\t" in line else line.split())]
        if len(fields) != 2 or not all(fields):
            raise at_line(index_path, line_no,
                          f"expected '<entity name><TAB><image id>', got {quote(line)}")
        keys.setdefault(_bare(fields[0]), []).append(fields[1])
    return keys


def read_mmkb_h5(h5_path: Path, index_path: Path, entity_names: Sequence[str]) -> Modality:
    """Read MMKB VGG16 image features (one dataset per image id) in the order of ``entity_names``.

    An entity is absent (zero row) if the index does not list it or none of its image ids is in
    the HDF5 file; if it is listed with several image ids, the first one present in the file is
    used. Names match with or without surrounding angle brackets.
    """
    h5_path, index_path = Path(h5_path), Path(index_path)
    keys_by_name = read_image_index(index_path)
    num_entities = len(entity_names)
    rows: dict[int, np.ndarray] = {}
    width: int | None = None
    try:
        handle = h5py.File(h5_path, "r")
    except OSError as exc:
        raise in_file(h5_path, f"not a readable HDF5 file ({shorten(str(exc))})") from exc
    with handle as h5:
        for row, name in enumerate(entity_names):
            for key in keys_by_name.get(_bare(name), ()):
                if key not in h5:
                    continue
                vector = _h5_vector(h5_path, h5, key)
                if width is None:
                    width = vector.shape[0]
                elif vector.shape[0] != width:
                    raise in_file(h5_path, f"dataset {key!r} has {vector.shape[0]} values, earlier "
                                           f"ones have {width}")
                if not np.isfinite(vector).all():
                    raise in_file(h5_path, f"dataset {key!r} (entity {row}, {name!r}) contains "
                                           "NaN or inf")
                rows[row] = vector
                break
    if width is None:
        raise in_file(h5_path, f"none of the {num_entities} entities has a vector: no image id "
                               f"that {index_path} lists for them is a dataset in this file")
    values = torch.zeros(num_entities, width, dtype=torch.float32)
    present = torch.zeros(num_entities, dtype=torch.bool)
    for row, vector in rows.items():
        values[row] = torch.from_numpy(vector)
        present[row] = True
    modality = Modality(values=values, present=present)
    check_modality("image", modality, num_entities, origin=str(h5_path))
    return modality


def _h5_vector(h5_path: Path, h5: h5py.File, key: str) -> np.ndarray:
    node = h5[key]
    if not isinstance(node, h5py.Dataset):
        raise in_file(h5_path, f"{key!r} is an HDF5 group; expected a dataset holding one vector")
    array = np.asarray(node[()])
    if array.dtype.kind not in "fiu":
        raise in_file(h5_path, f"dataset {key!r} has non-numeric dtype {array.dtype}")
    if array.ndim == 0 or array.size == 0 or sum(dim > 1 for dim in array.shape) > 1:
        raise in_file(h5_path, f"dataset {key!r} has shape {array.shape}; expected one feature "
                               "vector ([width] or [1, width])")
    return array.reshape(-1).astype(np.float32)


def _bare(name: str) -> str:
    name = name.strip()
    return name[1:-1] if len(name) > 1 and name[0] == "<" and name[-1] == ">" else name


# --------------------------------------------------------------------------- discovery


def find_feature_files(source: Path, graph: str, *,
                       index_dir: Path | None = None) -> dict[str, FeatureFile]:
    """Find ``image`` / ``text`` feature files for ``graph`` in the folder ``source``.

    Looks (non-recursively) for the generic, MoMoK, NativE and MMKB names; when one modality has
    several, ``LAYOUT_PREFERENCE`` (generic > MoMoK > NativE > MMKB) decides. The MMKB
    ``*_ImageIndex.txt`` is looked for in ``source``, then in ``index_dir`` (e.g. the benchmark's
    folder). Modalities with no file are left out of the result.

    Raises:
        DataError: ``source`` is not a folder; two generic files for one modality; an MMKB h5 is
            the only image file but its index is missing.
    """
    source = Path(source)
    if not source.is_dir():
        raise in_file(source, "feature source folder not found")
    found: dict[str, FeatureFile] = {}
    for modality in MODALITIES:
        candidates = _candidates(source, graph, modality, index_dir)
        if candidates:
            found[modality] = candidates[0]
            for ignored in candidates[1:]:
                log.info("%s features: using %s (%s layout), ignoring %s (%s layout)", modality,
                         candidates[0].path, candidates[0].layout, ignored.path, ignored.layout)
    return found


def _candidates(source: Path, graph: str, modality: str,
                index_dir: Path | None) -> list[FeatureFile]:
    """All layouts present for ``modality``, in ``LAYOUT_PREFERENCE`` order."""
    out: list[FeatureFile] = []
    generic = [source / f"{modality}{suffix}" for suffix in MATRIX_SUFFIXES]
    generic = [path for path in generic if path.is_file()]
    if len(generic) > 1:
        raise in_file(source, f"{' and '.join(p.name for p in generic)} all hold {modality} "
                              "features; keep only one")
    if generic:
        mask = source / f"{modality}_present.npy"
        out.append(FeatureFile(modality, generic[0], "generic",
                               present_path=mask if mask.is_file() else None))
    momok = source / MOMOK_NAMES[modality]
    if momok.is_file():
        out.append(FeatureFile(modality, momok, "momok"))
    key = graph.strip().lower()
    for prefix in dict.fromkeys((NATIVE_PREFIXES.get(key, graph.strip()), graph.strip())):
        native = source / f"{prefix}{NATIVE_SUFFIXES[modality]}"
        if prefix and native.is_file():
            out.append(FeatureFile(modality, native, "native"))
            break
    if modality == "image" and key in MMKB_PREFIXES:
        h5_path = source / f"{MMKB_PREFIXES[key]}_ImageData.h5"
        index_name = f"{MMKB_PREFIXES[key]}_ImageIndex.txt"
        folders = [source] + ([Path(index_dir)] if index_dir is not None else [])
        index = next((d / index_name for d in folders if (d / index_name).is_file()), None)
        if h5_path.is_file() and index is not None:
            out.append(FeatureFile(modality, h5_path, "mmkb", index_path=index))
        elif h5_path.is_file() and not out:
            raise in_file(h5_path, f"MMKB image features need their index {index_name}; put it "
                                   f"next to the .h5 (looked in {', '.join(map(str, folders))})")
    return out


def load_feature_files(found: Mapping[str, FeatureFile],
                       entity_names: Sequence[str]) -> dict[str, Modality]:
    """Read every found file; result keys are those of ``found`` (modality names)."""
    modalities: dict[str, Modality] = {}
    for name, feature_file in found.items():
        if feature_file.layout == "mmkb":
            if feature_file.index_path is None:
                raise in_file(feature_file.path, "MMKB image features need an index_path")
            modalities[name] = read_mmkb_h5(feature_file.path, feature_file.index_path,
                                            entity_names)
        else:
            modalities[name] = read_feature_matrix(feature_file.path, len(entity_names),
                                                   feature_file.present_path)
    return modalities


__all__ = [
    "LAYOUT_PREFERENCE", "FeatureFile", "find_feature_files", "load_feature_files",
    "read_feature_matrix", "read_image_index", "read_mmkb_h5",
]
