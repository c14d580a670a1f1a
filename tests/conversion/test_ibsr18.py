"""IBSR18: stripped T1 + segTRI_fill labels, (x, y, z, 1) volumes, look-alike files, --with-skull, bad layouts."""
import nibabel
import numpy as np
import pytest

from nnunet_transfer.errors import NnunetTransferError
from tests.conversion.conftest import array, dataset_json, run_convert, snapshot, tree
from tests.conversion.fixtures import ibsr18


def test_converts_stripped_t1_and_tissue_labels(tmp_path, raw):
    source = ibsr18.build(tmp_path / "downloads")
    assert nibabel.load(source / "IBSR_01/IBSR_01_segTRI_fill_ana.nii.gz").shape == (12, 14, 10, 1)  # the quirk
    before = snapshot(source)
    result = run_convert("ibsr18", source, raw)
    folder = raw / "Dataset501_IBSR18"
    assert result.folder == folder and not result.bad
    assert tree(folder) == ["dataset.json", "imagesTr/IBSR_01_0000.nii.gz", "imagesTr/IBSR_02_0000.nii.gz",
                            "imagesTr/IBSR_18_0000.nii.gz", "labelsTr/IBSR_01.nii.gz", "labelsTr/IBSR_02.nii.gz",
                            "labelsTr/IBSR_18.nii.gz"]
    meta = dataset_json(folder)
    assert meta["labels"] == {"background": 0, "CSF": 1, "grey_matter": 2, "white_matter": 3}
    assert meta["channel_names"] == {"0": "T1"} and meta["numTraining"] == 3 and meta["numTest"] == 0
    assert "nitrc.org/projects/ibsr" in meta["reference"] and "Center for Morphometric Analysis" in meta["citation"]
    label = nibabel.load(folder / "labelsTr/IBSR_02.nii.gz")
    assert label.shape == (12, 14, 10) and label.get_data_dtype() == np.uint8  # singleton 4th dimension dropped
    assert np.allclose(label.header.get_zooms(), ibsr18.SPACING)
    assert np.array_equal(np.asarray(label.dataobj), ibsr18.tissue(1)[..., 0])
    image = np.asarray(nibabel.load(folder / "imagesTr/IBSR_02_0000.nii.gz").dataobj)
    stripped = np.asarray(nibabel.load(source / "IBSR_02/IBSR_02_ana_strip.nii.gz").dataobj)[..., 0]
    assert image.shape == (12, 14, 10) and np.array_equal(image, stripped)
    assert snapshot(source) == before


def test_with_skull_uses_the_unstripped_t1(tmp_path, raw):
    source = ibsr18.build(tmp_path / "downloads")
    result = run_convert("ibsr18", source.parent, raw, options={"with_skull": True})  # the folder above works too
    image = array(result.folder / "imagesTr/IBSR_01_0000.nii.gz")
    assert np.array_equal(image, array(source / "IBSR_01/IBSR_01_ana.nii.gz"))
    assert (image[array(result.folder / "labelsTr/IBSR_01.nii.gz") == 0] != 0).any()  # the skull is there
    assert dataset_json(result.folder)["nnunet_transfer"]["options"] == {"with_skull": True}


def test_look_alike_files_are_not_the_image_or_label(tmp_path, raw):
    source = ibsr18.build(tmp_path / "downloads")
    (source / "IBSR_18/IBSR_18_segTRI_fill_ana.nii.gz").unlink()
    (source / "IBSR_02/IBSR_02_ana_strip.nii.gz").unlink()
    with pytest.raises(NnunetTransferError) as error:
        run_convert("ibsr18", source, raw)
    message = str(error.value)
    assert "IBSR_02: no IBSR_02_ana_strip.nii.gz (the T1 image) in" in message
    assert "IBSR_18: no IBSR_18_segTRI_fill_ana.nii.gz (the CSF / GM / WM labels) in" in message
    result = run_convert("ibsr18", source, raw, skip_bad=True)
    assert [r.case.case_id for r in result.good] == ["IBSR_01"]


def test_unexpected_label_value_is_a_bad_case(tmp_path, raw):
    source = ibsr18.build(tmp_path / "downloads")
    ibsr18.write_nifti(source / "IBSR_01/IBSR_01_segTRI_fill_ana.nii.gz", ibsr18.tissue(0) * 17, spacing=ibsr18.SPACING)
    with pytest.raises(NnunetTransferError, match=r"IBSR_01: label values \[17, 34, 51\] are not in the expected set"):
        run_convert("ibsr18", source, raw)


def test_not_the_download(tmp_path, raw):
    (tmp_path / "other" / "subject1").mkdir(parents=True)
    with pytest.raises(NnunetTransferError, match=r"other has no IBSR_01 \.\.\. IBSR_18 subject folders"):
        run_convert("ibsr18", tmp_path / "other", raw)
