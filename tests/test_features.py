"""Feature-file readers: every published layout, the absent-row rules, and the error messages."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from roam_graph.data.errors import DataError
from roam_graph.data.features import (
    FeatureFile,
    find_feature_files,
    load_feature_files,
    read_feature_matrix,
    read_image_index,
    read_mmkb_h5,
)

MATRIX = np.array([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0], [-1.5, 0.5, 4.0], [7.0, 0.0, 0.0]],
                  dtype=np.float32)
NAMES = ("<http://dbpedia.org/resource/A>", "<http://dbpedia.org/resource/B>",
         "<http://dbpedia.org/resource/C>", "<http://dbpedia.org/resource/D>")


class _Payload:
    """A custom Python object: torch's weights_only loader must refuse to unpickle it."""

    def __init__(self) -> None:
        self.values = [1.0, 2.0]


def _write_h5(path: Path, vectors: dict[str, np.ndarray]) -> Path:
    with h5py.File(path, "w") as h5:
        for key, vector in vectors.items():
            h5.create_dataset(key, data=vector)
    return path


# --------------------------------------------------------------------------- round trips


def test_generic_npy_round_trips_rows_in_entity_order(tmp_path: Path) -> None:
    np.save(tmp_path / "image.npy", MATRIX)
    modality = read_feature_matrix(tmp_path / "image.npy", 4)
    assert modality.values.dtype == torch.float32
    assert torch.equal(modality.values, torch.from_numpy(MATRIX))
    assert modality.present.tolist() == [True, False, True, True]


def test_generic_pt_float64_and_float16_are_converted_to_float32(tmp_path: Path) -> None:
    for dtype in (torch.float64, torch.float16):
        torch.save(torch.from_numpy(MATRIX).to(dtype), tmp_path / "text.pt")
        modality = read_feature_matrix(tmp_path / "text.pt", 4)
        assert modality.values.dtype == torch.float32
        assert torch.allclose(modality.values, torch.from_numpy(MATRIX))


def test_momok_pth_tensor_round_trips(tmp_path: Path) -> None:
    torch.save(torch.from_numpy(MATRIX), tmp_path / "img_features.pth")
    modality = read_feature_matrix(tmp_path / "img_features.pth", 4)
    assert torch.equal(modality.values, torch.from_numpy(MATRIX))
    assert modality.width == 3


def test_native_pth_found_by_published_prefix_round_trips(tmp_path: Path) -> None:
    torch.save(torch.from_numpy(MATRIX), tmp_path / "DB15K-visual.pth")
    torch.save(torch.from_numpy(MATRIX[:, :2].copy()), tmp_path / "DB15K-textual.pth")
    found = find_feature_files(tmp_path, "db15k")
    assert {m: f.layout for m, f in found.items()} == {"image": "native", "text": "native"}
    loaded = load_feature_files(found, NAMES)
    assert torch.equal(loaded["image"].values, torch.from_numpy(MATRIX))
    assert loaded["text"].width == 2


def test_kvc16k_uses_the_kuai16k_native_prefix(tmp_path: Path) -> None:
    torch.save(torch.from_numpy(MATRIX), tmp_path / "Kuai16K-textual.pth")
    found = find_feature_files(tmp_path, "kvc16k")
    assert found["text"].path.name == "Kuai16K-textual.pth"
    assert "image" not in found


def test_numpy_array_returned_by_torch_load_is_accepted(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    # Newer torch versions can allow numpy arrays under weights_only; the reader accepts them.
    path = tmp_path / "text_features.pth"
    torch.save(torch.zeros(1), path)
    monkeypatch.setattr(torch, "load", lambda *args, **kwargs: MATRIX.astype(np.float64))
    modality = read_feature_matrix(path, 4)
    assert torch.equal(modality.values, torch.from_numpy(MATRIX))


def test_mmkb_h5_maps_entities_through_the_index(tmp_path: Path) -> None:
    h5_path = _write_h5(tmp_path / "DB15K_ImageData.h5", {
        "DBIMG00001": MATRIX[0][None, :],   # [1, width], as the published VGG16 vectors
        "DBIMG00003": MATRIX[2],            # [width] is accepted too
        "DBIMG00005": MATRIX[3][None, :],
        "DBIMG00009": np.full((1, 3), 9.0, dtype=np.float32),  # not listed for any graph entity
    })
    index = tmp_path / "DB15K_ImageIndex.txt"
    index.write_bytes(b"<http://dbpedia.org/resource/A>\tDBIMG00001\r\n"
                      b"<http://dbpedia.org/resource/C>\tDBIMG00003\r\n"
                      b"<http://dbpedia.org/resource/D>\tDBIMG00004\r\n"   # id missing from h5
                      b"<http://dbpedia.org/resource/D>\tDBIMG00005\r\n"   # second id is used
                      b"<http://dbpedia.org/resource/Z>\tDBIMG00009\r\n\r\n")
    modality = read_mmkb_h5(h5_path, index, NAMES)
    assert modality.present.tolist() == [True, False, True, True]
    assert torch.equal(modality.values, torch.from_numpy(MATRIX))


def test_mmkb_entity_without_index_entry_or_vector_is_absent_with_zero_row(tmp_path: Path) -> None:
    h5_path = _write_h5(tmp_path / "FB15K_ImageData.h5", {"FBIMG00001": np.ones((1, 4))})
    index = tmp_path / "FB15K_ImageIndex.txt"
    index.write_text("/m/a\tFBIMG00001\n/m/b\tFBIMG00002\n", encoding="utf-8")
    modality = read_mmkb_h5(h5_path, index, ["/m/a", "/m/b", "/m/c"])
    assert modality.present.tolist() == [True, False, False]
    assert modality.values[1:].abs().sum() == 0
    assert modality.coverage == pytest.approx(1 / 3)


def test_mmkb_index_lists_repeated_entities_in_file_order(tmp_path: Path) -> None:
    index = tmp_path / "DB15K_ImageIndex.txt"
    index.write_text("<x>\tDBIMG00002\n<x>\tDBIMG00001\n", encoding="utf-8")
    assert read_image_index(index) == {"x": ["DBIMG00002", "DBIMG00001"]}


# --------------------------------------------------------------------------- absent rows


def test_all_zero_rows_without_mask_are_absent(tmp_path: Path) -> None:
    np.save(tmp_path / "image.npy", np.zeros((3, 2), dtype=np.float32))
    assert read_feature_matrix(tmp_path / "image.npy", 3).present.tolist() == [False] * 3


def test_with_a_mask_the_mask_wins_and_absent_rows_are_zeroed(tmp_path: Path) -> None:
    np.save(tmp_path / "image.npy", MATRIX)
    np.save(tmp_path / "image_present.npy", np.array([False, True, True, False]))
    modality = read_feature_matrix(tmp_path / "image.npy", 4, tmp_path / "image_present.npy")
    assert modality.present.tolist() == [False, True, True, False]  # zero row 1 stays present
    assert modality.values[0].abs().sum() == 0 and modality.values[3].abs().sum() == 0
    assert torch.equal(modality.values[2], torch.from_numpy(MATRIX[2]))


def test_nan_in_a_row_the_mask_marks_absent_is_ignored(tmp_path: Path) -> None:
    matrix = MATRIX.copy()
    matrix[1, 0] = np.nan
    np.save(tmp_path / "image.npy", matrix)
    np.save(tmp_path / "image_present.npy", np.array([1, 0, 1, 1], dtype=np.uint8))
    modality = read_feature_matrix(tmp_path / "image.npy", 4, tmp_path / "image_present.npy")
    assert bool(torch.isfinite(modality.values).all())


# --------------------------------------------------------------------------- failures


def test_row_count_different_from_entity_count_names_file_and_counts(tmp_path: Path) -> None:
    np.save(tmp_path / "image.npy", MATRIX)
    with pytest.raises(DataError, match=r"image\.npy: 4 rows but the graph has 5 entities"):
        read_feature_matrix(tmp_path / "image.npy", 5)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_or_inf_in_a_present_row_names_file_row_and_value(tmp_path: Path, bad: float) -> None:
    matrix = MATRIX.copy()
    matrix[2, 1] = bad
    torch.save(torch.from_numpy(matrix), tmp_path / "MKG-W-visual.pth")
    with pytest.raises(DataError, match=rf"MKG-W-visual\.pth: row 2 \(entity 2\) has {bad}"):
        read_feature_matrix(tmp_path / "MKG-W-visual.pth", 4)


@pytest.mark.parametrize("shape", [(4,), (4, 2, 3)])
def test_1d_or_3d_array_names_file_shape_and_supported_extensions(tmp_path: Path,
                                                                   shape: tuple[int, ...]) -> None:
    np.save(tmp_path / "text.npy", np.ones(shape, dtype=np.float32))
    with pytest.raises(DataError, match=r"text\.npy: expected a 2-D matrix") as info:
        read_feature_matrix(tmp_path / "text.npy", 4)
    assert str(shape) in str(info.value) and ".npy, .pt, .pth" in str(info.value)


def test_unsupported_extension_names_file_and_supported_extensions(tmp_path: Path) -> None:
    (tmp_path / "image.csv").write_text("1,2,3\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"image\.csv: unsupported .*'\.csv'.*\.npy, \.pt, \.pth"):
        read_feature_matrix(tmp_path / "image.csv", 1)


def test_pth_with_pickled_custom_object_is_refused_by_weights_only(tmp_path: Path) -> None:
    torch.save(_Payload(), tmp_path / "DB15K-textual.pth")
    with pytest.raises(DataError) as info:
        read_feature_matrix(tmp_path / "DB15K-textual.pth", 4)
    message = str(info.value)
    assert "DB15K-textual.pth" in message
    assert "torch.load(weights_only=True) refused the file" in message
    assert "_Payload" in message


def test_pth_with_pickled_numpy_array_is_refused_with_a_conversion_hint(tmp_path: Path) -> None:
    torch.save(MATRIX, tmp_path / "img_features.pth")  # torch 2.2 weights_only refuses numpy
    with pytest.raises(DataError, match=r"img_features\.pth: .*refused.*numpy\.save"):
        read_feature_matrix(tmp_path / "img_features.pth", 4)


def test_pth_holding_a_dict_names_file_and_keys(tmp_path: Path) -> None:
    torch.save({"ent": torch.ones(4, 2)}, tmp_path / "text_features.pth")
    with pytest.raises(DataError, match=r"text_features\.pth: holds a dict with keys \['ent'\]"):
        read_feature_matrix(tmp_path / "text_features.pth", 4)


def test_mask_of_wrong_length_names_the_mask_file(tmp_path: Path) -> None:
    np.save(tmp_path / "image.npy", MATRIX)
    np.save(tmp_path / "image_present.npy", np.ones(3, dtype=bool))
    with pytest.raises(DataError, match=r"image_present\.npy: .*vector of 4 entries.*\(3,\)"):
        read_feature_matrix(tmp_path / "image.npy", 4, tmp_path / "image_present.npy")


def test_malformed_index_line_names_path_and_line(tmp_path: Path) -> None:
    index = tmp_path / "FB15K_ImageIndex.txt"
    index.write_text("/m/a\tFBIMG00001\n/m/b\tFBIMG00002\textra\n", encoding="utf-8")
    h5_path = _write_h5(tmp_path / "FB15K_ImageData.h5", {"FBIMG00001": np.ones((1, 4))})
    with pytest.raises(DataError, match=r"FB15K_ImageIndex\.txt:2: expected"):
        read_mmkb_h5(h5_path, index, ["/m/a"])


def test_mmkb_nan_vector_names_h5_file_key_and_entity(tmp_path: Path) -> None:
    h5_path = _write_h5(tmp_path / "FB15K_ImageData.h5", {"FBIMG00001": np.full((1, 2), np.nan)})
    index = tmp_path / "FB15K_ImageIndex.txt"
    index.write_text("/m/a\tFBIMG00001\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"FB15K_ImageData\.h5: dataset 'FBIMG00001' \(entity 0"):
        read_mmkb_h5(h5_path, index, ["/m/a"])


# --------------------------------------------------------------------------- discovery


def _write_every_layout(folder: Path) -> None:
    np.save(folder / "image.npy", MATRIX)
    torch.save(torch.from_numpy(MATRIX), folder / "img_features.pth")
    torch.save(torch.from_numpy(MATRIX), folder / "DB15K-visual.pth")
    _write_h5(folder / "DB15K_ImageData.h5", {"DBIMG00001": MATRIX[:1]})
    (folder / "DB15K_ImageIndex.txt").write_text(f"{NAMES[0]}\tDBIMG00001\n", encoding="utf-8")


def test_find_feature_files_prefers_generic_then_momok_then_native_then_mmkb(
        tmp_path: Path) -> None:
    _write_every_layout(tmp_path)
    order = []
    for remove in ("image.npy", "img_features.pth", "DB15K-visual.pth", None):
        chosen = find_feature_files(tmp_path, "db15k")["image"]
        order.append(chosen.layout)
        if remove is not None:
            (tmp_path / remove).unlink()
    assert order == ["generic", "momok", "native", "mmkb"]
    assert chosen == FeatureFile("image", tmp_path / "DB15K_ImageData.h5", "mmkb",
                                 index_path=tmp_path / "DB15K_ImageIndex.txt")


def test_find_feature_files_attaches_the_generic_presence_mask(tmp_path: Path) -> None:
    torch.save(torch.from_numpy(MATRIX), tmp_path / "text.pt")
    np.save(tmp_path / "text_present.npy", np.ones(4, dtype=bool))
    found = find_feature_files(tmp_path, "my-graph")
    assert found == {"text": FeatureFile("text", tmp_path / "text.pt", "generic",
                                         present_path=tmp_path / "text_present.npy")}


def test_mmkb_index_is_found_in_index_dir_and_loaded(tmp_path: Path) -> None:
    features, benchmark = tmp_path / "features", tmp_path / "fb15k237img"
    features.mkdir()
    benchmark.mkdir()
    _write_h5(features / "FB15K_ImageData.h5", {"FBIMG00002": np.ones((1, 4))})
    (benchmark / "FB15K_ImageIndex.txt").write_text("/m/b\tFBIMG00002\n", encoding="utf-8")
    found = find_feature_files(features, "fb15k237img", index_dir=benchmark)
    loaded = load_feature_files(found, ["/m/a", "/m/b"])
    assert loaded["image"].present.tolist() == [False, True]


def test_mmkb_h5_without_index_is_an_error_naming_the_index(tmp_path: Path) -> None:
    _write_h5(tmp_path / "DB15K_ImageData.h5", {"DBIMG00001": np.ones((1, 4))})
    with pytest.raises(DataError, match=r"DB15K_ImageData\.h5: .*DB15K_ImageIndex\.txt"):
        find_feature_files(tmp_path, "db15k")


def test_two_generic_files_for_one_modality_are_ambiguous(tmp_path: Path) -> None:
    np.save(tmp_path / "image.npy", MATRIX)
    torch.save(torch.from_numpy(MATRIX), tmp_path / "image.pt")
    with pytest.raises(DataError, match=r"image\.npy and image\.pt"):
        find_feature_files(tmp_path, "db15k")


def test_missing_source_folder_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="feature source folder not found"):
        find_feature_files(tmp_path / "nope", "db15k")
