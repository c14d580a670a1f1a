"""OASIS-1 classification: CDR / sex / age bins from oasis_cross-sectional.csv, unlabelled sessions left out."""
import numpy as np
import pytest

from nnunet_transfer.conversion.oasis1_cls import age_bin, age_bin_names, parse_age_bins
from nnunet_transfer.errors import NnunetTransferError
from nnunet_transfer.io import read_json
from tests.conversion.conftest import array, dataset_json, run_convert, snapshot, tree
from tests.conversion.fixtures import oasis1_cls


@pytest.fixture
def neurite(tmp_path):
    return oasis1_cls.build(tmp_path / "downloads")


@pytest.fixture
def disc(tmp_path):
    return oasis1_cls.build_disc(tmp_path / "downloads")


def test_cdr_from_the_csv_beside_neurite_oasis(neurite, raw):
    before, csv_before = snapshot(neurite), (neurite.parent / "oasis_cross-sectional.csv").stat().st_mtime_ns
    result = run_convert("oasis1-cls", neurite, raw)
    folder = raw / "Dataset501_OASIS1cls"
    assert result.folder == folder and not result.bad
    # OAS1_0002_MR1 (25 years, blank CDR) is left out, not an error
    assert tree(folder) == ["class_labels.json", "dataset.json", "imagesTr/OAS1_0001_MR1_0000.nii.gz",
                            "imagesTr/OAS1_0042_MR1_0000.nii.gz", "labelsTr/OAS1_0001_MR1.nii.gz",
                            "labelsTr/OAS1_0042_MR1.nii.gz"]
    assert read_json(folder / "class_labels.json") == {
        "class_names": ["cdr0", "cdr0.5", "cdr1", "cdr2"], "labels": {"OAS1_0001_MR1": 0, "OAS1_0042_MR1": 2}}
    meta = dataset_json(folder)
    assert meta["labels"] == {"background": 0, "head": 1} and meta["placeholder_labels"] is True
    assert meta["class_names"] == ["cdr0", "cdr0.5", "cdr1", "cdr2"] and meta["numTraining"] == 2
    assert meta["channel_names"] == {"0": "T1"} and "doi:10.1162/jocn.2007.19.9.1498" in meta["citation"]
    left_out = "left out 1 case(s) that cannot be labelled by cdr (blank CDR): OAS1_0002_MR1"
    assert left_out in meta["nnunet_transfer"]["notes"] and left_out in result.notes
    assert f"note: {left_out}" in result.summary()
    label = array(folder / "labelsTr/OAS1_0001_MR1.nii.gz")
    assert set(np.unique(label)) == {0, 1} and label.sum() > 100  # head placeholder
    assert array(folder / "imagesTr/OAS1_0001_MR1_0000.nii.gz").shape == (10, 14, 12)  # aligned_norm
    assert snapshot(neurite) == before
    assert (neurite.parent / "oasis_cross-sectional.csv").stat().st_mtime_ns == csv_before


def test_sex_labels_every_session(neurite, raw):
    result = run_convert("oasis1-cls", neurite, raw, options={"label": "sex"})
    assert read_json(result.folder / "class_labels.json") == {
        "class_names": ["female", "male"],
        "labels": {"OAS1_0001_MR1": 0, "OAS1_0002_MR1": 0, "OAS1_0042_MR1": 1}}
    assert not (result.folder / "splits_final.json").exists()  # one session per patient


def test_age_bins_custom_edges(neurite, raw):
    result = run_convert("oasis1-cls", neurite, raw, options={"label": "age-bins", "age_bins": "30,74.5"})
    assert read_json(result.folder / "class_labels.json") == {
        "class_names": ["age_lt30", "age_30_74.5", "age_ge74.5"],
        "labels": {"OAS1_0001_MR1": 1, "OAS1_0002_MR1": 0, "OAS1_0042_MR1": 2}}


def test_age_bin_edges():
    assert parse_age_bins("40,60,80") == [40, 60, 80]
    assert age_bin_names([40, 60, 80]) == ["age_lt40", "age_40_60", "age_60_80", "age_ge80"]
    assert [age_bin(a, [40, 60, 80]) for a in (18, 40, 59.9, 60, 96)] == [
        "age_lt40", "age_40_60", "age_40_60", "age_60_80", "age_ge80"]  # a bin includes its lower edge
    for bad in ("60,40", "", "forty"):
        with pytest.raises(NnunetTransferError, match="expected increasing ages in years"):
            parse_age_bins(bad)


def test_disc_layout_with_rescans(disc, raw):
    result = run_convert("oasis1-cls", disc, raw)  # csv inside SOURCE_DIR
    labels = read_json(result.folder / "class_labels.json")["labels"]
    assert labels == {"OAS1_0001_MR1": 0, "OAS1_0003_MR1": 1, "OAS1_0061_MR1": 0, "OAS1_0061_MR2": 0}
    notes = dataset_json(result.folder)["nnunet_transfer"]["notes"]
    assert "left out 1 case(s) that cannot be labelled by cdr (no row in oasis_cross-sectional.csv): " \
           "OAS1_0099_MR1" in notes
    # the rescan shares its patient's fold
    for fold in read_json(result.folder / "splits_final.json"):
        assert ("OAS1_0061_MR1" in fold["val"]) == ("OAS1_0061_MR2" in fold["val"])
    # the masked (skull-stripped) T88 image, not the gfc one nor RAW
    assert array(result.folder / "imagesTr/OAS1_0001_MR1_0000.nii.gz").max() < 135


def test_csv_option_and_missing_csv(neurite, raw, tmp_path):
    moved = tmp_path / "elsewhere.csv"
    (neurite.parent / "oasis_cross-sectional.csv").rename(moved)
    with pytest.raises(NnunetTransferError, match=r"no oasis_cross-sectional.csv in .*neurite-oasis or .*downloads"):
        run_convert("oasis1-cls", neurite, raw)
    result = run_convert("oasis1-cls", neurite, raw, options={"csv": str(moved)})
    assert len(result.good) == 2
    with pytest.raises(NnunetTransferError, match=r"--csv .*nope.csv is not a file"):
        run_convert("oasis1-cls", neurite, raw, options={"csv": str(tmp_path / "nope.csv")})


def test_csv_without_the_column(neurite, raw):
    (neurite.parent / "oasis_cross-sectional.csv").write_text("ID,M/F,Age\nOAS1_0001_MR1,F,74\n")
    with pytest.raises(NnunetTransferError, match=r"has no column\(s\) \['CDR'\]"):
        run_convert("oasis1-cls", neurite, raw)


def test_unexpected_and_conflicting_values_are_left_out(neurite, raw):
    rows = oasis1_cls.ROWS + ["OAS1_0001_MR1,F,R,74,2,3,29,0.5,1344,0.743,1.306,N/A",
                              "OAS1_0042_MR1,M,R,81,3,2,21,3,1580,0.701,1.111,N/A"]
    oasis1_cls.write_csv(neurite.parent / "oasis_cross-sectional.csv", rows)
    with pytest.raises(NnunetTransferError, match=r"none of the 3 session\(s\) .* can be labelled by cdr"):
        run_convert("oasis1-cls", neurite, raw)
    oasis1_cls.write_csv(neurite.parent / "oasis_cross-sectional.csv", oasis1_cls.ROWS[:3] + [
        "OAS1_0042_MR1,M,R,81,3,2,21,3,1580,0.701,1.111,N/A"])
    result = run_convert("oasis1-cls", neurite, raw)
    assert "left out 1 case(s) that cannot be labelled by cdr (CDR 3 is not one of 0, 0.5, 1, 2): OAS1_0042_MR1" \
           in result.notes


def test_missing_image_is_a_bad_case(neurite, raw):
    (neurite / "OASIS_OAS1_0042_MR1" / "aligned_norm.nii.gz").unlink()
    with pytest.raises(NnunetTransferError, match=r"OAS1_0042_MR1: no aligned_norm.nii.gz in"):
        run_convert("oasis1-cls", neurite, raw)


def test_not_oasis(tmp_path, raw):
    (tmp_path / "empty").mkdir()
    with pytest.raises(NnunetTransferError, match=r"holds neither neurite-oasis subject folders .* nor OASIS-1 disc"):
        run_convert("oasis1-cls", tmp_path / "empty", raw)
