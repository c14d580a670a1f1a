"""The study's per-run evaluation: test predictions vs labelsTs, or nnU-Net's fold validation vs labelsTr."""
import json

import numpy as np
import pandas as pd
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
