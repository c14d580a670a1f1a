"""OASIS-1 segmentation: neurite-oasis (colour tables, seg4 / seg35, aligned / native) and Learn2Reg layouts."""
import numpy as np
import pytest

from nnunet_transfer.conversion.oasis1 import nnunet_labels, read_colour_table
from nnunet_transfer.errors import NnunetTransferError
from tests.conversion.conftest import array, dataset_json, run_convert, snapshot, tree
from tests.conversion.fixtures import oasis1
from tests.conversion.fixtures._write import write_nifti


@pytest.fixture
def neurite(tmp_path):
    return oasis1.build_neurite(tmp_path / "downloads")


@pytest.fixture
def learn2reg(tmp_path):
    return oasis1.build_learn2reg(tmp_path / "downloads")


def test_neurite_seg4_aligned_by_default(neurite, raw):
    before = snapshot(neurite)
    result = run_convert("oasis1", neurite, raw)
    folder = raw / "Dataset501_OASIS1"
    assert result.folder == folder and not result.bad
    assert tree(folder) == ["dataset.json"] + [f"imagesTr/{s}_0000.nii.gz" for s in oasis1.SUBJECTS] + [
        f"labelsTr/{s}.nii.gz" for s in oasis1.SUBJECTS]
    meta = dataset_json(folder)
    assert meta["labels"] == {"background": 0, "Cortex": 1, "Subcortical-Gray-Matter": 2, "White-Matter": 3, "CSF": 4}
    assert meta["channel_names"] == {"0": "T1"} and meta["numTraining"] == 3 and meta["numTest"] == 0
    assert "Marcus" in meta["citation"] and "HyperMorph" in meta["citation"] and "OASIS" in meta["licence"]
    assert meta["nnunet_transfer"]["options"] == {"labels": "seg4", "space": "aligned"}
    image = array(folder / "imagesTr/OAS1_0002_MR1_0000.nii.gz")
    assert image.shape == oasis1.ALIGNED[::-1]  # aligned_norm, not the native norm (11^3) nor a 2D slice
    source = oasis1.segmentation(oasis1.ALIGNED, 4, 1)
    assert np.array_equal(array(folder / "labelsTr/OAS1_0002_MR1.nii.gz"), source.transpose(2, 1, 0))
    assert snapshot(neurite) == before


def test_seg35_names_from_the_colour_table(neurite, raw):
    result = run_convert("oasis1", neurite, raw, options={"labels": "seg35"})
    labels = dataset_json(result.folder)["labels"]
    assert len(labels) == 36 and list(labels.values()) == list(range(36))
    assert labels["Left-Cerebral-White-Matter"] == 1 and labels["Right-choroid-plexus"] == 35
    label = array(result.folder / "labelsTr/OAS1_0042_MR1.nii.gz")
    assert set(np.unique(label)) == {0} | {(v + 6) % 35 + 1 for v in range(8)}


def test_native_space(neurite, raw):
    result = run_convert("oasis1", neurite, raw, options={"labels": None, "space": "native"})
    assert array(result.folder / "imagesTr/OAS1_0001_MR1_0000.nii.gz").shape == oasis1.NATIVE
    assert array(result.folder / "labelsTr/OAS1_0001_MR1.nii.gz").shape == oasis1.NATIVE


def test_accepts_the_folder_above(neurite, raw):
    result = run_convert("oasis1", neurite.parent, raw)  # downloads/ instead of downloads/neurite-oasis
    assert len(result.good) == 3


def test_label_value_missing_from_the_table_is_a_bad_case(neurite, raw):
    seg = oasis1.segmentation(oasis1.ALIGNED, 4, 0)
    seg[0, 0, 0] = 7
    write_nifti(neurite / "OASIS_OAS1_0001_MR1" / "aligned_seg4.nii.gz", seg)
    with pytest.raises(NnunetTransferError, match=r"OAS1_0001_MR1: label values \[7\] are not in the expected set"):
        run_convert("oasis1", neurite, raw)
    result = run_convert("oasis1", neurite, raw, skip_bad=True)
    assert [r.case.case_id for r in result.bad] == ["OAS1_0001_MR1"]


def test_missing_segmentation_is_a_bad_case(neurite, raw):
    (neurite / "OASIS_OAS1_0042_MR1" / "aligned_seg35.nii.gz").unlink()
    with pytest.raises(NnunetTransferError, match=r"OAS1_0042_MR1: no aligned_seg35.nii.gz in .*OASIS_OAS1_0042_MR1"):
        run_convert("oasis1", neurite, raw, options={"labels": "seg35"})


def test_missing_colour_table(neurite, raw):
    (neurite / "seg4_labels.txt").unlink()
    with pytest.raises(NnunetTransferError, match=r"has no seg4_labels.txt \(the FreeSurfer colour table"):
        run_convert("oasis1", neurite, raw)


def test_malformed_colour_table(neurite, raw):
    (neurite / "seg4_labels.txt").write_text("0 Unknown 0 0 0 0\nCortex 1 2 3 0\n")
    with pytest.raises(NnunetTransferError, match=r"seg4_labels.txt line 2 'Cortex 1 2 3 0' is not a FreeSurfer"):
        run_convert("oasis1", neurite, raw)


def test_colour_table_comments_and_label_names(tmp_path):
    path = tmp_path / "lut.txt"
    path.write_text("# comment\n\n0 Unknown 0 0 0 0\n2 Left Cortex 1 1 1 0\n5 CSF 1 1 1 0  # trailing\n"
                    "7 CSF 2 2 2 0\n9 ignore 0 0 0 0\n")
    table = read_colour_table(path)
    assert table == {0: "Unknown", 2: "Left", 5: "CSF", 7: "CSF", 9: "ignore"}
    labels, mapping = nnunet_labels(table)
    # gaps renumbered consecutively, a repeated name and nnU-Net's reserved 'ignore' get the source value
    assert labels == {"background": 0, "Left": 1, "CSF": 2, "CSF_7": 3, "ignore_9": 4}
    assert mapping == {0: 0, 2: 1, 5: 2, 7: 3, 9: 4}


def test_learn2reg_layout(learn2reg, raw):
    before = snapshot(learn2reg)
    result = run_convert("oasis1", learn2reg, raw)
    assert not result.bad
    assert tree(result.folder) == ["dataset.json"] + [f"imagesTr/{c}_0000.nii.gz" for c in oasis1.L2R_TRAIN] + [
        "imagesTs/OASIS_0438_0000.nii.gz"] + [f"labelsTr/{c}.nii.gz" for c in oasis1.L2R_TRAIN]
    meta = dataset_json(result.folder)
    assert meta["numTraining"] == 3 and meta["numTest"] == 1
    assert meta["labels"] == {"background": 0, **{f"label_{v}": v for v in range(1, 36)}}
    assert meta["nnunet_transfer"]["options"] == {"labels": "seg35", "space": "aligned"}
    assert "Learn2Reg ships no colour table: labels are named label_<value>" in meta["nnunet_transfer"]["notes"]
    assert "learn2reg.grand-challenge.org" in meta["reference"]
    label = array(result.folder / "labelsTr/OASIS_0002.nii.gz")
    assert np.array_equal(label, oasis1.segmentation(oasis1.ALIGNED, 35, 5).transpose(2, 1, 0))
    assert snapshot(learn2reg) == before


def test_learn2reg_uses_a_colour_table_beside_it(learn2reg, raw):
    (learn2reg / "seg35_labels.txt").write_text(oasis1.colour_table(oasis1.SEG35_NAMES))
    result = run_convert("oasis1", learn2reg.parent, raw)
    assert dataset_json(result.folder)["labels"]["Brain-Stem"] == 13


def test_learn2reg_image_without_label(learn2reg, raw):
    (learn2reg / "labelsTr" / "OASIS_0003_0000.nii.gz").unlink()
    with pytest.raises(NnunetTransferError, match=r"OASIS_0003: no label file labelsTr/OASIS_0003_0000.nii.gz"):
        run_convert("oasis1", learn2reg, raw)


def test_learn2reg_has_no_seg4(learn2reg, raw):
    with pytest.raises(NnunetTransferError, match="has only the 35-label segmentation"):
        run_convert("oasis1", learn2reg, raw, options={"labels": "seg4"})
    with pytest.raises(NnunetTransferError, match="has only the aligned volumes"):
        run_convert("oasis1", learn2reg, raw, options={"space": "native"})


def test_not_oasis(tmp_path, raw):
    (tmp_path / "other" / "imagesTr").mkdir(parents=True)
    with pytest.raises(NnunetTransferError, match=r"is neither neurite-oasis .* nor the Learn2Reg OASIS release"):
        run_convert("oasis1", tmp_path / "other", raw)

