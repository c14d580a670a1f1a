"""Tests for nnunet_transfer/demo/datasets.py and cases.py: the written nnU-Net raw datasets."""
from __future__ import annotations

import json
from pathlib import Path

import nibabel
import numpy as np
import pytest
import SimpleITK as sitk
from nnunetv2.experiment_planning.verify_dataset_integrity import verify_dataset_integrity
from nnunetv2.imageio.natural_image_reader_writer import NaturalImage2DIO

from nnunet_transfer.demo import datasets as demo_datasets
from nnunet_transfer.demo.cases import SPECS, make_case
from nnunet_transfer.demo.datasets import DEMO_DATASETS, DemoDataSize, write_demo_datasets
from nnunet_transfer.errors import NnunetTransferError
from tests.demo.conftest import TINY, TINY_SEED

NAMES = {
    "mri_seg_source": "Dataset901_DemoMRISegSource", "mri_cls_source": "Dataset902_DemoMRIClsSource",
    "mri_unlabeled": "Dataset903_DemoMRIUnlabeled", "natural_cls_source": "Dataset904_DemoNaturalClsSource",
    "natural_seg_source": "Dataset905_DemoNaturalSegSource", "natural_unlabeled": "Dataset906_DemoNaturalUnlabeled",
    "stroke": "Dataset911_DemoStroke", "ms": "Dataset912_DemoMS", "anatomy": "Dataset913_DemoAnatomy",
}
LABEL_RANGE = {"mri_seg_source": 3, "anatomy": 3, "stroke": 1, "ms": 1, "natural_seg_source": 1,
               "mri_cls_source": 1, "mri_unlabeled": 1, "natural_cls_source": 1, "natural_unlabeled": 1}


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _read_label(path: Path) -> np.ndarray:
    return np.asarray(nibabel.load(path).dataobj) if path.name.endswith(".nii.gz") else \
        NaturalImage2DIO().read_seg(str(path))[0]


def test_names_ids_and_folders(demo_raw):
    assert {k: f.name for k, f in demo_raw.items()} == NAMES
    assert DEMO_DATASETS == {k: int(n[7:10]) - 900 for k, n in NAMES.items()}


@pytest.mark.parametrize("key", list(NAMES))
def test_dataset_json_and_files(demo_raw, key):
    folder = demo_raw[key]
    meta = json.loads((folder / "dataset.json").read_text())
    mri = SPECS[key].domain == "mri"
    ending = ".nii.gz" if mri else ".png"
    assert meta["file_ending"] == ending and meta["name"] == SPECS[key].name
    assert meta["channel_names"] == ({"0": "T1"} if mri else {"0": "R", "1": "G", "2": "B"})
    assert meta["labels"]["background"] == 0 and len(meta["labels"]) >= 2
    assert "SYNTHETIC" in meta["description"]
    assert ("Fonov" in " ".join(meta["reference"]) and "1993-2009 Louis Collins" in meta["licence"]) if mri \
        else "scikit-image" in meta["licence"]
    block = meta["nnunet_transfer"]
    assert block["generator"] == "demo" and block["seed"] == TINY_SEED and block["task"] == SPECS[key].task
    assert block["domain"] == SPECS[key].domain and block["spacing_mm"] == (TINY.spacing_mm if mri else None)
    images = sorted((folder / "imagesTr").glob(f"*_0000{ending}"))
    labels = sorted((folder / "labelsTr").glob(f"*{ending}"))
    assert meta["numTraining"] == len(images) == len(labels) == (TINY.n_train if mri else TINY.n_natural)
    expected_test = TINY.n_test if SPECS[key].is_target else 0
    assert len(list((folder / "imagesTs").iterdir())) == len(list((folder / "labelsTs").iterdir())) == expected_test
    highest = max(meta["labels"].values())
    for label_file in labels + sorted((folder / "labelsTs").iterdir()):
        values = np.unique(_read_label(label_file))
        assert values.min() >= 0 and values.max() <= LABEL_RANGE.get(key, 0) <= highest
    if meta.get("placeholder_labels"):
        assert meta["labels"] == {"background": 0, "foreground": 1}
        # nnU-Net's fingerprint samples foreground intensities: a placeholder map must have some
        assert all((_read_label(f) == 1).any() for f in labels)
    if SPECS[key].class_names is not None:
        classes = json.loads((folder / "class_labels.json").read_text())
        assert classes["class_names"] == meta["class_names"] == list(SPECS[key].class_names)
        assert sorted(classes["labels"]) == [p.name[: -len("_0000" + ending)] for p in images]
        assert all(0 <= v < len(classes["class_names"]) for v in classes["labels"].values())


@pytest.mark.parametrize("key", ["stroke", "anatomy", "mri_cls_source"])
def test_nifti_geometry_matches(demo_raw, key):
    folder = demo_raw[key]
    for image_file in sorted((folder / "imagesTr").iterdir()) + sorted((folder / "imagesTs").iterdir()):
        label_file = folder / image_file.parent.name.replace("images", "labels") / image_file.name.replace("_0000", "")
        image, label = sitk.ReadImage(str(image_file)), sitk.ReadImage(str(label_file))
        assert image.GetSpacing() == label.GetSpacing() == (TINY.spacing_mm,) * 3
        assert image.GetOrigin() == label.GetOrigin() and image.GetDirection() == label.GetDirection()
        assert image.GetSize() == label.GetSize()
        assert image.GetPixelID() == sitk.sitkFloat32 and label.GetPixelID() == sitk.sitkUInt8


def test_target_records_and_lesion_labels(demo_raw):
    for key in ("stroke", "ms"):
        record = json.loads((demo_raw[key] / "demo_record.json").read_text())["cases"]
        assert len(record) == TINY.n_train + TINY.n_test
        assert all(case["lesions"] for case in record.values())
        for case_id, case in record.items():
            sub = "labelsTr" if case["split"] == "train" else "labelsTs"
            label = _read_label(demo_raw[key] / sub / f"{case_id}.nii.gz")
            assert label.sum() == sum(lesion["n_voxels"] for lesion in case["lesions"])


def test_natural_images_read_as_three_channels(demo_raw):
    for key in ("natural_cls_source", "natural_seg_source", "natural_unlabeled"):
        image_file = min((demo_raw[key] / "imagesTr").iterdir())
        image, _ = NaturalImage2DIO().read_images([str(image_file)])
        assert image.shape == (3, 1, TINY.natural_size, TINY.natural_size)


@pytest.mark.parametrize("key", ["stroke", "mri_cls_source", "natural_seg_source"])
def test_nnunet_verify_dataset_integrity_passes(demo_raw, key):
    verify_dataset_integrity(str(demo_raw[key]), num_processes=1)


def test_same_seed_same_files_different_seed_different(tmp_path, demo_raw):
    which = ["ms", "natural_seg_source", "mri_cls_source"]
    again = write_demo_datasets(tmp_path / "a", TINY, seed=TINY_SEED, which=which, progress=False)
    for key in which:
        assert _files(again[key]) == _files(demo_raw[key])
    other = write_demo_datasets(tmp_path / "b", TINY, seed=TINY_SEED + 1, which=which, progress=False)
    for key in which:
        before, after = _files(demo_raw[key]), _files(other[key])
        assert before.keys() == after.keys()
        images = [name for name in before if name.startswith("imagesTr/")]
        assert all(before[name] != after[name] for name in images)


def test_parallel_writing_gives_the_same_files(tmp_path, demo_raw):
    written = write_demo_datasets(tmp_path, TINY, seed=TINY_SEED, which=["stroke"], num_workers=2, progress=False)
    assert _files(written["stroke"]) == _files(demo_raw["stroke"])


def test_cases_do_not_depend_on_dataset_size():
    small = make_case("anatomy", 0, "test", 1, spacing_mm=6.0)
    np.testing.assert_array_equal(small.image, make_case("anatomy", 0, "test", 1, spacing_mm=6.0).image)
    # Source and target subjects differ even at the same case index.
    source = make_case("mri_seg_source", 0, "train", 0, spacing_mm=6.0)
    target = make_case("anatomy", 0, "train", 0, spacing_mm=6.0)
    assert not np.array_equal(source.image, target.image)


def test_existing_folder_is_refused_and_left_untouched(tmp_path):
    size = DemoDataSize(spacing_mm=6.0, n_train=1, n_test=1, n_natural=2, natural_size=16)
    folder = write_demo_datasets(tmp_path, size, which=["natural_unlabeled"], progress=False)["natural_unlabeled"]
    before = _files(folder)
    with pytest.raises(NnunetTransferError, match="already exists"):
        write_demo_datasets(tmp_path, size, seed=9, which=["natural_unlabeled"], progress=False)
    assert _files(folder) == before
    write_demo_datasets(tmp_path, size, seed=9, which=["natural_unlabeled"], overwrite=True, progress=False)
    assert _files(folder) != before
    assert sorted(p.name for p in tmp_path.iterdir()) == [folder.name]  # no temporary leftovers


def test_failed_generation_leaves_no_folder(tmp_path, monkeypatch):
    def broken(job):
        raise RuntimeError("simulated crash")

    monkeypatch.setattr(demo_datasets, "generate_and_write", broken)
    size = DemoDataSize(spacing_mm=6.0, n_train=1, n_test=0, n_natural=2, natural_size=16)
    with pytest.raises(RuntimeError, match="simulated crash"):
        write_demo_datasets(tmp_path, size, which=["natural_seg_source"], progress=False)
    assert list(tmp_path.iterdir()) == []


def test_dataset_id_taken_by_another_dataset_is_refused(tmp_path):
    (tmp_path / "Dataset911_SomethingElse").mkdir()
    with pytest.raises(NnunetTransferError, match="911"):
        write_demo_datasets(tmp_path, TINY, which=["ms", "stroke"], progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["Dataset911_SomethingElse"]


@pytest.mark.parametrize("kwargs, match", [
    ({"which": ["nope"]}, "unknown demo dataset"),
    ({"seed": -1}, "seed"),
    ({"first_id": 990}, "first_id"),
    ({"num_workers": 0}, "num_workers"),
])
def test_bad_arguments_raise(tmp_path, kwargs, match):
    with pytest.raises(NnunetTransferError, match=match):
        write_demo_datasets(tmp_path, TINY, progress=False, **kwargs)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("field, value", [("n_train", 0), ("n_test", -1), ("natural_size", 4), ("spacing_mm", 0.2)])
def test_bad_sizes_raise(field, value):
    with pytest.raises(NnunetTransferError, match=field):
        DemoDataSize(**{field: value})
