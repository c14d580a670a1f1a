"""One self-supervised pretraining transferred under two rules (encoder only; encoder + decoder),
with two training seeds, as one study on tiny demo data: stock nnUNetv2_train for every training,
one pretraining shared by both rows, rows labelled by their rule, seeds paired in the report."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pandas as pd
import pytest

from nnunet_transfer.demo.datasets import DemoDataSize, write_demo_datasets
from nnunet_transfer.study.spec import load_study
from nnunet_transfer.study.steps import expand, run_folder, runs

pytestmark = pytest.mark.integration

STUDY = """
name = "rules"
configuration = "2d"
folds = ["all"]
seeds = [0, 1]
nnunet_root = "nnunet"
device = "cpu"
num_processes = 1

[schedule]
num_epochs = 2
num_iterations_per_epoch = 3
num_val_iterations_per_epoch = 1

[[sources]]
dataset = 903
task = "ssl:models_genesis"
label = "MRI models genesis"
[sources.transfer]
load = "encoder"

[[sources]]
dataset = 903
task = "ssl:models_genesis"
label = "MRI models genesis"
[sources.transfer]
load = "encoder+decoder"

[[targets]]
dataset = 913
label = "anatomy"
"""


def test_one_pretraining_two_rules_two_seeds(tmp_path, monkeypatch):
    study_file = tmp_path / "rules.toml"
    study_file.write_text(STUDY)
    write_demo_datasets(tmp_path / "nnunet" / "nnUNet_raw", DemoDataSize(spacing_mm=8.0, n_train=4, n_test=2), seed=2,
                        which=["mri_unlabeled", "anatomy"], progress=False)
    env = {k: v for k, v in os.environ.items() if not k.startswith("nnUNet_")}
    env.update(nnUNet_def_n_proc="1", nnUNet_n_proc_DA="0")
    out = subprocess.run([sys.executable, "-m", "nnunet_transfer.cli", "study", "run", str(study_file)], env=env,
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]

    study = load_study(study_file)
    assert [s.id for s in expand(study) if s.kind == "pretrain"] == ["pretrain/MRI_models_genesis"]
    for name in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results"):
        monkeypatch.setenv(name, str(tmp_path / "nnunet" / name))
    for run in runs(study):
        plans = json.loads((run_folder(study, run).parent / "plans.json").read_text())
        assert plans["training_schedule"].get("seed", 0) == run.seed, run.path
        if run.source is not None:
            report = json.loads((run_folder(study, run) / "transfer_report.json").read_text())
            assert report["load"] == run.source.rules["load"]
            decoder = report["counts_by_part"]["decoder"]
            assert (decoder["loaded"] > 0) == (run.source.rules["load"] == "encoder+decoder"), run.path

    table = pd.read_csv(study.folder / "results" / "comparison.csv")
    assert table["initialisation"].tolist() == ["MRI models genesis [load=encoder]",
                                                "MRI models genesis [load=encoder+decoder]", "scratch"]
    assert (table["anatomy dice seeds"] == 2).all() and table["anatomy dice seed_sd"].notna().all()
    assert table["anatomy dice no_p"].fillna("").tolist()[:2] == ["seeds < 3", "seeds < 3"]
    markdown = (study.folder / "results" / "comparison.md").read_text()
    assert "training seeds: 2" in markdown and "Fairness (checked by `study report`)" in markdown
    assert "- **MRI models genesis [load=encoder]**: load encoder; strategy finetune" in markdown
    assert "- **MRI models genesis [load=encoder+decoder]**: load encoder+decoder; strategy finetune" in markdown
    per_case = pd.read_csv(study.folder / "results" / "per_case.csv")
    assert sorted(set(per_case["seed"])) == [0, 1] and len(per_case) == 3 * 2 * 2  # rows x seeds x test cases
