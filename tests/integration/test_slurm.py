"""A tiny study on a real single-node SLURM cluster (Debian's slurm-wlm and munge, started here):
plan, pretraining, fine-tuning waiting on it with ``afterok``, scratch, report. The pretraining is
cancelled with ``scancel`` while it trains; a second ``study run`` cancels the fine-tuning that
can now never start and submits exactly those two again, and the study completes. The study is
submitted from a shell without the installation on PATH: the jobs still run its nnU-Net."""
from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from nnunet_transfer.demo.datasets import DemoDataSize, write_demo_datasets
from nnunet_transfer.io import write_json_atomic
from nnunet_transfer.study.spec import load_study
from nnunet_transfer.study.state import history_summary, read_state, step_history
from nnunet_transfer.study.steps import expand
from tests.integration import slurm_cluster

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("test_slurm")]

STUDY = """
name = "on_slurm"
configuration = "2d"
folds = ["all"]
strategies = ["finetune"]
nnunet_root = "nnunet"
device = "cpu"
num_processes = 1

[schedule]
num_epochs = 3
num_iterations_per_epoch = 2
num_val_iterations_per_epoch = 1

[launcher]
kind = "slurm"
cpus_per_task = 1
gpus_per_node = 0
timeout_min = 30

[[sources]]
dataset = 901

[[targets]]
dataset = 911
label = "stroke"
"""
PRETRAIN, FINETUNE = "pretrain/mri_segmentation", "run/stroke/mri_segmentation/finetune/fold_all"


def _wait(what: str, condition, timeout: float = 300, folder: Path | None = None):
    deadline = time.time() + timeout
    while time.time() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(1)
    logs = "\n".join(f"--- {p.name}\n{p.read_text()[-1500:]}" for p in sorted((folder or Path()).glob("*.log")))
    raise AssertionError(f"timed out waiting for {what}\n{logs}")


def _queue(env) -> dict[str, tuple[str, str]]:
    out = subprocess.run(["squeue", "-h", "-o", "%i|%T|%r"], env=env, capture_output=True, text=True).stdout
    return {i: (s, r) for i, s, r in (line.split("|") for line in out.split())}


def test_a_study_on_a_real_slurm_cluster_survives_a_cancelled_job(tmp_path):
    reason = slurm_cluster.missing()
    if reason:
        print(f"SKIPPED the real-SLURM study test: {reason}")
        pytest.skip(reason)
    (tmp_path / "study.toml").write_text(STUDY)
    write_demo_datasets(tmp_path / "nnunet" / "nnUNet_raw", DemoDataSize(spacing_mm=8.0, n_train=4, n_test=2),
                        seed=4, which=["mri_seg_source", "stroke"], progress=False)
    study = load_study(tmp_path / "study.toml")
    with slurm_cluster.single_node_cluster(tmp_path / "slurm") as cluster:
        daemons = [int((tmp_path / "slurm" / f"{d}.pid").read_text()) for d in ("slurmctld", "slurmd")]
        env = {k: v for k, v in cluster.items() if not k.startswith("nnUNet_")}
        # a login shell without the installation on PATH: only SLURM's and the system's commands
        env.update(PATH="/usr/bin:/bin:/usr/sbin:/sbin", nnUNet_def_n_proc="1", nnUNet_n_proc_DA="0")

        def study_run(*args):
            out = subprocess.run([sys.executable, "-m", "nnunet_transfer.cli", "study", "run",
                                  str(tmp_path / "study.toml"), *args], env=env, capture_output=True, text=True)
            assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
            return out.stdout

        study_run()
        first = json.loads((study.folder / "submitit" / "slurm_jobs.json").read_text())
        assert set(first) == {"plan", PRETRAIN, FINETUNE, "run/stroke/scratch/scratch/fold_all"}
        script = (study.folder / "submitit" / f"{first[FINETUNE]}_submission.sh").read_text()
        assert f"--dependency=afterok:{first[PRETRAIN]}" in script
        assert "--gpus-per-node=0" in script and "--cpus-per-task=1" in script

        pretrain_log = study.folder / "logs" / "pretrain__mri_segmentation.log"
        _wait("the pretraining to train", lambda: pretrain_log.is_file() and "Epoch 0" in pretrain_log.read_text(),
              folder=study.folder / "logs")
        subprocess.run(["scancel", first[PRETRAIN]], env=env, check=True)
        stuck = _wait("the scratch job to end and the fine-tuning to be stuck", lambda: (
            set(_queue(env)) == {first[FINETUNE]} and "DependencyNeverSatisfied" in _queue(env)[first[FINETUNE]][1]),
            folder=study.folder / "logs")
        assert stuck
        states = {s.id: read_state(study.folder, s.id)["status"] for s in expand(study)}
        assert states["plan"] == states["train/stroke/scratch/scratch/fold_all"] == "done"
        assert states["pretrain/mri_segmentation"] == "interrupted", states

        dry = study_run("--dry-run")
        assert f"again (job {first[FINETUNE]} can never start" in dry
        study_run()
        second = json.loads((study.folder / "submitit" / "slurm_jobs.json").read_text())
        assert {k for k in second if second[k] != first[k]} == {PRETRAIN, FINETUNE}  # exactly what was missing
        assert first[FINETUNE] not in _queue(env)  # the stuck job was cancelled, not left behind
        _wait("the resubmitted jobs to finish", lambda: not _queue(env), folder=study.folder / "logs")
        states = {s.id: read_state(study.folder, s.id)["status"] for s in expand(study)}
        assert set(states.values()) == {"done"}, states

    report = subprocess.run([sys.executable, "-m", "nnunet_transfer.cli", "study", "report",
                             str(tmp_path / "study.toml")], env=env, capture_output=True, text=True)
    assert report.returncode == 0, report.stderr[-2000:]
    table = pd.read_csv(study.folder / "results" / "comparison.csv")
    assert table["initialisation"].tolist() == ["mri segmentation", "scratch"]
    log = (study.folder / "logs" / "train__stroke__mri_segmentation__finetune__fold_all.log").read_text()
    assert log.startswith(f"$ {Path(sys.executable).parent / 'nnUNetv2_train'} ")  # this installation's nnU-Net
    for pid in daemons:  # stopped by their pids when the cluster closed
        assert not Path(f"/proc/{pid}").exists() or Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"


def test_a_training_past_the_partitions_time_limit_requeues_itself_and_continues(tmp_path):
    """On partition ``short`` (a one-minute limit, SLURM's warning ``signal_delay_s`` = 5 s before it)
    the pretraining asks for more epochs than three jobs can run: each job is warned, stops its
    training, records the requeue and is requeued (same job id: the fine-tuning keeps waiting on it
    with afterok); each next job continues from checkpoint_latest.pth (``--c``). Once it was requeued
    twice the test lowers ``num_epochs`` in the plans, so the third job ends the training, whatever
    the machine's speed: three jobs, then the fine-tuning and the rest of the study."""
    reason = slurm_cluster.missing()
    if reason:
        pytest.skip(reason)
    started = time.time()
    (tmp_path / "study.toml").write_text(
        STUDY.replace("num_epochs = 3", "num_epochs = 1000\nsave_every = 1")
        .replace("timeout_min = 30", f'timeout_min = 1\npartition = "{slurm_cluster.SHORT}"\nsignal_delay_s = 5\n'
                                     f'max_requeues = 6'))  # slack: a test step may be warned too
    write_demo_datasets(tmp_path / "nnunet" / "nnUNet_raw", DemoDataSize(spacing_mm=8.0, n_train=4, n_test=2),
                        seed=4, which=["mri_seg_source", "stroke"], progress=False)
    study = load_study(tmp_path / "study.toml")
    with slurm_cluster.single_node_cluster(tmp_path / "slurm") as cluster:
        env = {k: v for k, v in cluster.items() if not k.startswith("nnUNet_")}
        env.update(PATH="/usr/bin:/bin:/usr/sbin:/sbin", nnUNet_def_n_proc="1", nnUNet_n_proc_DA="0")
        out = subprocess.run([sys.executable, "-m", "nnunet_transfer.cli", "study", "run",
                              str(tmp_path / "study.toml")],
                             env=env, capture_output=True, text=True)
        assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
        first = json.loads((study.folder / "submitit" / "slurm_jobs.json").read_text())
        assert "--signal=USR2@5" in (study.folder / "submitit" / f"{first[PRETRAIN]}_submission.sh").read_text()

        def requeues(step_id: str) -> list[dict]:
            return [e for e in step_history(study.folder, step_id) if e["event"] == "requeued"]

        _wait("the pretraining to be requeued twice", lambda: len(requeues(PRETRAIN)) >= 2, timeout=240,
              folder=study.folder / "logs")
        for plans in (tmp_path / "nnunet" / "nnUNet_preprocessed").glob("Dataset9*/nnUNetTransferPlans.json"):
            content = json.loads(plans.read_text())
            content["training_schedule"]["num_epochs"] = 3  # the third job finishes (jobs read plans as they start)
            write_json_atomic(content, plans)
        _wait("the study's jobs to finish", lambda: not _queue(env), timeout=240, folder=study.folder / "logs")
        states = {s.id: read_state(study.folder, s.id)["status"] for s in expand(study)}
        assert set(states.values()) == {"done"}, (states, step_history(study.folder, PRETRAIN))

    history = step_history(study.folder, PRETRAIN)
    requeued, resumed = requeues(PRETRAIN), [e for e in history if e["event"] == "resumed"]
    assert len(requeued) == 2 and len(resumed) == 2, history  # three jobs
    assert {e["job_id"] for e in requeued} == {first[PRETRAIN]}  # requeued: the same job
    # each job continues from the checkpoint of the last epoch before the signal (save_every = 1): only the epoch
    # that was running is trained again (one more or less: the signal may come while an epoch's end is saved)
    assert 1 <= resumed[0]["epoch"] <= resumed[1]["epoch"], history
    for stop, start in zip(requeued, resumed):
        assert stop["epoch"] is None or abs(start["epoch"] - stop["epoch"]) <= 1, history
    assert history_summary(history).startswith(f"requeued 2x (job {first[PRETRAIN]} at epoch ")
    elapsed = time.time() - started
    print(f"requeue test: {elapsed:.0f} s; pretraining history: {history}")
