"""MSSEG-2016: both layouts, consensus / rater / union / majority, modalities, raw vs pre-processed, test split."""
import shutil

import numpy as np
import pytest

from nnunet_transfer.conversion.validate import GeometryPolicy
from nnunet_transfer.errors import NnunetTransferError
from tests.conversion.conftest import array, dataset_json, run_convert, snapshot, tree
from tests.conversion.fixtures import msseg2016

PATIENT = "Training/Center_07/Patient_01"


def test_re_release_with_consensus_and_preprocessed_t1(tmp_path, raw):
    source = msseg2016.build(tmp_path / "downloads")
    before = snapshot(source)
    result = run_convert("msseg2016", source, raw)
    folder = raw / "Dataset501_MSSEG2016"
    assert result.folder == folder and not result.bad
    # patient names repeat across centers: the center is kept; test ids say so
    assert tree(folder) == ["dataset.json", "imagesTr/Center_01_Patient_01_0000.nii.gz",
                            "imagesTr/Center_07_Patient_01_0000.nii.gz",
                            "imagesTs/test_Center_03_Patient_01_0000.nii.gz",
                            "labelsTr/Center_01_Patient_01.nii.gz", "labelsTr/Center_07_Patient_01.nii.gz",
                            "labelsTs/test_Center_03_Patient_01.nii.gz"]
    meta = dataset_json(folder)
    assert meta["numTraining"] == 2 and meta["numTest"] == 1
    assert meta["channel_names"] == {"0": "T1"} and meta["labels"] == {"background": 0, "lesion": 1}
    assert "10.1038/s41598-018-31911-7" in meta["citation"] and "portal.fli-iam.irisa.fr" in meta["reference"]
    assert meta["nnunet_transfer"]["options"] == {"modalities": ["T1"], "rater": "consensus", "images": "preprocessed"}
    label = array(folder / "labelsTr/Center_07_Patient_01.nii.gz")
    assert label.dtype == np.uint8 and set(np.unique(label)) == {0, 1} and label.sum() == 27  # float consensus
    assert array(folder / "labelsTs/test_Center_03_Patient_01.nii.gz").sum() == 27  # not the all-ones Brain_Mask
    image = array(folder / "imagesTr/Center_07_Patient_01_0000.nii.gz")
    assert np.array_equal(image, array(source / PATIENT / "Preprocessed_Data/T1_preprocessed.nii.gz"))
    assert snapshot(source) == before


@pytest.mark.parametrize("rater, voxels, expected", [("union", 175, None), ("majority", 125, 1), ("2", 125, 2),
                                                     ("consensus", 27, None)])
def test_rater_option(tmp_path, raw, rater, voxels, expected):
    source = msseg2016.build(tmp_path / "downloads")
    result = run_convert("msseg2016", source, raw, options={"rater": rater})
    label = array(result.folder / "labelsTr/Center_01_Patient_01.nii.gz")
    assert label.sum() == voxels
    if expected:
        assert np.array_equal(label, np.transpose(msseg2016.rater_mask(expected)))


def test_modalities_in_the_order_given(tmp_path, raw):
    source = msseg2016.build(tmp_path / "downloads")
    result = run_convert("msseg2016", source, raw, options={"modalities": ["FLAIR", "GADO", "DP"]})
    assert dataset_json(result.folder)["channel_names"] == {"0": "FLAIR", "1": "GADO", "2": "DP"}
    for channel, name in enumerate(["FLAIR", "GADO", "DP"]):
        written = array(result.folder / f"imagesTr/Center_07_Patient_01_{channel:04d}.nii.gz")
        assert np.array_equal(written, array(source / PATIENT / f"Preprocessed_Data/{name}_preprocessed.nii.gz"))


def test_raw_images_only_the_flair_is_on_the_mask_grid(tmp_path, raw):
    source = msseg2016.build(tmp_path / "downloads")
    result = run_convert("msseg2016", source, raw, options={"images": "raw", "modalities": ["FLAIR"]})
    written = array(result.folder / "imagesTr/Center_07_Patient_01_0000.nii.gz")
    assert np.array_equal(written, array(source / PATIENT / "Raw_Data/FLAIR.nii.gz"))
    with pytest.raises(NnunetTransferError, match=r"mask Consensus.nii.gz geometry differs from the image beyond"):
        run_convert("msseg2016", source, raw, dataset_id=502, options={"images": "raw"})
    result = run_convert("msseg2016", source, raw, dataset_id=503, options={"images": "raw"},
                         policy=GeometryPolicy(resample=True))
    assert array(result.folder / "labelsTr/Center_07_Patient_01.nii.gz").shape == msseg2016.RAW_T1_SHAPE[::-1]


def test_test_folder_without_masks_gives_images_only(tmp_path, raw):
    source = msseg2016.build(tmp_path / "downloads")
    shutil.rmtree(source / "testing/Center_03/Patient_01/Masks")
    result = run_convert("msseg2016", source, raw)
    assert "imagesTs/test_Center_03_Patient_01_0000.nii.gz" in tree(result.folder)
    assert not (result.folder / "labelsTs").exists()


def test_missing_mask_or_image_folder_is_a_bad_case(tmp_path, raw):
    source = msseg2016.build(tmp_path / "downloads")
    (source / PATIENT / "Masks/ManualSegmentation_4.nii.gz").unlink()
    shutil.rmtree(source / "Training/Center_01/Patient_01/Preprocessed_Data")
    with pytest.raises(NnunetTransferError) as error:
        run_convert("msseg2016", source, raw, options={"rater": "majority"})
    assert "Center_07_Patient_01: no ManualSegmentation_4.nii.gz (--rater majority) in" in str(error.value)
    assert "Center_01_Patient_01: no Preprocessed_Data folder in" in str(error.value)
    result = run_convert("msseg2016", source, raw, skip_bad=True)  # Center_07's consensus is still there
    assert [r.case.case_id for r in result.bad] == ["Center_01_Patient_01"]
    assert sorted(r.case.case_id for r in result.good) == ["Center_07_Patient_01", "test_Center_03_Patient_01"]


def test_only_raw_data_downloaded(tmp_path, raw):
    source = msseg2016.build(tmp_path / "downloads")
    for folder in list(source.rglob("Preprocessed_Data")):
        shutil.rmtree(folder)
    with pytest.raises(NnunetTransferError, match=r"found no preprocessed images below .*pass --images raw"):
        run_convert("msseg2016", source, raw)


def test_2016_layout_prefers_the_preprocessed_copy(tmp_path, raw):
    source = msseg2016.build_portal(tmp_path / "downloads")
    before = snapshot(source)
    result = run_convert("msseg2016", source, raw, options={"modalities": ["T1", "FLAIR"]})
    assert tree(result.folder) == ["dataset.json"] + [f"imagesTr/{p}_000{c}.nii.gz" for p in msseg2016.PORTAL_IDS
                                                      for c in (0, 1)] + [f"labelsTr/{p}.nii.gz"
                                                                          for p in msseg2016.PORTAL_IDS]
    pre = source / "Pre-processed training dataset/07001MOEL"
    written = array(result.folder / "imagesTr/07001MOEL_0000.nii.gz")
    assert np.array_equal(written, array(pre / "T1_preprocessed.nii.gz"))
    assert array(result.folder / "labelsTr/07001MOEL.nii.gz").sum() == 27
    unprocessed = run_convert("msseg2016", source, raw, dataset_id=502, options={"images": "raw",
                                                                                 "modalities": ["FLAIR"]})
    flair = source / "Unprocessed training dataset/TrainingDataset_MSSEG/07001MOEL/3DFLAIR.nii.gz"
    assert np.array_equal(array(unprocessed.folder / "imagesTr/07001MOEL_0000.nii.gz"), array(flair))
    assert snapshot(source) == before


def test_2016_layout_with_masks_in_their_own_folder(tmp_path, raw):
    source = msseg2016.build_portal(tmp_path / "downloads")
    shutil.rmtree(source / "Unprocessed training dataset")
    masks = source / "ManualSegmentation" / "01016SACH"
    masks.mkdir(parents=True)
    for path in (source / "Pre-processed training dataset/01016SACH").glob("*Segmentation_*"):
        shutil.move(path, masks / path.name)
    (source / "Pre-processed training dataset/01016SACH/Consensus.nii.gz").unlink()
    result = run_convert("msseg2016", source, raw, options={"rater": "union"})
    assert not result.bad and array(result.folder / "labelsTr/01016SACH.nii.gz").sum() == 175
    (source / "Pre-processed training dataset/08002CHJE/T1_preprocessed.nii.gz").unlink()
    with pytest.raises(NnunetTransferError, match=r"08002CHJE: no T1_preprocessed.nii.gz \(T1\) in"):
        run_convert("msseg2016", source, raw, dataset_id=502)


def test_not_the_download_and_bad_options(tmp_path, raw):
    (tmp_path / "other" / "sub").mkdir(parents=True)
    with pytest.raises(NnunetTransferError, match=r"found no cases in .*other; expected Training/Center_XX"):
        run_convert("msseg2016", tmp_path / "other", raw)
    source = msseg2016.build(tmp_path / "downloads")
    with pytest.raises(NnunetTransferError, match=r"--modalities T1 T1: give each of"):
        run_convert("msseg2016", source, raw, options={"modalities": ["T1", "T1"]})


def test_2016_layout_patient_without_the_chosen_images(tmp_path, raw):
    source = msseg2016.build_portal(tmp_path / "downloads")
    shutil.rmtree(source / "Pre-processed training dataset/08002CHJE")
    with pytest.raises(NnunetTransferError, match=r"08002CHJE: no preprocessed images for patient 08002CHJE "
                                                  r"\(only raw ones in .*Unprocessed training dataset"):
        run_convert("msseg2016", source, raw)
