"""SLURM submission through submitit, against stand-in ``sbatch`` / ``srun`` commands: the job scripts
submitit writes carry our partition, time, GPUs and the afterok dependencies of the grid."""
import os
import re
import stat

import pytest

from nnunet_transfer.study.launch import submit
from nnunet_transfer.study.scheduler import jobs
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
    """``sbatch`` that numbers jobs from 101 (and refuses job number $FAKE_SLURM_REFUSE), ``srun`` that
    exists, ``sinfo`` describing partition gpu (8 CPUs, 64 GB, 4 GPUs, 2 days), ``squeue`` printing
    $FAKE_SLURM_QUEUE, ``scancel`` recording its arguments: all the launcher asks of SLURM."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "sbatch").write_text('#!/usr/bin/env bash\nn=$(cat "$FAKE_SLURM_COUNTER" 2>/dev/null || echo 100)\n'
                                    'n=$((n+1)); echo $n > "$FAKE_SLURM_COUNTER"\n'
                                    'if [ "$n" = "${FAKE_SLURM_REFUSE:-}" ]; then\n'
                                    '  echo "sbatch: error: Invalid generic resource (gres) specification" >&2\n'
                                    '  exit 1\n'
                                    'fi\necho "Submitted batch job $n"\n')
    (bin_dir / "srun").write_text("#!/usr/bin/env bash\nexit 0\n")
    (bin_dir / "sinfo").write_text('#!/usr/bin/env bash\necho "${FAKE_SINFO:-gpu*|8|64000|gpu:4|2-00:00:00}"\n')
    (bin_dir / "squeue").write_text('#!/usr/bin/env bash\nprintf "${FAKE_SLURM_QUEUE:-}"\n')
    (bin_dir / "scancel").write_text(f'#!/usr/bin/env bash\necho "$@" >> {tmp_path / "cancelled"}\n')
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


def _study(tmp_path, text=STUDY):
    path = tmp_path / "s.toml"
    path.write_text(text)
    return load_study(path)


@pytest.mark.parametrize("launcher, message", [
    ("cpus_per_task = 16", "launcher.cpus_per_task = 16, but the nodes of partition 'gpu' have 8 CPUs"),
    ("gpus_per_node = 8", "launcher.gpus_per_node = 8, but partition 'gpu' offers 4 GPUs per node"),
    ("mem_gb = 100", "launcher.mem_gb = 100.0, but the nodes of partition 'gpu' have 62.5 GB"),
    ("timeout_min = 5000", "launcher.timeout_min = 5000, but partition 'gpu' allows 2880 minutes"),
])
def test_requests_beyond_the_partition_are_refused_before_anything_is_submitted(tmp_path, fake_slurm, launcher,
                                                                                 message):
    from nnunet_transfer.errors import NnunetTransferError
    study = _study(tmp_path, STUDY.replace("timeout_min = 90", launcher))
    with pytest.raises(NnunetTransferError, match=re.escape(message) + ".*Nothing was submitted"):
        submit(study, "slurm")
    assert not (tmp_path / "counter").exists()


def test_a_cpu_partition_asks_for_gpus_per_node_0(tmp_path, fake_slurm, monkeypatch):
    from nnunet_transfer.errors import NnunetTransferError
    monkeypatch.setenv("FAKE_SINFO", "debug*|2|16000|(null)|infinite")
    study = _study(tmp_path, STUDY.replace('partition = "gpu"\n', "").replace("timeout_min = 90", "cpus_per_task = 2"))
    with pytest.raises(NnunetTransferError, match="offers no GPUs per node .*set gpus_per_node = 0"):
        submit(study, "slurm")
    study = _study(tmp_path, STUDY.replace('partition = "gpu"\n', "").replace("timeout_min = 90",
                                                                            "cpus_per_task = 2\ngpus_per_node = 0"))
    assert (submit(study, "slurm")["job_id"] != "").all()


def test_a_refused_submission_cancels_what_it_submitted(tmp_path, fake_slurm, monkeypatch):
    from nnunet_transfer.errors import NnunetTransferError
    monkeypatch.setenv("FAKE_SLURM_REFUSE", "103")
    study = _study(tmp_path)
    with pytest.raises(NnunetTransferError, match="sbatch refused job pretrain/mri_classification: sbatch: error: "
                                                  "Invalid generic resource.*The 2 job\\(s\\) submitted before it "
                                                  "were cancelled"):
        submit(study, "slurm")
    assert (tmp_path / "cancelled").read_text().split() == ["101", "102"]


def test_queued_or_running_jobs_are_not_submitted_twice_and_stuck_ones_are_resubmitted(tmp_path, fake_slurm,
                                                                                        monkeypatch):
    study = _study(tmp_path)
    first = submit(study, "slurm").set_index("job")["job_id"].to_dict()
    # the plan runs, a pretraining was cancelled, the fine-tuning behind it can never start
    monkeypatch.setenv("FAKE_SLURM_QUEUE", f"{first['plan']}|RUNNING|None\\n"
                                           f"{first['pretrain/mri_segmentation']}|PENDING|Dependency\\n"
                                           f"{first['run/t/mri_classification/finetune/fold_0']}|PENDING|"
                                           f"DependencyNeverSatisfied\\n")
    dry = submit(study, "slurm", dry_run=True).set_index("job")["submit"]
    assert dry["plan"] == f"no (job {first['plan']} queued or running)"
    assert dry["run/t/mri_classification/finetune/fold_0"].startswith("again (job 105 can never start")
    assert dry["pretrain/mri_classification"] == "yes"
    assert not (tmp_path / "cancelled").exists()  # a dry run changes nothing
    again = submit(study, "slurm").set_index("job")["job_id"].to_dict()
    assert (tmp_path / "cancelled").read_text().split() == [first["run/t/mri_classification/finetune/fold_0"]]
    assert again["plan"] == first["plan"] and again["pretrain/mri_segmentation"] == first["pretrain/mri_segmentation"]
    resubmitted = {k for k in again if again[k] != first[k]}
    assert resubmitted == {"pretrain/mri_classification", "run/t/mri_segmentation/finetune/fold_0",
                           "run/t/mri_classification/finetune/fold_0", "run/t/scratch/scratch/fold_0"}
    script = (study.folder / "submitit" / f"{again['run/t/mri_segmentation/finetune/fold_0']}_submission.sh")
    assert f"afterok:{first['pretrain/mri_segmentation']}" in script.read_text()  # waits on the live job


def test_seeds_and_per_seed_pretrainings_are_jobs_with_their_dependencies(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text(STUDY.replace("folds = [0]", 'folds = [0]\nseeds = [0, 3]\npretrain_seeds = "each"'))
    by_name = {job.name: job for job in jobs(load_study(path))}
    assert {"pretrain/mri_segmentation", "pretrain/mri_segmentation/seed_3"} <= set(by_name)
    seeded = by_name["run/t/mri_segmentation/finetune/seed_3/fold_0"]
    assert seeded.steps == ("train/t/mri_segmentation/finetune/seed_3/fold_0",
                            "test/t/mri_segmentation/finetune/seed_3/fold_0")
    assert seeded.deps == ("pretrain/mri_segmentation/seed_3",)
    assert by_name["run/t/scratch/scratch/seed_3/fold_0"].deps == ("plan",)
