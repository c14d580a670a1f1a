"""Evaluate one run's test predictions for the study table (``nnunet_transfer.evaluation`` underneath)."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

from nnunet_transfer.evaluation.evaluate import EvaluationSettings, evaluate_folders
from nnunet_transfer.io import read_json, write_csv_atomic, write_json_atomic
from nnunet_transfer.layout import DATASET_JSON

STUDY_COLUMNS = {"dice": "mDice", "miou": "mIoU", "lesion_tpr": "lesion_TPR"}


def evaluate_run(raw_dataset: Path, predictions: Path, out_csv: Path, lesions: bool,
                 reference_dir: Path | None = None) -> None:
    """Per-case metrics of ``predictions`` against ``reference_dir`` (default ``raw_dataset/labelsTs``)
    into ``out_csv`` (atomic), with the summary JSON beside it. With another ``reference_dir``
    (labelsTr for nnU-Net's validation predictions) only the predicted cases are evaluated.
    Columns: the evaluation's per-case table (``mDice``, ``mIoU``, ``Dice_<label>``, ...) plus
    ``lesion_TPR``, the mean detection rate over labels, when ``lesions``."""
    settings = EvaluationSettings(lesion_labels=None if lesions else ())
    ending = read_json(raw_dataset / DATASET_JSON)["file_ending"]
    with tempfile.TemporaryDirectory() as subset:
        reference = raw_dataset / "labelsTs"
        if reference_dir is not None:  # the predicted cases' references only
            for prediction in predictions.glob(f"*{ending}"):
                os.symlink(reference_dir / prediction.name, Path(subset) / prediction.name)
            reference = Path(subset)
        result = evaluate_folders(reference, predictions, None, settings, dataset_json=raw_dataset / DATASET_JSON,
                                  progress=False)
    table = result.per_case
    if lesions:
        columns = [c for c in table.columns if c.startswith("lesion_TPR_")]
        with np.errstate(all="ignore"):
            table["lesion_TPR"] = table[columns].astype(float).mean(axis=1, skipna=True) if columns else np.nan
    write_csv_atomic(table, out_csv)
    write_json_atomic(result.summary, out_csv.with_suffix(".summary.json"))
