"""The multi-GPU local launcher with fake device ids: which job got which device, that no device ran
two jobs at once, that dependencies were waited for, resuming, and a failed job's dependants. The
scheduler and its child processes are real; each job's command is a stand-in that records its
device and time and marks its steps as a finished step would."""
import json
import sys

import pytest

from nnunet_transfer.errors import NnunetTransferError
from nnunet_transfer.study import state
from nnunet_transfer.study.parallel import run_parallel
from nnunet_transfer.study.scheduler import jobs
from nnunet_transfer.study.spec import load_study

STUDY = """
name = "gpus"
nnunet_root = "nnunet"
[launcher]
gpus = [0, 1]
[[sources]]
dataset = 1
[[sources]]
dataset = 2
task = "classification"
[[targets]]
dataset = 3
"""

FAKE_JOB = """
import json, os, sys, time
from pathlib import Path
from nnunet_transfer.study import state
record, folder, name, fail, steps = sys.argv[1], Path(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5:]
start = time.time()
time.sleep(0.4)
with open(record, "a") as f:
    f.write(json.dumps({"job": name, "device": os.environ["CUDA_VISIBLE_DEVICES"], "start": start,
                        "end": time.time()}) + "\\n")
for step in steps:
    state.mark(folder, step, state.FAILED if name == fail else state.DONE)
sys.exit(1 if name == fail else 0)
"""


def _fake(record, fail=""):
    def command(study, job):
        return [sys.executable, "-c", FAKE_JOB, str(record), str(study.folder), job.name, fail, *job.steps]
    return command


def _records(path):
    return {r["job"]: r for r in map(json.loads, path.read_text().splitlines())}


@pytest.fixture
def study(tmp_path):
    path = tmp_path / "study.toml"
    path.write_text(STUDY)
    return load_study(path)


def test_jobs_run_side_by_side_one_per_device_after_their_dependencies(study, tmp_path):
    assert study.launcher.gpus == [0, 1]
    record = tmp_path / "record.jsonl"
    assert run_parallel(study, study.launcher.gpus, progress=False, command=_fake(record)) == []
    ran = _records(record)
    assert set(ran) == {j.name for j in jobs(study)}
    assert {r["device"] for r in ran.values()} == {"0", "1"}
    for job in jobs(study):  # every job after the jobs it depends on
        assert all(ran[d]["end"] <= ran[job.name]["start"] for d in job.deps), job.name
    for a in ran.values():  # one job per device at a time
        for b in ran.values():
            if a is not b and a["device"] == b["device"]:
                assert a["end"] <= b["start"] or b["end"] <= a["start"], (a, b)
    first, second = ran["pretrain/mri_segmentation"], ran["pretrain/mri_classification"]
    assert first["device"] != second["device"] and first["start"] < second["end"] and second["start"] < first["end"]
    # resumable: everything is done, a second run starts nothing
    record.unlink()
    assert run_parallel(study, ["0", "1"], progress=False, command=_fake(record)) == [] and not record.exists()


def test_a_failed_job_stops_its_dependants_only(study, tmp_path):
    record = tmp_path / "record.jsonl"
    failed = run_parallel(study, ["7"], progress=False, command=_fake(record, fail="pretrain/mri_classification"))
    ran = _records(record)
    assert "pretrain/mri_classification" in failed
    assert "train/3/mri_classification/finetune/fold_0" in failed  # never started: its pretraining failed
    assert not any("mri_classification/finetune" in name for name in ran if name.startswith("run/"))
    assert "run/3/mri_segmentation/finetune/fold_0" in ran and "run/3/scratch/scratch/fold_0" in ran
    assert {r["device"] for r in ran.values()} == {"7"}
    # the next run redoes only the failed job and its dependants
    record.unlink()
    assert run_parallel(study, ["0", "1"], progress=False, command=_fake(record)) == []
    assert set(_records(record)) == {"pretrain/mri_classification", "run/3/mri_classification/finetune/fold_0"}


def test_a_second_runner_is_refused(study, tmp_path):
    with state.runner_lock(study.folder):
        with pytest.raises(NnunetTransferError, match="runner"):
            run_parallel(study, ["0"], progress=False, command=_fake(tmp_path / "r.jsonl"))


def test_gpus_must_be_device_ids(tmp_path):
    path = tmp_path / "study.toml"
    path.write_text(STUDY.replace("gpus = [0, 1]", "gpus = []"))
    with pytest.raises(NnunetTransferError, match="'launcher.gpus'"):
        load_study(path)
