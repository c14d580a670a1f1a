"""nifti-folder: {case} glob patterns, masks beside / in another folder, --labels, --binarise, unlabelled."""
import numpy as np
import pytest

from nnunet_transfer.conversion.nifti_folder import parse_labels, pattern_regex
from nnunet_transfer.errors import NnunetTransferError
from tests.conversion.conftest import array, dataset_json, run_convert, snapshot, tree
from tests.conversion.fixtures import nifti_folder

LESIONS = {"image_pattern": "{case}_T1w.nii.gz", "mask_pattern": "{case}_mask*.nii.gz", "binarise": True,
           "labels": "lesion"}


def test_lesion_masks_beside_images_binarised(tmp_path, raw):
    source = nifti_folder.build(tmp_path / "downloads")
    before = snapshot(source)
    result = run_convert("nifti-folder", source, raw, options=LESIONS)
    folder = raw / "Dataset501_NiftiFolder"
    assert result.folder == folder and not result.bad
    assert tree(folder) == ["dataset.json", "imagesTr/sub-01_0000.nii.gz", "imagesTr/sub-02_0000.nii.gz",
                            "imagesTr/sub-03_0000.nii.gz", "labelsTr/sub-01.nii.gz", "labelsTr/sub-02.nii.gz",
                            "labelsTr/sub-03.nii.gz"]
    meta = dataset_json(folder)
    assert meta["labels"] == {"background": 0, "lesion": 1} and meta["channel_names"] == {"0": "MRI"}
    assert meta["numTraining"] == 3 and "placeholder_labels" not in meta
    assert [len(r.case.masks) for r in result.results] == [1, 1, 2]
    one, two, three = (array(folder / f"labelsTr/sub-0{i}.nii.gz") for i in (1, 2, 3))
    assert one.dtype == np.uint8 and set(np.unique(one)) == {0, 1} and one.sum() == 125  # 255 -> 1
    assert two.sum() == 125  # float 1.0 -> 1
    assert three.sum() == 2 * 27  # two mask files, united
    assert snapshot(source) == before


def test_unlabelled_gets_head_placeholder(tmp_path, raw):
    source = nifti_folder.build(tmp_path / "downloads")
    result = run_convert("nifti-folder", source, raw, options={"image_pattern": "{case}_T1w.nii.gz"})
    meta = dataset_json(result.folder)
    assert meta["placeholder_labels"] is True and meta["labels"] == {"background": 0, "foreground": 1}
    label = array(result.folder / "labelsTr/sub-01.nii.gz")
    assert 0 < label.sum() < label.size  # Otsu: the bright 'head', not every voxel


def test_masks_folder_with_same_names_and_label_names(tmp_path, raw):
    nifti_folder.build(tmp_path / "downloads")
    study = tmp_path / "downloads/tissue_study"
    result = run_convert("nifti-folder", study / "images", raw,
                         options={"masks": str(study / "labels"), "labels": "background,csf,gm,wm"})
    assert [r.case.case_id for r in result.good] == ["brain_001", "brain_002"]
    meta = dataset_json(result.folder)
    assert meta["labels"] == {"background": 0, "csf": 1, "gm": 2, "wm": 3}
    assert np.array_equal(array(result.folder / "labelsTr/brain_002.nii.gz"), nifti_folder.tissues(2).T)


def test_mask_pattern_inside_masks_folder_and_nested_images(tmp_path, raw):
    nifti_folder.build(tmp_path / "downloads")
    study = tmp_path / "downloads/tissue_study"
    result = run_convert("nifti-folder", study, raw,
                         options={"image_pattern": "images/{case}.nii.gz", "masks": str(study / "labels"),
                                  "mask_pattern": "{case}.nii.gz", "labels": "csf,gm,wm"})
    assert len(result.good) == 2 and dataset_json(result.folder)["labels"]["wm"] == 3
    bids = run_convert("nifti-folder", tmp_path / "downloads/bids_study", raw, dataset_id=502,
                       options={"image_pattern": "**/{case}_T1w.nii.gz", "channel_name": "T1"})
    assert tree(bids.folder)[1:3] == ["imagesTr/sub-01_0000.nii.gz", "imagesTr/sub-02_0000.nii.gz"]
    assert dataset_json(bids.folder)["channel_names"] == {"0": "T1"}


def test_mask_files_are_not_taken_as_images(tmp_path, raw):
    from tests.conversion.fixtures._write import blob, head, write_nifti
    source = tmp_path / "flat"
    for name in ("a", "b"):
        write_nifti(source / f"{name}.nii.gz", head())
        write_nifti(source / f"{name}_mask.nii.gz", blob())
    # the default '{case}.nii.gz' also matches a_mask.nii.gz, but it is a's mask, so it is no case of its own
    result = run_convert("nifti-folder", source, raw, options={"mask_pattern": "{case}_mask.nii.gz"})
    assert [r.case.case_id for r in result.results] == ["a", "b"] and not result.bad


def test_missing_mask_is_a_bad_case(tmp_path, raw):
    source = nifti_folder.build(tmp_path / "downloads")
    (source / "sub-02_mask.nii.gz").unlink()
    with pytest.raises(NnunetTransferError, match=r"sub-02: no mask for .*sub-02_T1w\.nii\.gz: expected "
                                                  r".*lesion_study/sub-02_mask\*\.nii\.gz"):
        run_convert("nifti-folder", source, raw, options=LESIONS)
    assert len(run_convert("nifti-folder", source, raw, skip_bad=True, options=LESIONS).good) == 2


def test_unexpected_mask_values_without_binarise(tmp_path, raw):
    source = nifti_folder.build(tmp_path / "downloads")
    options = {**LESIONS, "binarise": False}
    with pytest.raises(NnunetTransferError, match=r"sub-01: label values \[255\] are not in the expected set \[0, 1\]"):
        run_convert("nifti-folder", source, raw, options=options)
    with pytest.raises(NnunetTransferError, match=r"sub-03: expected one label file, got 2"):
        run_convert("nifti-folder", source, raw, options=options)


def test_pattern_regex_and_labels():
    regex = pattern_regex("**/{case}_T1w.nii.gz")
    assert regex.fullmatch("sub-01/anat/sub-01_T1w.nii.gz").group("case") == "sub-01"
    assert regex.fullmatch("X_t1W.NII.GZ").group("case") == "X"
    assert not regex.fullmatch("sub-01_T1w.nii")
    assert pattern_regex("{case}_?.nii").fullmatch("a_b_1.nii").group("case") == "a_b"
    assert parse_labels("lesion", True, True) == {"background": 0, "lesion": 1}
    assert parse_labels(None, False, False) == {"background": 0, "foreground": 1}
    assert parse_labels("Background, csf ,gm", True, False) == {"background": 0, "csf": 1, "gm": 2}


@pytest.mark.parametrize("options, message", [
    ({"image_pattern": "*_T1w.nii.gz"}, r"--image-pattern '\*_T1w\.nii\.gz' has no \{case\} placeholder"),
    ({"labels": "lesion"}, r"--labels names mask values, but no masks were asked for"),
    ({"binarise": True}, r"--binarise applies to masks, but no masks were asked for"),
    ({"mask_pattern": "{case}_mask.nii.gz", "binarise": True, "labels": "a,b"},
     r"--binarise makes one foreground label, but --labels names 2"),
    ({"mask_pattern": "{case}_mask.nii.gz", "labels": "a,,b"}, r"give distinct, non-empty names"),
    ({"masks": "/no/such/folder"}, r"--masks /no/such/folder is not a folder"),
    ({"image_pattern": "{case}_FLAIR.nii.gz"}, r"found no cases in .*; expected files matching --image-pattern"),
])
def test_option_errors(tmp_path, raw, options, message):
    source = nifti_folder.build(tmp_path / "downloads")
    with pytest.raises(NnunetTransferError, match=message):
        run_convert("nifti-folder", source, raw, options=options)


def test_repeated_case_ids_are_refused(tmp_path, raw):
    nifti_folder.build(tmp_path / "downloads")
    with pytest.raises(NnunetTransferError, match=r"case id 'T1w' comes from both .*sub-01_T1w\.nii\.gz and "
                                                  r".*sub-02_T1w\.nii\.gz"):
        run_convert("nifti-folder", tmp_path / "downloads/bids_study", raw,
                    options={"image_pattern": "**/sub-0?_{case}.nii.gz"})
