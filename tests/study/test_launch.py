"""SLURM submission through submitit, against stand-in ``sbatch`` / ``srun`` commands: the job scripts
submitit writes carry our partition, time, GPUs and the afterok dependencies of the grid."""
import os
import re
import stat

import pytest

from nnunet_transfer.study.launch import jobs, submit
from nnunet_transfer.study.spec import load_study

STUDY = """
nnunet_root = "nn"
folds = [0]
[launcher]
partition = "gpu"
timeout_min = 90
[[sources]]
dataset = 1
[[sources]]
dataset = 2
task = "classification"
[[targets]]
dataset = 3
label = "t"
"""


@pytest.fixture
def fake_slurm(tmp_path, monkeypatch):
    """``sbatch`` that numbers jobs from 101 and ``srun`` that exists: all submitit needs to submit."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "sbatch").write_text('#!/usr/bin/env bash\nn=$(cat "$FAKE_SLURM_COUNTER" 2>/dev/null || echo 100)\n'
                                    'n=$((n+1)); echo $n > "$FAKE_SLURM_COUNTER"\necho "Submitted batch job $n"\n')
    (bin_dir / "srun").write_text("#!/usr/bin/env bash\nexit 0\n")
    for f in bin_dir.iterdir():
        f.chmod(f.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_SLURM_COUNTER", str(tmp_path / "counter"))
    for name in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results"):
        monkeypatch.setenv(name, "unset")  # restored after the test; the study points them into nn/


def test_jobs_are_submitted_with_dependencies(tmp_path, fake_slurm):
    path = tmp_path / "s.toml"
    path.write_text(STUDY)
    study = load_study(path)
    table = submit(study, "slurm").set_index("job")
    ids = table["job_id"].to_dict()
    assert ids["plan"] == "101" and ids["pretrain/mri_classification"] == "103"
    scripts = {int(p.name.split("_")[0]): p.read_text() for p in (study.folder / "submitit").glob("*_submission.sh")}
    assert sorted(scripts) == list(range(101, 107))

    def sbatch(job_id: str) -> dict[str, str]:
        return dict(re.findall(r"#SBATCH --([\w-]+)=(\S+)", scripts[int(job_id)]))

    plan = sbatch(ids["plan"])
    assert plan["partition"] == "gpu" and plan["time"] == "90" and "dependency" not in plan
    assert plan["gpus-per-node"] == "0"
    assert sbatch(ids["pretrain/mri_segmentation"])["dependency"] == "afterok:101"
    finetune = sbatch(ids["run/t/mri_classification/finetune/fold_0"])
    assert finetune["dependency"] == "afterok:103" and finetune["gpus-per-node"] == "1"
    assert sbatch(ids["run/t/scratch/scratch/fold_0"])["dependency"] == "afterok:101"


def test_done_jobs_are_not_submitted_again(tmp_path, fake_slurm):
    from nnunet_transfer.study import state
    path = tmp_path / "s.toml"
    path.write_text(STUDY)
    study = load_study(path)
    state.mark(study.folder, "plan", state.DONE)
    table = submit(study, "slurm").set_index("job")
    assert table.loc["plan", "submit"] == "no (done)" and table.loc["plan", "job_id"] == ""
    assert "dependency" not in (study.folder / "submitit" / "101_submission.sh").read_text()  # plan is done


def test_jobs_depend_on_their_pretraining(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text('folds = [0]\n[[sources]]\ndataset = 1\n[[sources]]\ndataset = 2\ntask = "classification"\n'
                    '[[targets]]\ndataset = 3\nlabel = "t"\n')
    found = {j.name: j for j in jobs(load_study(path))}
    assert list(found) == ["plan", "pretrain/mri_segmentation", "pretrain/mri_classification",
                           "run/t/mri_segmentation/finetune/fold_0", "run/t/mri_classification/finetune/fold_0",
                           "run/t/scratch/scratch/fold_0"]
    assert found["run/t/mri_classification/finetune/fold_0"].deps == ("pretrain/mri_classification",)
    assert found["run/t/scratch/scratch/fold_0"].deps == ("plan",)
    assert found["run/t/scratch/scratch/fold_0"].steps == ("train/t/scratch/scratch/fold_0",
                                                          "test/t/scratch/scratch/fold_0")


def test_training_sizes_are_jobs_like_any_other(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text('folds = [0]\n[[sources]]\ndataset = 1\n[[targets]]\ndataset = 3\nlabel = "t"\n'
                    'train_sizes = [2, 4]\n')
    found = {j.name: j for j in jobs(load_study(path))}
    assert list(found) == ["plan", "pretrain/mri_segmentation", "run/t/n2/mri_segmentation/finetune/fold_0",
                           "run/t/n2/scratch/scratch/fold_0", "run/t/n4/mri_segmentation/finetune/fold_0",
                           "run/t/n4/scratch/scratch/fold_0"]
    assert found["run/t/n4/scratch/scratch/fold_0"].steps == ("train/t/n4/scratch/scratch/fold_0",
                                                             "test/t/n4/scratch/scratch/fold_0")
