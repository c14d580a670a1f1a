"""IXI T1: unlabelled by default; sex / age classes from IXI.xls with its duplicates, AGE 0 and missing rows."""
import numpy as np
import pytest

from nnunet_transfer.errors import NnunetTransferError
from nnunet_transfer.io import read_json
from tests.conversion.conftest import array, dataset_json, run_convert, snapshot, tree
from tests.conversion.fixtures import ixi

IDS = ["IXI002", "IXI012", "IXI013", "IXI014", "IXI015", "IXI016"]


@pytest.fixture
def source(tmp_path):
    return ixi.build(tmp_path / "downloads")


def test_unlabelled_by_default(source, raw):
    before = snapshot(source)
    (source.parent / "IXI.xls").unlink()  # not needed without a label
    result = run_convert("ixi", source, raw)
    folder = raw / "Dataset501_IXI_T1"
    assert result.folder == folder and not result.bad
    assert tree(folder) == ["dataset.json"] + [f"imagesTr/{i}_0000.nii.gz" for i in IDS] + [
        f"labelsTr/{i}.nii.gz" for i in IDS]
    meta = dataset_json(folder)
    assert meta["labels"] == {"background": 0, "head": 1} and meta["placeholder_labels"] is True
    assert meta["channel_names"] == {"0": "T1"} and meta["numTraining"] == 6 and meta["numTest"] == 0
    assert "class_names" not in meta and meta["licence"].startswith("CC BY-SA 3.0")
    assert meta["reference"] == "https://brain-development.org/ixi-dataset/"
    assert meta["nnunet_transfer"]["notes"] == ["6 T1 volume(s) from Guys, HH, IOP"]
    label = array(folder / "labelsTr/IXI013.nii.gz")
    assert set(np.unique(label)) == {0, 1} and label.sum() > 100
    assert snapshot(source) == before


def test_sex_from_the_spreadsheet(source, raw):
    result = run_convert("ixi", source, raw, options={"label": "sex"})
    assert read_json(result.folder / "class_labels.json") == {
        "class_names": ["female", "male"],
        "labels": {"IXI002": 0, "IXI012": 1, "IXI014": 0, "IXI016": 1}}  # IXI012's identical duplicate is fine
    notes = dataset_json(result.folder)["nnunet_transfer"]["notes"]
    assert "left out 1 case(s) that cannot be labelled by sex (duplicate rows disagree on SEX_ID: 1 vs 2): " \
           "IXI013" in notes
    assert "left out 1 case(s) that cannot be labelled by sex (no row in IXI.xls): IXI015" in notes
    assert sorted(p.name for p in (result.folder / "imagesTr").iterdir()) == [
        "IXI002_0000.nii.gz", "IXI012_0000.nii.gz", "IXI014_0000.nii.gz", "IXI016_0000.nii.gz"]


def test_age_bins(source, raw):
    result = run_convert("ixi", source, raw, options={"label": "age-bins", "age_bins": "40,60,80"})
    assert read_json(result.folder / "class_labels.json") == {
        "class_names": ["age_lt40", "age_40_60", "age_60_80", "age_ge80"],
        "labels": {"IXI002": 0, "IXI012": 2}}
    assert "left out 2 case(s) that cannot be labelled by age-bins (no AGE (blank or 0)): IXI014, IXI016" \
           in result.notes
    assert "(duplicate rows disagree on AGE: 46.17 vs 47): IXI013" in "\n".join(result.notes)


def test_xls_option_and_missing_xls(source, raw, tmp_path):
    moved = tmp_path / "demographics.xls"
    (source.parent / "IXI.xls").rename(moved)
    with pytest.raises(NnunetTransferError, match=r"no IXI.xls in .*IXI-T1 or .*downloads; a class label needs"):
        run_convert("ixi", source, raw, options={"label": "sex"})
    result = run_convert("ixi", source, raw, options={"label": "sex", "xls": str(moved)})
    assert len(result.good) == 4


def test_spreadsheet_without_the_table_sheet(source, raw):
    import xlwt

    book = xlwt.Workbook()
    book.add_sheet("Sheet1").write(0, 0, "IXI_ID")
    book.save(str(source.parent / "IXI.xls"))
    with pytest.raises(NnunetTransferError, match=r"IXI.xls has no sheet 'Table' \(found \['Sheet1'\]\)"):
        run_convert("ixi", source, raw, options={"label": "sex"})


def test_not_a_spreadsheet(source, raw):
    (source.parent / "IXI.xls").write_text("IXI_ID,SEX_ID\n2,1\n")
    with pytest.raises(NnunetTransferError, match=r"cannot read .*IXI.xls as an Excel .xls file"):
        run_convert("ixi", source, raw, options={"label": "sex"})


def test_nobody_labelled(source, raw):
    ixi.write_xls(source.parent / "IXI.xls", rows=[(999, 1, 50.0)])
    with pytest.raises(NnunetTransferError, match=r"none of the 6 IXI subject\(s\) .* can be labelled by sex"):
        run_convert("ixi", source, raw, options={"label": "sex"})


def test_other_files_and_modalities_are_ignored(source, raw):
    (source / "IXI002-Guys-0828-T2.nii.gz").write_bytes((source / "IXI002-Guys-0828-T1.nii.gz").read_bytes())
    (source / "._IXI012-HH-1211-T1.nii.gz").write_bytes(b"\x00\x05\x16\x07")
    result = run_convert("ixi", source.parent, raw)  # downloads/ instead of downloads/IXI-T1
    assert [r.case.case_id for r in result.good] == IDS


def test_no_t1_files(tmp_path, raw):
    (tmp_path / "IXI-T1").mkdir()
    with pytest.raises(NnunetTransferError, match=r"found no cases in .*IXI-T1; expected IXI T1 files"):
        run_convert("ixi", tmp_path / "IXI-T1", raw)
