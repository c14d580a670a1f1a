"""PASCAL VOC2012: palette masks keep their class indices, void 255 -> ignore 21, split lists, missing masks."""
import numpy as np
import pytest
from PIL import Image

from nnunet_transfer.errors import NnunetTransferError
from tests.conversion.conftest import dataset_json, run_convert, snapshot, tree
from tests.conversion.fixtures import voc2012


def read(path):
    return np.asarray(Image.open(path))


def test_benchmark_split_train_to_tr_and_val_to_ts(tmp_path, raw):
    source = voc2012.build(tmp_path / "downloads")
    before = snapshot(source)
    result = run_convert("voc2012", source, raw)
    folder = raw / "Dataset501_VOC2012"
    assert result.folder == folder and not result.bad
    assert tree(folder) == ["dataset.json",
                            "imagesTr/2007_000032_0000.png", "imagesTr/2007_000039_0000.png",
                            "imagesTr/2008_000008_0000.png", "imagesTs/2007_000033_0000.png",
                            "imagesTs/2009_000012_0000.png", "labelsTr/2007_000032.png", "labelsTr/2007_000039.png",
                            "labelsTr/2008_000008.png", "labelsTs/2007_000033.png", "labelsTs/2009_000012.png"]
    meta = dataset_json(folder)
    assert meta["numTraining"] == 3 and meta["numTest"] == 2 and meta["file_ending"] == ".png"
    assert meta["channel_names"] == {"0": "R", "1": "G", "2": "B"}
    assert list(meta["labels"])[:3] == ["background", "aeroplane", "bicycle"]
    assert meta["labels"]["tvmonitor"] == 20 and meta["labels"]["ignore"] == 21 == max(meta["labels"].values())
    assert "Everingham" in meta["citation"] and "10.1007/s11263-009-0275-4" in meta["citation"]
    assert "placeholder_labels" not in meta and "class_names" not in meta
    assert snapshot(source) == before


def test_palette_indices_kept_and_void_becomes_ignore(tmp_path, raw):
    source = voc2012.build(tmp_path / "downloads")
    folder = run_convert("voc2012", source, raw).folder
    label = read(folder / "labelsTr/2007_000039.png")  # second case: object class 2 (bicycle)
    expected = voc2012.mask(1).astype(np.int64)
    expected[expected == 255] = 21
    assert label.dtype == np.uint8 and np.array_equal(label, expected)
    assert set(np.unique(label)) == {0, 2, 15, 21}
    picture = read(folder / "imagesTr/2007_000039_0000.png")
    assert picture.shape == (*voc2012.SHAPE, 3) and picture.dtype == np.uint8


def test_segmentation_object_and_other_pictures_are_not_used(tmp_path, raw):
    source = voc2012.build(tmp_path / "downloads")
    result = run_convert("voc2012", source, raw)
    ids = {r.case.case_id for r in result.results}
    assert "2011_000999" not in ids  # JPEG without a segmentation list entry
    assert all("SegmentationObject" not in str(p) for r in result.results for p in r.case.masks)


def test_split_train_and_trainval(tmp_path, raw):
    source = voc2012.build(tmp_path / "downloads")
    train = run_convert("voc2012", source, raw, options={"split": "train"})
    assert not (train.folder / "imagesTs").exists() and dataset_json(train.folder)["numTraining"] == 3
    both = run_convert("voc2012", source, raw, dataset_id=502, options={"split": "trainval"})
    meta = dataset_json(both.folder)
    assert meta["numTraining"] == 5 and meta["numTest"] == 0 and meta["nnunet_transfer"]["options"]["split"] == \
        "trainval"


def test_size_resizes_pictures_and_masks_with_nearest(tmp_path, raw):
    source = voc2012.build(tmp_path / "downloads")
    folder = run_convert("voc2012", source, raw, options={"size": 36}).folder
    picture, label = read(folder / "imagesTr/2007_000032_0000.png"), read(folder / "labelsTr/2007_000032.png")
    assert picture.shape == (36, 44, 3) and label.shape == (36, 44)
    assert set(np.unique(label)) == {0, 1, 15, 21}  # nearest neighbour: no blended label values


def test_accepts_voc2012_folder_and_the_folder_above(tmp_path, raw):
    source = voc2012.build(tmp_path / "downloads")
    assert run_convert("voc2012", source / "VOC2012", raw).good
    assert run_convert("voc2012", source.parent, raw, dataset_id=502).good


def test_listed_case_without_mask_is_bad(tmp_path, raw):
    source = voc2012.build(tmp_path / "downloads", missing_mask=True)
    with pytest.raises(NnunetTransferError, match=r"2010_000001: .*SegmentationClass/2010_000001\.png is missing: "
                                                  r"no class mask for 2010_000001 \(listed in ImageSets/Segmentation/"
                                                  r"train\.txt\)"):
        run_convert("voc2012", source, raw)
    result = run_convert("voc2012", source, raw, skip_bad=True)
    assert [r.case.case_id for r in result.bad] == ["2010_000001"]
    assert "2010_000001" in dataset_json(result.folder)["nnunet_transfer"]["skipped_cases"]


def test_unexpected_mask_value_is_bad(tmp_path, raw):
    source = voc2012.build(tmp_path / "downloads")
    voc2012.write_mask(source / "VOC2012/SegmentationClass/2007_000032.png", np.full(voc2012.SHAPE, 40, np.uint8))
    with pytest.raises(NnunetTransferError, match=r"2007_000032: label values \[40\] are not in the expected set"):
        run_convert("voc2012", source, raw)


def test_bad_layouts(tmp_path, raw):
    with pytest.raises(NnunetTransferError, match=r"has no JPEGImages \(the VOC2012 pictures"):
        run_convert("voc2012", tmp_path, raw)
    source = voc2012.build(tmp_path / "downloads")
    (source / "VOC2012/ImageSets/Segmentation/val.txt").unlink()
    with pytest.raises(NnunetTransferError, match=r"Segmentation has no val\.txt"):
        run_convert("voc2012", source, raw)
    assert run_convert("voc2012", source, raw, options={"split": "train"}).good
