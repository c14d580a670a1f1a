"""ATLAS R1.2 / R1.1: release detected from file names, one case per time point, lesion files OR-ed,
patient-level splits."""
import shutil

import numpy as np
import pytest

from nnunet_transfer.errors import NnunetTransferError
from nnunet_transfer.io import read_json
from tests.conversion.conftest import array, dataset_json, run_convert, snapshot, tree
from tests.conversion.fixtures import atlas1


def _label_sums(folder, case_ids):
    return {c: int(array(folder / f"labelsTr/{c}.nii.gz").sum()) for c in case_ids}


def test_r12_converts_every_time_point(tmp_path, raw):
    source = atlas1.build(tmp_path / "downloads")
    before = snapshot(source)
    result = run_convert("atlas1", source, raw)
    folder = raw / "Dataset501_ATLAS1"
    assert result.folder == folder and not result.bad
    ids = ["c0003s0043t01", "c0003s0043t02", "c0003s0044t01", "c0005s0001t01"]
    assert tree(folder) == ["dataset.json", *[f"imagesTr/{c}_0000.nii.gz" for c in ids],
                            *[f"labelsTr/{c}.nii.gz" for c in ids], "patients.json", "splits_final.json"]
    meta = dataset_json(folder)
    assert meta["numTraining"] == 4 and meta["numTest"] == 0
    assert meta["channel_names"] == {"0": "T1"} and meta["labels"] == {"background": 0, "lesion": 1}
    assert meta["source"].endswith("(R1.2)") and "sdata.2018.11" in meta["citation"] and meta["licence"]
    assert meta["nnunet_transfer"]["notes"] == ["release R1.2 detected from the file names"]
    label = array(folder / "labelsTr/c0003s0044t01.nii.gz")
    assert label.dtype == np.uint8 and set(np.unique(label)) == {0, 1}
    # 255, 1, two files 255 + 254 (5x5x5 cubes overlapping in 3 x-planes: 7x5x5), 254 in a .nii file
    assert _label_sums(folder, ids) == {"c0003s0043t01": 125, "c0003s0043t02": 125, "c0003s0044t01": 175,
                                        "c0005s0001t01": 125}
    assert snapshot(source) == before


def test_r11_case_ids_keep_site_patient_and_time_point(tmp_path, raw):
    source = atlas1.build_r11(tmp_path / "downloads")
    before = snapshot(source)
    result = run_convert("atlas1", source, raw)
    ids = ["site1_031768_t01", "site1_031768_t02", "site1_031769_t01", "site2_031806_t01"]
    assert tree(result.folder) == ["dataset.json", *[f"imagesTr/{c}_0000.nii.gz" for c in ids],
                                   *[f"labelsTr/{c}.nii.gz" for c in ids], "patients.json", "splits_final.json"]
    patients = {"site1_031768_t01": "site1_031768", "site1_031768_t02": "site1_031768",
                "site1_031769_t01": "site1_031769", "site2_031806_t01": "site2_031806"}
    assert {r.case.case_id: r.case.patient for r in result.good} == patients
    assert read_json(result.folder / "patients.json") == patients  # for label-efficiency subsets of patients
    assert dataset_json(result.folder)["source"].endswith("(R1.1)")
    assert _label_sums(result.folder, ids) == {"site1_031768_t01": 175, "site1_031768_t02": 125,
                                               "site1_031769_t01": 125, "site2_031806_t01": 125}
    assert snapshot(source) == before


@pytest.mark.parametrize("build", [atlas1.build, atlas1.build_r11])
def test_patient_split_keeps_time_points_of_a_patient_in_one_fold(build, tmp_path, raw):
    result = run_convert("atlas1", build(tmp_path / "downloads"), raw)
    splits = read_json(result.folder / "splits_final.json")
    patient = {r.case.case_id: r.case.patient for r in result.good}
    assert len(splits) == 3  # three patients
    vals = [set(fold["val"]) for fold in splits]
    assert sorted(c for v in vals for c in v) == sorted(patient)  # every case validated exactly once
    for fold, val in zip(splits, vals):
        assert set(fold["train"]) == set(patient) - val
        # a patient is either wholly in this fold's validation set or wholly out of it
        assert {patient[c] for c in val}.isdisjoint({patient[c] for c in fold["train"]})
    two_time_points = {c for c, p in patient.items() if list(patient.values()).count(p) == 2}
    assert len(two_time_points) == 2 and any(two_time_points <= v for v in vals)


def test_lesion_files_of_another_scan_are_not_mixed_in(tmp_path, raw):
    source = atlas1.build(tmp_path / "downloads")
    result = run_convert("atlas1", source, raw, dry_run=True)
    masks = {r.case.case_id: [m.name for m in r.case.masks] for r in result.results}
    assert masks["c0003s0044t01"] == ["c0003s0044t01_LesionSmooth_1_stx.nii.gz",
                                      "c0003s0044t01_LesionSmooth_2_stx.nii.gz"]
    assert masks["c0003s0043t01"] == ["c0003s0043t01_LesionSmooth_stx.nii.gz"]


def test_missing_lesion_file_is_a_bad_case(tmp_path, raw):
    source = atlas1.build(tmp_path / "downloads")
    (source / "c0005/c0005s0001t01/c0005s0001t01_LesionSmooth_stx.nii").unlink()
    with pytest.raises(NnunetTransferError, match=r"c0005s0001t01: no lesion mask next to .*c0005s0001t01_t1w_stx\.nii "
                                                  r"\(expected c0005s0001t01_LesionSmooth_stx\.nii\.gz\)"):
        run_convert("atlas1", source, raw)
    result = run_convert("atlas1", source, raw, skip_bad=True)
    assert list(dataset_json(result.folder)["nnunet_transfer"]["skipped_cases"]) == ["c0005s0001t01"]


def test_a_folder_holding_both_releases_is_refused(tmp_path, raw):
    atlas1.build(tmp_path / "downloads")
    with pytest.raises(NnunetTransferError, match=r"holds both ATLAS R1\.2 files .* and R1\.1 files .*point SOURCE_DIR "
                                                  r"at one release folder"):
        run_convert("atlas1", tmp_path / "downloads", raw)
    shutil.rmtree(tmp_path / "downloads/ATLAS_R1.1")
    assert run_convert("atlas1", tmp_path / "downloads", raw).good  # the folder above one release is fine


def test_a_folder_without_atlas_files_is_refused(tmp_path, raw):
    source = tmp_path / "downloads/ATLAS_2/Training"
    source.mkdir(parents=True)
    (source / "sub-r001s001_ses-1_T1w.nii.gz").write_bytes(b"")
    with pytest.raises(NnunetTransferError, match=r"found no cases in .*ATLAS_2.*expected ATLAS R1\.2 c0xxx/"):
        run_convert("atlas1", tmp_path / "downloads/ATLAS_2", raw)
