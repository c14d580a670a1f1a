"""The local runner's failure paths: a failed step is recorded with its error, its dependants are
blocked, independent steps still run, a second run retries only what is not done."""
import pytest

from nnunet_transfer.errors import NnunetTransferError
from nnunet_transfer.study import runner, state
from nnunet_transfer.study.status import status_table
from nnunet_transfer.study.spec import load_study

STUDY = """
nnunet_root = "nn"
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
def study(tmp_path):
    (tmp_path / "s.toml").write_text(STUDY)
    return load_study(tmp_path / "s.toml")


def test_a_failed_step_blocks_its_dependants_and_nothing_else(study, monkeypatch):
    ran = []

    def execute(study, step):
        ran.append(step.id)
        if step.id == "pretrain/mri_classification":
            raise NnunetTransferError("nnUNetv2_train failed (exit code 1): out of memory\nFull log: x.log")
        if step.id == "train/t/scratch/scratch/fold_0":
            raise ValueError("a bug")

    monkeypatch.setattr(runner, "execute", execute)
    failed = runner.run_local(study, progress=False)
    assert failed == ["pretrain/mri_classification", "train/t/scratch/scratch/fold_0"]
    assert "train/t/mri_classification/finetune/fold_0" not in ran  # needs the failed pretraining
    assert "test/t/mri_segmentation/finetune/fold_0" in ran  # independent of both failures
    table = status_table(study).set_index("step")
    assert table.loc["pretrain/mri_classification", "error"] == "nnUNetv2_train failed (exit code 1): out of memory"
    assert table.loc["train/t/scratch/scratch/fold_0", "error"] == "ValueError: a bug"
    assert table.loc["train/t/mri_classification/finetune/fold_0", "status"] == "blocked"
    assert table.loc["test/t/mri_classification/finetune/fold_0", "status"] == "blocked"
    assert table.loc["test/t/mri_segmentation/finetune/fold_0", "status"] == state.DONE

    ran.clear()
    monkeypatch.setattr(runner, "execute", lambda study, step: ran.append(step.id))
    assert runner.run_local(study, progress=False) == []
    assert ran == ["pretrain/mri_classification", "train/t/mri_classification/finetune/fold_0",
                   "test/t/mri_classification/finetune/fold_0", "train/t/scratch/scratch/fold_0",
                   "test/t/scratch/scratch/fold_0"]  # only what was not done, in dependency order


def test_an_interrupted_step_is_marked_and_rerun(study, monkeypatch):
    def interrupted(study, step):
        if step.id == "plan":
            raise KeyboardInterrupt

    monkeypatch.setattr(runner, "execute", interrupted)
    with pytest.raises(KeyboardInterrupt):
        runner.run_local(study, progress=False)
    assert state.read_state(study.folder, "plan")["status"] == state.INTERRUPTED
    assert "blocked" not in set(status_table(study)["status"])  # an interruption blocks nothing
    monkeypatch.setattr(runner, "execute", lambda study, step: None)
    assert runner.run_local(study, progress=False) == []
    assert set(status_table(study)["status"]) == {state.DONE}


def test_a_step_whose_training_was_ended_by_a_signal_is_interrupted_not_failed(study, monkeypatch):
    from nnunet_transfer.errors import CommandKilled

    def cancelled(study, step):
        if step.id == "plan":
            raise CommandKilled("`nnUNetv2_train ...` was ended by signal 15")

    monkeypatch.setattr(runner, "execute", cancelled)
    assert runner.run_local(study, progress=False) == ["plan"]
    recorded = state.read_state(study.folder, "plan")
    assert recorded["status"] == state.INTERRUPTED and "signal 15" in recorded["error"]


def test_a_full_disk_stops_the_run_with_one_message_naming_the_file_and_leaves_the_step_resumable(study,
                                                                                                  monkeypatch):
    import errno
    import json

    from nnunet_transfer import io
    from nnunet_transfer.errors import OutOfSpace

    full = {"on": False}
    real_dump = json.dump

    def dump(*args, **kwargs):  # a write on a full disk: ENOSPC, naming no file (as a failed write says)
        if full["on"]:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_dump(*args, **kwargs)

    monkeypatch.setattr(io.json, "dump", dump)
    ran = []

    def execute(study, step):
        ran.append(step.id)
        if step.id == "plan":
            full["on"] = True  # from now on, the state cannot be written either
            io.write_json_atomic({"plans": 1}, study.folder / "plans.json")

    monkeypatch.setattr(runner, "execute", execute)
    expected = f"No space left on device: plan could not write {study.folder / 'plans.json'}"
    with pytest.raises(OutOfSpace, match=expected):
        runner.run_local(study, progress=False)
    assert ran == ["plan"]  # the run stopped: no other step wrote to the full disk
    assert not (study.folder / "plans.json").exists()
    assert not [p.name for p in study.folder.rglob("*.tmp")]  # nothing half-written left behind
    assert state.read_state(study.folder, "plan")["status"] == state.RUNNING  # its last whole state, not done

    full["on"] = False
    monkeypatch.setattr(runner, "execute", lambda study, step: ran.append(step.id))
    assert runner.run_local(study, progress=False) == []  # space freed: the plan runs again, then the rest
    assert ran[1] == "plan" and set(status_table(study)["status"]) == {state.DONE}


def test_a_full_disk_in_a_training_is_an_interruption_recorded_with_the_message(study, monkeypatch):
    from nnunet_transfer.errors import NnunetTransferError, OutOfSpace

    def execute(study, step):  # nnUNetv2_train's error as run_logged reports it: the traceback's tail
        raise NnunetTransferError("`nnUNetv2_train 1 3d_fullres all ...` failed (exit code 1): "
                                  "OSError: [Errno 28] No space left on device\nFull log: x.log")

    monkeypatch.setattr(runner, "execute", execute)
    with pytest.raises(OutOfSpace, match="plan could not write into "):
        runner.run_local(study, progress=False)
    recorded = state.read_state(study.folder, "plan")
    assert recorded["status"] == state.INTERRUPTED and recorded["error"].startswith("No space left on device")
