"""The study's per-run evaluation: test predictions vs labelsTs, or nnU-Net's fold validation vs labelsTr."""
import json

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk

from nnunet_transfer.study.evaluation import evaluate_run
from nnunet_transfer.study.spec import Target


def _write(path, array):
    path.parent.mkdir(parents=True, exist_ok=True)
    sitk.WriteImage(sitk.GetImageFromArray(array.astype(np.uint8)), str(path))


def _mask(*lesions):
    out = np.zeros((8, 16, 16), np.uint8)
    for z, y, x in lesions:
        out[z:z + 2, y:y + 2, x:x + 2] = 1
    return out


def test_validation_predictions_are_scored_against_their_training_labels_only(tmp_path):
    raw = tmp_path / "Dataset001_X"
    raw.mkdir()
    (raw / "dataset.json").write_text(json.dumps({"labels": {"background": 0, "lesion": 1}, "file_ending": ".nii.gz",
                                                  "channel_names": {"0": "T1"}, "numTraining": 3}))
    for case in ("a", "b", "c"):
        _write(raw / "labelsTr" / f"{case}.nii.gz", _mask((1, 1, 1), (4, 10, 10)))
    _write(tmp_path / "val" / "a.nii.gz", _mask((1, 1, 1), (4, 10, 10)))  # both lesions found
    _write(tmp_path / "val" / "c.nii.gz", _mask((1, 1, 1)))  # one of two
    out = tmp_path / "eval" / "fold_0.csv"
    evaluate_run(raw, tmp_path / "val", out, Target(1, "x", lesions=True), reference_dir=raw / "labelsTr")
    table = pd.read_csv(out).set_index("case")
    assert list(table.index) == ["a", "c"]
    assert table.loc["a", "mDice"] == 1.0 and table.loc["c", "lesion_TPR"] == 0.5
    assert table.loc["c", "mDice"] == 2 * 8 / (16 + 8)
    assert out.with_suffix(".summary.json").is_file()
    assert not list(out.parent.glob(".*"))  # no temporary file left


def test_table_columns_follow_the_target_and_a_changed_target_is_evaluated_again(tmp_path, monkeypatch):
    """Every study metric's label mean is in the per-case CSV; a study file that later asks for a
    profile gets it in the report from the kept predictions, without training or predicting."""
    from nnunet_transfer.study.report import collect
    from nnunet_transfer.study.spec import load_study
    from nnunet_transfer.study.steps import evaluation_file, execute, expand, prediction_folder, runs
    for name in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results"):
        monkeypatch.setenv(name, str(tmp_path / name.rpartition("_")[2]))
    raw = tmp_path / "raw" / "Dataset003_Stroke"  # nnUNet_raw
    raw.mkdir(parents=True)
    (raw / "dataset.json").write_text(json.dumps({"labels": {"background": 0, "lesion": 1}, "file_ending": ".nii.gz",
                                                  "channel_names": {"0": "T1"}, "numTraining": 1}))
    (raw / "imagesTs").mkdir()
    _write(raw / "labelsTs" / "a.nii.gz", _mask((1, 1, 1), (4, 10, 10)))
    study_file = tmp_path / "s.toml"
    study_file.write_text('name = "s"\n[[sources]]\ndataset = 1\n[[targets]]\ndataset = 3\nlesions = true\n'
                          'metrics = ["lesion_f1", "nsd", "hd95"]\n')
    study = load_study(study_file)
    for run in runs(study):
        _write(prediction_folder(study, run) / "a.nii.gz", _mask((1, 1, 1)))  # one of the two lesions
    for step in expand(study):
        if step.kind == "test":
            execute(study, step)
    table = pd.read_csv(evaluation_file(study, runs(study)[0]))
    assert table.loc[0, "lesion_F1"] == pytest.approx(1 / 1.5) and table.loc[0, "lesion_TPR"] == 0.5
    assert table.loc[0, "NSD"] == pytest.approx(table.loc[0, "NSD_1"]) and table.loc[0, "PQ"] == table.loc[0, "PQ_1"]
    assert "atlas2_lesionwise_F1" not in table.columns

    study_file.write_text(study_file.read_text().replace('lesions = true\n', 'lesions = true\nprofile = "atlas2"\n')
                          .replace('"hd95"]', '"hd95", "atlas2_lesionwise_f1"]'))
    per_case = collect(load_study(study_file))
    assert per_case["atlas2_lesionwise_F1"].tolist() == pytest.approx([1 / 1.5, 1 / 1.5])
    assert per_case["atlas2_simple_lesion_count"].tolist() == [1.0, 1.0]
    written = evaluation_file(study, runs(study)[0]).stat().st_mtime_ns
    collect(load_study(study_file))  # settings unchanged now: nothing is evaluated again
    assert evaluation_file(study, runs(study)[0]).stat().st_mtime_ns == written
