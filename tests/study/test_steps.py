"""How a training step decides it is finished: a ``checkpoint_final.pth`` that does not load (a job
killed while nnU-Net wrote it) is not a finished training; the step trains again, from
``checkpoint_latest.pth`` when that loads, else from the start, and says why in its history."""
import pytest
import torch

from nnunet_transfer import nnunet_commands
from nnunet_transfer.layout import CHECKPOINT_FINAL, CHECKPOINT_LATEST
from nnunet_transfer.study import runner, state
from nnunet_transfer.study.paths import activate, run_folder
from nnunet_transfer.study.spec import load_study
from nnunet_transfer.study.steps import expand

STUDY = """
nnunet_root = "nn"
device = "cpu"
folds = [0]
[[sources]]
dataset = 1
[[targets]]
dataset = 3
label = "t"
"""
STEP = "train/t/scratch/scratch/fold_0"


def _checkpoint(path, epoch: int) -> None:
    torch.save({"network_weights": {"w": torch.arange(64.0)}, "current_epoch": epoch}, path)


@pytest.fixture
def finished(tmp_path, monkeypatch):
    """A scratch run trained to the end (final and latest checkpoints there), its step not recorded done
    (the job was killed while nnU-Net wrote the final checkpoint); nnUNetv2_train replaced by a
    stand-in recording whether it was asked to continue and writing a whole final checkpoint."""
    (tmp_path / "s.toml").write_text(STUDY)
    study = load_study(tmp_path / "s.toml")
    for name in ("Dataset001_s", "Dataset003_t"):
        (tmp_path / "nn" / "nnUNet_raw" / name).mkdir(parents=True)
    activate(study)
    step = next(s for s in expand(study) if s.id == STEP)
    folder = run_folder(study, step.run)
    folder.mkdir(parents=True)
    _checkpoint(folder / CHECKPOINT_LATEST, 9)
    _checkpoint(folder / CHECKPOINT_FINAL, 10)
    state.mark(study.folder, STEP, state.INTERRUPTED)
    calls = []

    def train(*args, continue_training=False, **kwargs):
        calls.append(continue_training)
        folder.mkdir(parents=True, exist_ok=True)  # nnU-Net makes it
        _checkpoint(folder / CHECKPOINT_FINAL, 10)

    monkeypatch.setattr(nnunet_commands, "train", train)
    return study, step, folder, calls


def test_a_final_checkpoint_that_loads_is_a_finished_training(finished):
    study, step, folder, calls = finished
    runner.run_step(study, step)
    assert calls == [] and state.read_state(study.folder, STEP)["status"] == state.DONE


def test_a_truncated_final_checkpoint_is_trained_again_from_the_latest(finished):
    study, step, folder, calls = finished
    whole = (folder / CHECKPOINT_FINAL).read_bytes()
    (folder / CHECKPOINT_FINAL).write_bytes(whole[: len(whole) // 2])
    assert state.read_state(study.folder, STEP)["status"] != state.DONE
    runner.run_step(study, step)
    assert calls == [True]  # nnUNetv2_train --c: from checkpoint_latest.pth, the truncated final deleted first
    assert state.read_state(study.folder, STEP)["status"] == state.DONE
    retrained, resumed = state.step_history(study.folder, STEP)
    assert retrained["event"] == "retrained" and f"{folder / CHECKPOINT_FINAL} does not load" in retrained["detail"]
    assert resumed["event"] == "resumed" and resumed["epoch"] == 9
    assert "retrained:" in state.history_summary(state.step_history(study.folder, STEP))


def test_truncated_final_and_latest_start_over(finished):
    study, step, folder, calls = finished
    for name in (CHECKPOINT_FINAL, CHECKPOINT_LATEST):
        (folder / name).write_bytes((folder / name).read_bytes()[:100])
    runner.run_step(study, step)
    assert calls == [False]
    assert [e["event"] for e in state.step_history(study.folder, STEP)] == ["retrained", "started over"]
