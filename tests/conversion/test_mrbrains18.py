"""MRBrainS18: reg_ images from pre/, labels 9 / 10 -> ignore / keep / background, missing files, bad layouts."""
import numpy as np
import pytest

from nnunet_transfer.errors import NnunetTransferError
from tests.conversion.conftest import array, dataset_json, run_convert, snapshot, tree
from tests.conversion.fixtures import mrbrains18

STRUCTURES = {"background": 0, "cortical_grey_matter": 1, "basal_ganglia": 2, "white_matter": 3,
              "white_matter_lesions": 4, "cerebrospinal_fluid_extracerebral": 5, "ventricles": 6, "cerebellum": 7,
              "brain_stem": 8}


def test_converts_t1_with_9_and_10_as_ignore(tmp_path, raw):
    source = mrbrains18.build(tmp_path / "downloads")
    before = snapshot(source)
    result = run_convert("mrbrains18", source, raw)
    folder = raw / "Dataset501_MRBrainS18"
    assert result.folder == folder and not result.bad
    assert tree(folder) == ["dataset.json", "imagesTr/070_0000.nii.gz", "imagesTr/148_0000.nii.gz",
                            "imagesTr/1_0000.nii.gz", "labelsTr/070.nii.gz", "labelsTr/1.nii.gz",
                            "labelsTr/148.nii.gz"]
    meta = dataset_json(folder)
    assert meta["labels"] == {**STRUCTURES, "ignore": 9}
    assert meta["channel_names"] == {"0": "T1"} and meta["numTraining"] == 3 and meta["numTest"] == 0
    assert "mrbrains18.isi.uu.nl" in meta["reference"] and "10.1155/2015/813696" in meta["citation"]
    label = array(folder / "labelsTr/148.nii.gz")
    source_label = array(source / "training/148/segm.nii.gz")
    assert set(np.unique(label)) == set(range(10))
    assert np.array_equal(label == 9, np.isin(source_label, [9, 10])) and (source_label == 10).any()
    # the image is pre/reg_T1 (same voxels), not the unregistered 1 mm T1
    assert np.array_equal(array(folder / "imagesTr/070_0000.nii.gz"), array(source / "training/070/pre/reg_T1.nii.gz"))
    assert snapshot(source) == before


def test_keep_and_background_modes(tmp_path, raw):
    source = mrbrains18.build(tmp_path / "downloads")
    keep = run_convert("mrbrains18", source, raw, options={"ignore_label": "keep"}, name="keep")
    assert dataset_json(keep.folder)["labels"] == {**STRUCTURES, "infarction": 9, "other": 10}
    assert set(np.unique(array(keep.folder / "labelsTr/148.nii.gz"))) == set(range(11))
    background = run_convert("mrbrains18", source, raw, dataset_id=502, options={"ignore_label": "background"})
    assert dataset_json(background.folder)["labels"] == STRUCTURES
    label = array(background.folder / "labelsTr/148.nii.gz")
    assert set(np.unique(label)) == set(range(9))
    source_label = array(source / "training/148/segm.nii.gz")
    assert (label == 0).sum() == np.isin(source_label, [0, 9, 10]).sum()


def test_modalities_in_the_order_given(tmp_path, raw):
    source = mrbrains18.build(tmp_path / "downloads")
    result = run_convert("mrbrains18", source / "training", raw, options={"modalities": ["FLAIR", "IR", "T1"]})
    assert dataset_json(result.folder)["channel_names"] == {"0": "FLAIR", "1": "IR", "2": "T1"}
    pre = source / "training/1/pre"
    assert np.array_equal(array(result.folder / "imagesTr/1_0001.nii.gz"), array(pre / "reg_IR.nii.gz"))
    assert np.array_equal(array(result.folder / "imagesTr/1_0000.nii.gz"), array(pre / "FLAIR.nii.gz"))


def test_missing_label_or_registered_image_is_a_bad_case(tmp_path, raw):
    source = mrbrains18.build(tmp_path / "downloads")
    (source / "training/1/segm.nii.gz").unlink()
    (source / "training/070/pre/FLAIR.nii.gz").unlink()
    with pytest.raises(NnunetTransferError, match=r"1: no segm.nii.gz \(the manual reference\) in .*training/1"):
        run_convert("mrbrains18", source, raw)
    result = run_convert("mrbrains18", source, raw, skip_bad=True, options={"modalities": ["T1", "FLAIR"]})
    assert sorted(r.case.case_id for r in result.bad) == ["070", "1"]
    assert "no FLAIR.nii.gz (FLAIR on the label grid)" in result.bad[0].problems[0]
    assert tree(result.folder) == ["dataset.json", "imagesTr/148_0000.nii.gz", "imagesTr/148_0001.nii.gz",
                                   "labelsTr/148.nii.gz"]


def test_unexpected_label_value_is_a_bad_case(tmp_path, raw):
    source = mrbrains18.build(tmp_path / "downloads")
    segm = np.zeros(mrbrains18.SHAPE, dtype=np.uint8)
    segm[2:4, 2:4, 2:4] = 11
    mrbrains18.write_nifti(source / "training/1/segm.nii.gz", segm, spacing=mrbrains18.SPACING)
    with pytest.raises(NnunetTransferError, match=r"label values \[11\] are not in the expected set"):
        run_convert("mrbrains18", source, raw)


def test_not_the_download(tmp_path, raw):
    (tmp_path / "empty" / "training").mkdir(parents=True)
    with pytest.raises(NnunetTransferError, match=r"training has no subject folders \(training/<subject>/segm"):
        run_convert("mrbrains18", tmp_path / "empty", raw)
    source = mrbrains18.build(tmp_path / "downloads")
    with pytest.raises(NnunetTransferError, match="--modalities T1 T1: give each of"):
        run_convert("mrbrains18", source, raw, options={"modalities": ["T1", "T1"]})
