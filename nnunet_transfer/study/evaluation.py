"""Evaluate one run's test predictions for the study table (``nnunet_transfer.evaluation`` underneath)."""
from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict
from pathlib import Path

import numpy as np

from nnunet_transfer.evaluation.evaluate import EvaluationSettings, evaluate_folders
from nnunet_transfer.io import read_json, write_csv_atomic, write_json_atomic
from nnunet_transfer.layout import DATASET_JSON
from nnunet_transfer.study.metrics import STUDY_METRICS
from nnunet_transfer.study.spec import Target


def evaluation_settings(target: Target) -> EvaluationSettings:
    """The evaluation a target asks for: lesion and instance metrics on every label when
    ``lesions``, its profile's metrics, NSD at its tolerance."""
    return EvaluationSettings(lesion_labels=None if target.lesions else (),
                              profiles=() if target.profile is None else (target.profile,),
                              nsd_tolerance_mm=target.nsd_tolerance_mm)


SETTINGS_KEY = "study_evaluation"


def _settings_record(target: Target) -> dict:
    return json.loads(json.dumps(asdict(evaluation_settings(target))))


def evaluation_is_stale(summary: dict, target: Target) -> bool:
    """Whether an evaluation summary written by ``evaluate_run`` used other settings than the
    target asks for now (also for files written before the settings were recorded)."""
    return summary.get(SETTINGS_KEY) != _settings_record(target)


def add_label_means(table) -> None:
    """Add, for every study metric whose per-label columns ``<column>_<label>`` exist, the column
    ``<column>``: their mean over the labels (NaN labels left out; ``mDice`` / ``mIoU`` exist)."""
    for metric in STUDY_METRICS.values():
        if metric.column in table.columns:
            continue
        columns = [c for c in table.columns if c.rpartition("_")[0] == metric.column and c.rpartition("_")[2].isdigit()]
        if columns:
            with np.errstate(all="ignore"):
                table[metric.column] = table[columns].astype(float).mean(axis=1, skipna=True)


def evaluate_run(raw_dataset: Path, predictions: Path, out_csv: Path, target: Target,
                 reference_dir: Path | None = None) -> None:
    """Per-case metrics of ``predictions`` against ``reference_dir`` (default ``raw_dataset/labelsTs``)
    into ``out_csv`` (atomic), with the summary JSON beside it. With another ``reference_dir``
    (labelsTr for nnU-Net's validation predictions) only the predicted cases are evaluated.
    Columns: the evaluation's per-case table (``mDice``, ``mIoU``, ``Dice_<label>``, ...) plus the
    mean over labels of every study metric (``NSD``, ``lesion_TPR``, ``atlas2_lesionwise_F1``, ...)."""
    ending = read_json(raw_dataset / DATASET_JSON)["file_ending"]
    with tempfile.TemporaryDirectory() as subset:
        reference = raw_dataset / "labelsTs"
        if reference_dir is not None:  # the predicted cases' references only
            for prediction in predictions.glob(f"*{ending}"):
                os.symlink(reference_dir / prediction.name, Path(subset) / prediction.name)
            reference = Path(subset)
        result = evaluate_folders(reference, predictions, None, evaluation_settings(target),
                                  dataset_json=raw_dataset / DATASET_JSON, progress=False)
    table = result.per_case
    add_label_means(table)
    write_csv_atomic(table, out_csv)
    write_json_atomic({**result.summary, SETTINGS_KEY: _settings_record(target)}, out_csv.with_suffix(".summary.json"))
