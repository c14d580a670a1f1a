"""The comparison table from evaluated runs: mean +- sd over folds, paired Wilcoxon against scratch."""
import math

import pandas as pd
import pytest

from nnunet_transfer.study.report import collect, comparison_table, markdown
from nnunet_transfer.study.spec import load_study
from nnunet_transfer.study.steps import evaluation_file, runs

STUDY = """
name = "s"
folds = [0, 1]
[[sources]]
dataset = 1
label = "mri seg"
[[targets]]
dataset = 3
label = "stroke"
lesions = true
"""


@pytest.fixture
def study(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text(STUDY)
    study = load_study(path)
    for run in runs(study):
        gain = 0.0 if run.source is None else 0.1
        fold_shift = 0.02 * int(run.fold)
        rows = [{"case": f"c{i}", "mDice": 0.5 + 0.05 * i + gain + fold_shift, "mIoU": 0.4,
                 "lesion_TPR": 0.5 if run.source is None else 0.75} for i in range(6)]
        path = evaluation_file(study, run)
        path.parent.mkdir(parents=True, exist_ok=True)
        pd.DataFrame(rows).to_csv(path, index=False)
    return study


def test_table_means_sd_over_folds_and_wilcoxon(study):
    per_case = collect(study)
    assert len(per_case) == 2 * 2 * 6 and set(per_case["initialisation"]) == {"mri seg", "scratch"}
    table = comparison_table(study, per_case).set_index("initialisation")
    # fold means: scratch 0.625 (fold 0), 0.645 (fold 1); source +0.1
    assert table.loc["scratch", "stroke dice mean"] == pytest.approx(0.635)
    assert table.loc["scratch", "stroke dice sd"] == pytest.approx(math.sqrt(2 * 0.01 ** 2))
    assert table.loc["mri seg", "stroke dice mean"] == pytest.approx(0.735)
    assert table.loc["mri seg", "stroke dice p"] == pytest.approx(0.03125)  # exact test, 6 of 6 cases better
    assert table.loc["mri seg", "stroke lesion_tpr mean"] == pytest.approx(0.75)
    assert math.isnan(table.loc["scratch", "stroke dice p"])
    assert table.loc["scratch", "stroke folds"] == 2


def test_markdown_cells(study):
    table = comparison_table(study, collect(study))
    text = markdown(study, table)
    assert "| initialisation | stroke dice | stroke lesion_tpr |" in text
    assert "| mri seg | 0.735 ± 0.014 (p=0.0312) | 0.750 ± 0.000 (p=0.0312) |" in text
    assert "| scratch | 0.635 ± 0.014 | 0.500 ± 0.000 |" in text


def test_missing_evaluations_are_an_error(tmp_path):
    from nnunet_transfer.errors import NnunetTransferError
    path = tmp_path / "s.toml"
    path.write_text(STUDY)
    with pytest.raises(NnunetTransferError, match="no evaluated run"):
        collect(load_study(path))


def test_runs_with_different_schedules_are_not_compared(tmp_path, monkeypatch):
    import json

    from nnunet_transfer.errors import NnunetTransferError
    from nnunet_transfer.study.report import check_comparable
    from nnunet_transfer.study.steps import activate, run_folder
    path = tmp_path / "s.toml"
    path.write_text(STUDY.replace('name = "s"', 'name = "s"\nnnunet_root = "nn"'))
    study = load_study(path)
    for name in ("Dataset001_Src", "Dataset003_Stroke"):
        (tmp_path / "nn" / "nnUNet_raw" / name).mkdir(parents=True)
    for name in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results"):
        monkeypatch.setenv(name, "unset")  # restored after the test; activate() points them into nn/
    activate(study)
    for run in runs(study):
        plans = {"configurations": {"3d_fullres": {"architecture": {"network_class_name": "PlainConvUNet"},
                                                   "patch_size": [16, 16, 16]}},
                 "training_schedule": {"num_epochs": 5 if run.source is None else 10}}
        folder = run_folder(study, run).parent
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "plans.json").write_text(json.dumps(plans))
    with pytest.raises(NnunetTransferError, match="target stroke: runs 'mri seg' and 'scratch' differ in architecture, "
                                                  "patch size or training schedule"):
        check_comparable(study)
    for run in runs(study):
        plans_file = run_folder(study, run).parent / "plans.json"
        plans = json.loads(plans_file.read_text())
        plans["training_schedule"]["num_epochs"] = 10
        plans_file.write_text(json.dumps(plans))
    check_comparable(study)  # identical now
