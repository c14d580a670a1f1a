"""A one-target study with two training sizes on tiny demo data, one source pretrained here and one
given as another nnU-Net model's checkpoint: killed mid-run with SIGKILL, resumed through
submitit's local executor (the SLURM code path without a cluster), then reported; a changed
checkpoint file is refused by name."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from nnunet_transfer.demo.datasets import DemoDataSize, write_demo_datasets
from nnunet_transfer.study.state import read_state, step_file_stem
from nnunet_transfer.study.spec import load_study
from nnunet_transfer.study.steps import expand, run_folder, runs
from tests.integration.nnunet import nnunet_checkpoint

pytestmark = pytest.mark.integration

STUDY = """
name = "tiny"
configuration = "2d"
folds = [0]
strategies = ["finetune"]
nnunet_root = "nnunet"
device = "cpu"
num_processes = 1

[schedule]
num_epochs = 2
num_iterations_per_epoch = 3
num_val_iterations_per_epoch = 1
final_validation = "never"

[[sources]]
dataset = 901
task = "segmentation"
domain = "mri"

[[sources]]
checkpoint = "models/earlier_model.pth"
task = "tissue segmentation"
label = "earlier model"

[[targets]]
dataset = 911
label = "stroke"
metric = "miou"
lesions = true
train_sizes = [2, 4]
"""


def _cli(*args, env, **kwargs):
    return subprocess.run([sys.executable, "-m", "nnunet_transfer.cli", *args], env=env, capture_output=True,
                          text=True, **kwargs)


def _trainings_using(folder: Path) -> list[int]:
    """Live nnUNetv2_train processes (or warm workers, which run it) whose environment points into ``folder``."""
    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            cmdline = (proc / "cmdline").read_bytes()
            if (b"nnUNetv2_train" in cmdline or b"nnunet_transfer.warm_workers" in cmdline) and \
                    str(folder).encode() in (proc / "environ").read_bytes():
                found.append(int(proc.name))
        except OSError:
            continue
    return found


def _training_now(study, done_before: int) -> bool:
    """Whether a training step is in nnU-Net's epochs after ``done_before`` training steps finished."""
    states = {s.id: read_state(study.folder, s.id)["status"] for s in expand(study) if s.id.startswith("train/")}
    if sum(v == "done" for v in states.values()) < done_before:
        return False
    logs = [study.folder / "logs" / f"{step_file_stem(k)}.log" for k, v in states.items() if v == "running"]
    return any(log.is_file() and "Epoch 0" in log.read_text() for log in logs)


def test_killed_study_resumes_through_submitit_and_reports(tmp_path, monkeypatch):
    study_file = tmp_path / "tiny.toml"
    study_file.write_text(STUDY)
    nnunet_checkpoint(tmp_path / "models" / "earlier_model.pth")
    size = DemoDataSize(spacing_mm=8.0, n_train=6, n_test=2, n_natural=6, natural_size=32)
    write_demo_datasets(tmp_path / "nnunet" / "nnUNet_raw", size, seed=2,
                        which=["mri_seg_source", "stroke"], progress=False)
    env = {k: v for k, v in os.environ.items() if not k.startswith("nnUNet_")}
    env.update(nnUNet_def_n_proc="1", nnUNet_n_proc_DA="0")
    study = load_study(study_file)
    first_pretraining = study.folder / "state" / "pretrain__mri_segmentation.json"

    runner = subprocess.Popen([sys.executable, "-m", "nnunet_transfer.cli", "study", "run", str(study_file)], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while time.time() < deadline and runner.poll() is None:  # kill it in the epochs of its third training
        if first_pretraining.is_file() and '"done"' in first_pretraining.read_text() and _training_now(study, 2):
            break
        time.sleep(0.2)
    assert runner.poll() is None, "the runner ended before it could be killed"
    assert _trainings_using(tmp_path), "no training (nor warm worker) of the runner was found"
    runner.send_signal(signal.SIGKILL)
    runner.wait()
    statuses = {s.id: read_state(study.folder, s.id)["status"] for s in expand(study)}
    assert statuses["plan"] == "done" and statuses["pretrain/mri_segmentation"] == "done"
    assert "interrupted" in statuses.values(), statuses  # the step it was in
    assert not (study.folder / "results").exists()
    for _ in range(20):  # the kernel kills the runner's nnU-Net child with it (PR_SET_PDEATHSIG)
        if not _trainings_using(tmp_path):
            break
        time.sleep(0.5)
    assert not _trainings_using(tmp_path), "an nnU-Net training outlived the killed runner"
    done_before = {k for k, v in statuses.items() if v == "done"}
    stamps = {k: (study.folder / "state" / f"{k.replace('/', '__')}.json").stat().st_mtime_ns for k in done_before}

    out = _cli("study", "run", str(study_file), "--launcher", "submitit-local", env=env)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert list((study.folder / "submitit").glob("*_result.pkl")), "no job went through submitit"
    for k in done_before:  # finished steps were not redone
        assert (study.folder / "state" / f"{k.replace('/', '__')}.json").stat().st_mtime_ns == stamps[k], k
    assert all(read_state(study.folder, s.id)["status"] == "done" for s in expand(study))

    # nested subsets of fold 0's training cases, recorded, and the very same in every initialisation's plans
    subsets = json.loads((study.folder / "subsets" / "stroke.json").read_text())["folds"]["0"]
    assert len(subsets["2"]) == 2 and len(subsets["4"]) == 4 and set(subsets["2"]) < set(subsets["4"])
    for name in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results"):
        monkeypatch.setenv(name, str(tmp_path / "nnunet" / name))
    for run in runs(study):
        plans = json.loads((run_folder(study, run).parent / "plans.json").read_text())
        assert plans["training_schedule"]["train_subset"] == {"0": subsets[str(run.size)]}, run.path
        log = next(run_folder(study, run).glob("training_log_*.txt")).read_text()
        assert f"Training on {run.size} of the fold's 4 training cases" in log

    external = next(r for r in runs(study) if r.source is not None and r.source.external)
    report = json.loads((run_folder(study, external) / "transfer_report.json").read_text())
    assert report["checkpoint"] == str(tmp_path / "models" / "earlier_model.pth")
    assert report["counts_by_part"]["encoder"]["loaded"] > 0 and report["load"] == "encoder+decoder"
    assert all(p["status"] == "skipped" for p in report["parameters"] if p["part"] == "head")  # 3 classes vs 2

    table = pd.read_csv(study.folder / "results" / "comparison.csv")
    assert table["initialisation"].tolist() == ["mri segmentation", "earlier model", "scratch"] * 2
    assert table["train_size"].tolist() == [2, 2, 2, 4, 4, 4]
    for column in ("stroke miou mean", "stroke lesion_tpr mean"):
        assert table[column].between(0, 1).all(), column
    assert table["stroke folds"].tolist() == [1] * 6
    markdown = (study.folder / "results" / "comparison.md").read_text()
    assert "| scratch |" in markdown and "stroke miou" in markdown and "### 4 training patients" in markdown
    assert "n < 6" in markdown  # 2 test cases: no p-value
    for figure in ("comparison.png", "learning_curves.png", "data_efficiency.png"):
        assert (study.folder / "results" / figure).stat().st_size > 1000
    per_case = pd.read_csv(study.folder / "results" / "per_case.csv")
    assert len(per_case) == 2 * 3 * 2  # sizes x initialisations x test cases
    recorded = json.loads((study.folder / "results" / "external_sources.json").read_text())["earlier_model"]
    assert recorded["format"] == "nnU-Net" and recorded["source_dataset"] == "Dataset300_Tissue"
    assert f"`{recorded['sha256']}`" in markdown

    status = _cli("study", "status", str(study_file), env=env)
    assert status.returncode == 0 and f"{len(expand(study))} done" in status.stdout
    again = _cli("study", "run", str(study_file), env=env)  # everything done: only the report is rewritten
    assert again.returncode == 0 and "| scratch |" in again.stdout
    report = (study.folder / "results" / "report.html").resolve()
    assert f"Report (open in a browser): {report.as_uri()}" in again.stdout and report.stat().st_size > 10_000
    nnunet_checkpoint(tmp_path / "models" / "earlier_model.pth", seed=1)  # another network under the same name
    changed = _cli("study", "run", str(study_file), env=env)
    assert changed.returncode != 0 and "earlier_model.pth is not the file the study started with" in changed.stderr
