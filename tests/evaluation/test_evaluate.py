"""Folder evaluation: nnU-Net prediction folders, case matching, geometry and label errors, outputs."""
import json
import math

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk

from nnunet_transfer.errors import NnunetTransferError
from nnunet_transfer.evaluation.evaluate import (
    PER_CASE_CSV,
    SUMMARY_JSON,
    EvaluationSettings,
    evaluate_folders,
    find_cases,
)


def write(path, array, spacing=(1.0, 1.0, 1.0), origin=(0.0, 0.0, 0.0)):
    image = sitk.GetImageFromArray(np.asarray(array, np.uint8))
    image.SetSpacing(spacing)
    image.SetOrigin(origin)
    path.parent.mkdir(parents=True, exist_ok=True)
    sitk.WriteImage(image, str(path))


def lesions(*boxes, shape=(8, 8, 8), value=1):
    array = np.zeros(shape, np.uint8)
    for box in boxes:
        array[box] = value
    return array


@pytest.fixture
def folders(tmp_path):
    """labelsTs with two cases and an nnUNetv2_predict output folder with its json files."""
    ref, pred = tmp_path / "labelsTs", tmp_path / "predicted"
    # case_001: one lesion of 8 voxels, predicted exactly, plus a 1-voxel false positive
    write(ref / "case_001.nii.gz", lesions(np.s_[0:2, 0:2, 0:2]), spacing=(2.0, 1.0, 1.0))
    write(pred / "case_001.nii.gz", lesions(np.s_[0:2, 0:2, 0:2], np.s_[6, 6, 6]), spacing=(2.0, 1.0, 1.0))
    # case_002: both empty
    write(ref / "case_002.nii.gz", lesions())
    write(pred / "case_002.nii.gz", lesions())
    for name in ("dataset.json", "plans.json", "predict_from_raw_data_args.json"):
        (pred / name).write_text(json.dumps({"labels": {"background": 0, "lesion": 1}, "file_ending": ".nii.gz"}))
    return ref, pred


def test_nnunet_prediction_folder(folders, tmp_path):
    ref, pred = folders
    result = evaluate_folders(ref, pred, tmp_path / "out", dataset_json=pred / "dataset.json", progress=False)
    table = pd.read_csv(tmp_path / "out" / PER_CASE_CSV)
    assert list(table["case"]) == ["case_001", "case_002"]
    first = table.iloc[0]
    assert first["Dice_1"] == pytest.approx(16 / 17) and first["IoU_1"] == pytest.approx(8 / 9)
    assert first["mIoU"] == pytest.approx(8 / 9)
    assert first["abs_volume_difference_ml_1"] == pytest.approx(0.002)    # one 2 mm^3 voxel
    assert (first["lesions_ref_1"], first["lesions_pred_1"], first["lesion_FP_1"]) == (1, 2, 1)
    assert first["lesion_TPR_1"] == 1 and first["lesion_precision_1"] == 0.5
    assert first["lesion_F1_1"] == pytest.approx(1 / 1.5)
    second = table.iloc[1]
    assert (second["Dice_1"], second["IoU_1"], second["lesion_F1_1"], second["lesion_TPR_1"]) == (1, 1, 1, 1)

    summary = json.loads((tmp_path / "out" / SUMMARY_JSON).read_text())
    assert summary["n_cases"] == 2 and summary["label_names"] == {"1": "lesion"}
    assert summary["mean"]["1"]["Dice"] == pytest.approx((16 / 17 + 1) / 2)
    assert summary["median"]["1"]["lesion_precision"] == pytest.approx(0.75)
    assert summary["n"]["1"]["Dice"] == 2
    assert summary["sd"]["1"]["lesion_TPR"] == 0.0
    assert summary["foreground_mean"]["Dice"] == summary["mean"]["1"]["Dice"]
    assert summary["mIoU"]["mean"] == pytest.approx((8 / 9 + 1) / 2)
    assert summary["metric_per_case"][0]["metrics"]["1"]["TP"] == 8
    assert summary["unmatched_predictions"] == []
    assert result.files == {"per_case": tmp_path / "out" / PER_CASE_CSV, "summary": tmp_path / "out" / SUMMARY_JSON}


def test_summary_keys_load_as_nnunet_labels(folders, tmp_path):
    """nnU-Net's load_summary_json turns every key of "mean" and of each case's "metrics" into a
    label with int() (importing nnunetv2 here would take longer than the test budget)."""
    ref, pred = folders
    evaluate_folders(ref, pred, tmp_path, progress=False)
    summary = json.loads((tmp_path / SUMMARY_JSON).read_text())
    assert [int(k) for k in summary["mean"]] == [1]
    assert all([int(k) for k in case["metrics"]] == [1] for case in summary["metric_per_case"])
    assert {"Dice", "IoU", "TP", "FP", "FN", "TN", "n_pred", "n_ref"} <= set(summary["foreground_mean"])


def test_labels_from_values_found_and_absent_label_is_empty_vs_empty(tmp_path):
    ref, pred = tmp_path / "ref", tmp_path / "pred"
    write(ref / "a.nii.gz", lesions(np.s_[0:2, 0, 0]) + lesions(np.s_[5, 5, 5], value=2))
    write(pred / "a.nii.gz", lesions(np.s_[0:2, 0, 0]))
    write(ref / "b.nii", lesions(np.s_[0:2, 0, 0]))
    write(pred / "b.nii", lesions(np.s_[0:2, 0, 0]))
    result = evaluate_folders(ref, pred, settings=EvaluationSettings(lesion_labels=(2,)), progress=False)
    table = result.per_case.set_index("case")
    assert (table.loc["a", "Dice_2"], table.loc["b", "Dice_2"]) == (0.0, 1.0)   # b has no label 2 at all
    assert table.loc["a", "mIoU"] == pytest.approx(0.5) and table.loc["b", "mIoU"] == 1.0
    assert "lesion_F1_1" not in table.columns and table.loc["b", "lesion_F1_2"] == 1.0
    assert math.isnan(table.loc["a", "lesion_precision_2"])
    assert result.summary["mean"]["2"]["lesion_precision"] == 1.0 and result.summary["n"]["2"]["lesion_precision"] == 1


def test_geometry_mismatch_names_the_case(folders):
    ref, pred = folders
    write(pred / "case_002.nii.gz", lesions(), spacing=(1.0, 1.0, 1.5))
    with pytest.raises(NnunetTransferError) as error:
        evaluate_folders(ref, pred, progress=False)
    assert str(error.value) == ("case case_002: prediction and reference differ in spacing: prediction (1, 1, 1.5), "
                                "reference (1, 1, 1) (tolerance 0.001)")


def test_shape_and_origin_mismatch(folders):
    ref, pred = folders
    write(pred / "case_002.nii.gz", lesions(shape=(8, 8, 9)))
    with pytest.raises(NnunetTransferError, match=r"^case case_002: .* differ in shape: prediction 9x8x8, "
                                                  r"reference 8x8x8"):
        evaluate_folders(ref, pred, progress=False)
    write(pred / "case_002.nii.gz", lesions(), origin=(0.0, 0.0, 0.0005))
    evaluate_folders(ref, pred, progress=False)        # within the tolerance
    with pytest.raises(NnunetTransferError, match="differ in origin"):
        evaluate_folders(ref, pred, settings=EvaluationSettings(geometry_tolerance=1e-4), progress=False)


def test_missing_prediction_is_an_error_naming_it(folders):
    ref, pred = folders
    (pred / "case_002.nii.gz").unlink()
    with pytest.raises(NnunetTransferError) as error:
        evaluate_folders(ref, pred, progress=False)
    assert str(error.value) == f"1 of 2 reference cases have no prediction in {pred}: case_002"


def test_prediction_without_reference_is_reported(folders):
    ref, pred = folders
    write(pred / "case_003.nii.gz", lesions())
    cases, unmatched = find_cases(ref, pred)
    assert [c[0] for c in cases] == ["case_001", "case_002"] and unmatched == ["case_003"]
    assert evaluate_folders(ref, pred, progress=False).summary["unmatched_predictions"] == ["case_003"]


def test_label_not_in_dataset_json(folders):
    ref, pred = folders
    write(pred / "case_002.nii.gz", lesions(np.s_[1, 1, 1], value=3))
    with pytest.raises(NnunetTransferError, match=r"case case_002: label values \[3\] are not among"):
        evaluate_folders(ref, pred, dataset_json=pred / "dataset.json", progress=False)


def test_bad_settings_and_region_labels(folders, tmp_path):
    with pytest.raises(NnunetTransferError, match="--overlap"):
        EvaluationSettings(overlap=2)
    with pytest.raises(NnunetTransferError, match="--connectivity"):
        EvaluationSettings(connectivity=8)
    ref, pred = folders
    regions = tmp_path / "regions.json"
    regions.write_text(json.dumps({"labels": {"background": 0, "whole": [1, 2]}, "file_ending": ".nii.gz"}))
    with pytest.raises(NnunetTransferError, match="region-based"):
        evaluate_folders(ref, pred, dataset_json=regions, progress=False)


def test_min_lesion_volume_in_ml(folders):
    ref, pred = folders   # case_001 spacing 2x1x1 mm: the 1-voxel false positive is 0.002 ml
    table = evaluate_folders(ref, pred, settings=EvaluationSettings(min_lesion_volume_ml=0.003),
                             progress=False).per_case
    assert table.loc[0, "lesions_pred_1"] == 1 and table.loc[0, "lesion_F1_1"] == 1.0


def test_a_truncated_prediction_is_an_error_not_a_lower_score(folders):
    ref, pred = folders
    data = (pred / "case_002.nii.gz").read_bytes()
    (pred / "case_002.nii.gz").write_bytes(data[: len(data) // 2])
    with pytest.raises(NnunetTransferError, match=r"case_002\.nii\.gz is (truncated|corrupt)"):
        evaluate_folders(ref, pred, None, dataset_json=pred / "dataset.json")


def test_nan_in_a_prediction_is_an_error(folders):
    import nibabel
    ref, pred = folders
    array = np.zeros((8, 8, 8), np.float32)
    array[0, 0, 0] = np.nan  # SimpleITK reads it as 0
    reference = nibabel.load(str(ref / "case_002.nii.gz"))
    nibabel.save(nibabel.Nifti1Image(array, reference.affine), str(pred / "case_002.nii.gz"))
    with pytest.raises(NnunetTransferError, match=r"case_002\.nii\.gz contains 1 NaN / inf voxels: not a segmentation"):
        evaluate_folders(ref, pred, None, dataset_json=pred / "dataset.json")


def test_a_reference_whose_qform_and_sform_disagree_is_refused(folders):
    import nibabel
    ref, pred = folders
    image = nibabel.load(str(ref / "case_001.nii.gz"))
    qform = image.affine.copy()
    qform[:3, 3] += (10.0, 0.0, 0.0)
    out = nibabel.Nifti1Image(np.asanyarray(image.dataobj), image.affine)
    out.set_qform(qform, code=1)
    out.set_sform(image.affine, code=2)
    nibabel.save(out, str(ref / "case_001.nii.gz"))
    with pytest.raises(NnunetTransferError, match=r"case_001\.nii\.gz: its qform and sform disagree by up to 10\.0 "
                                                  r"mm.*fix the header"):
        evaluate_folders(ref, pred, None, dataset_json=pred / "dataset.json")


def test_an_output_folder_that_is_a_file_is_refused_before_evaluating(folders, tmp_path):
    ref, pred = folders
    (tmp_path / "out").write_text("keep me")
    with pytest.raises(NnunetTransferError, match=r"the output folder \(-o\) .*out: .*out is a file, not a folder"):
        evaluate_folders(ref, pred, tmp_path / "out", dataset_json=pred / "dataset.json")
    assert (tmp_path / "out").read_text() == "keep me"


def test_profiles_boundary_and_instance_columns_and_the_isbi_folder_values(folders, tmp_path):
    ref, pred = folders
    write(ref / "case_003.nii.gz", lesions(np.s_[0:4, 0:2, 0:2]))        # 16 voxels
    write(pred / "case_003.nii.gz", lesions(np.s_[0:2, 0:2, 0:2]))       # 8 of them
    settings = EvaluationSettings(profiles=("atlas2", "isbi2015", "msseg2016"), nsd_tolerance_mm=1.0)
    result = evaluate_folders(ref, pred, tmp_path / "out", settings, dataset_json=pred / "dataset.json",
                              progress=False)
    table = result.per_case.set_index("case")
    for column in ("NSD_1", "HD95_1", "ASSD_1", "PQ_1", "SQ_1", "RQ_1", "lesion_Dice_1", "atlas2_lesionwise_F1_1",
                   "atlas2_volume_difference_1", "isbi2015_LTPR_1", "isbi2015_LFPR_1", "msseg2016_F1_1"):
        assert column in table.columns, column
    assert table.loc["case_001", "atlas2_volume_difference_1"] == 1.0       # voxels, whatever the spacing
    assert table.loc["case_001", "isbi2015_LFPR_1"] == 0.5
    assert table.loc["case_002", "HD95_1"] == 0.0 and table.loc["case_002", "PQ_1"] == 1.0
    assert table.loc["case_003", "PQ_1"] == pytest.approx(0.5)            # IoU 8 / 16: matched at 0.5
    assert table.loc["case_003", "HD95_1"] == pytest.approx(2.0)          # the two uncovered layers, 1 mm apart
    isbi = json.loads((tmp_path / "out" / SUMMARY_JSON).read_text())["isbi2015"]["1"]
    volumes = [(0.016, 0.018), (0.0, 0.0), (0.016, 0.008)]                # (ref, pred) ml of the three cases
    assert isbi["Corr"] == pytest.approx(np.corrcoef(*zip(*volumes))[0, 1])
    assert isbi["SC"] is None                                             # case_002 has no PPV: undefined (null)
    assert json.loads((tmp_path / "out" / SUMMARY_JSON).read_text())["settings"]["profiles"] == list(settings.profiles)


def test_boundary_and_instances_can_be_left_out(folders):
    ref, pred = folders
    table = evaluate_folders(ref, pred, settings=EvaluationSettings(boundary=False, instances=False),
                             progress=False).per_case
    assert not {"NSD_1", "HD95_1", "PQ_1"} & set(table.columns) and "lesion_F1_1" in table.columns
