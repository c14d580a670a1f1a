"""``study status``: counts first, then one line per step not done (every step with ``--all``), in
100 columns: durations, what a waiting or blocked step waits for, error and log only where
something failed, the log relative to the study folder."""
import math

import pytest

from nnunet_transfer.cli import main
from nnunet_transfer.study import state
from nnunet_transfer.study.spec import load_study
from nnunet_transfer.study.status import WIDTH, duration, status_lines, status_table

STUDY = """
nnunet_root = "nn"
[[sources]]
dataset = 1
label = "MRI segmentation of a rather long source name (OASIS-1, all subjects)"
[[sources]]
dataset = 2
task = "classification"
[[targets]]
dataset = 3
label = "t"
"""
LONG = "MRI_segmentation_of_a_rather_long_source_name_OASIS_1_all_subjects"


@pytest.fixture
def study(tmp_path):
    (tmp_path / "s.toml").write_text(STUDY)
    study = load_study(tmp_path / "s.toml")
    logs = study.folder / "logs"
    state.mark(study.folder, "plan", state.DONE, seconds=754, log=str(logs / "plan.log"))
    state.mark(study.folder, f"pretrain/{LONG}", state.DONE, seconds=3 * 3600 + 120, log=str(logs / "a.log"))
    state.mark(study.folder, "pretrain/mri_classification", state.FAILED, seconds=190,
               error="nnUNetv2_train failed (exit code 1): CUDA out of memory. " + "x" * 120,
               log=str(logs / "pretrain__mri_classification.log"))
    state.mark(study.folder, f"train/t/{LONG}/finetune/fold_0", state.RUNNING, log=str(logs / "b.log"))
    return study


def test_counts_then_the_steps_not_done_in_100_columns(study):
    lines = status_lines(study)
    assert lines[0].startswith("study s (") and lines[0].endswith("): 9 steps")
    assert lines[1] == "  2 done, 1 running, 1 failed, 1 ready, 2 waiting, 2 blocked"
    assert all(len(line) <= WIDTH for line in lines), [line for line in lines if len(line) > WIDTH]
    text = "\n".join(lines)
    assert "plan" not in {line.split()[-1] for line in lines[3:]}  # done steps are not listed
    failed = lines.index("failed        3m10s  pretrain/mri_classification")
    assert lines[failed + 1].strip().startswith("nnUNetv2_train failed (exit code 1): CUDA out of memory.")
    assert lines[failed + 1].endswith("...")
    assert lines[failed + 2].strip() == "log: logs/pretrain__mri_classification.log"  # relative, failed only
    assert text.count("log:") == 1 and str(study.folder) not in "\n".join(lines[1:])
    blocked = lines.index("blocked" + " " * 14 + "train/t/mri_classification/finetune/fold_0")
    assert lines[blocked + 1] == " " * 21 + "waits for pretrain/mri_classification (failed)"
    assert "ready" + " " * 16 + "train/t/scratch/scratch/fold_0" in lines
    assert "waiting" + " " * 14 + "test/t/scratch/scratch/fold_0  waits for train/t/scratch/scratch/fold_0" in lines
    running = lines.index(next(line for line in lines if line.startswith("running")))
    assert lines[running].split()[1].endswith("s")  # how long it has been running
    assert lines[running].split()[2] == f"train/t/{LONG}/"  # an id too long for the line is broken after a /
    assert lines[running + 1] == " " * 23 + "finetune/fold_0"
    waiting = lines.index("waiting" + " " * 14 + f"test/t/{LONG}/")
    assert lines[waiting + 1] == " " * 23 + "finetune/fold_0"
    assert lines[waiting + 2].startswith(" " * 21 + "waits for train/t/")  # broken after a / too
    assert "".join(line.strip() for line in lines[waiting + 2:waiting + 5]) == \
        f"waits for train/t/{LONG}/finetune/fold_0"
    order = [line.split()[0] for line in lines[3:] if not line.startswith(" ")]
    assert order == ["failed", "running", "ready", "waiting", "waiting", "blocked", "blocked"]


def test_all_lists_the_done_steps_with_how_long_they_ran(study, capsys):
    assert main(["study", "status", str(study.path), "--all"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert "done         12m34s  plan" in out and f"done          3h02m  pretrain/{LONG}" in out
    assert main(["study", "status", str(study.path)]) == 0
    assert "done" not in {line.split()[0] for line in capsys.readouterr().out.splitlines()[2:] if line.strip()}


def test_the_table_has_the_schedulers_states_and_durations(study):
    table = status_table(study).set_index("step")
    assert table.loc["plan", "seconds"] == 754 and table.loc["train/t/scratch/scratch/fold_0", "status"] == "ready"
    assert table.loc[f"test/t/{LONG}/finetune/fold_0", "waits_for"] == f"train/t/{LONG}/finetune/fold_0"
    assert 0 <= table.loc[f"train/t/{LONG}/finetune/fold_0", "seconds"] < 60  # running: since it started
    state.mark(study.folder, "plan", state.DONE)  # a state file of an earlier version: no seconds
    assert math.isnan(status_table(study).set_index("step").loc["plan", "seconds"])


@pytest.mark.parametrize("seconds, text", [(None, ""), (0.4, "0s"), (45, "45s"), (190, "3m10s"), (3600, "1h00m"),
                                           (7500, "2h05m"), (3 * 86400 + 4 * 3600 + 59, "3d04h")])
def test_durations_are_short(seconds, text):
    assert duration(seconds) == text


def test_a_study_with_everything_done_prints_the_counts_only(study):
    for step in status_table(study)["step"]:
        state.mark(study.folder, step, state.DONE, seconds=1)
    assert status_lines(study)[1:] == ["  9 done"]


def test_a_step_s_requeues_are_one_line_under_it(tmp_path):
    from nnunet_transfer.study.state import add_history
    from nnunet_transfer.study.status import _step_lines
    row = type("Row", (), {"status": "running", "seconds": 61.0, "step": "train/t/scratch/scratch/fold_0",
                           "waits_for": None, "error": None, "log": None})()
    assert len(_step_lines(row, tmp_path)) == 1
    add_history(tmp_path, row.step, "requeued", job_id="12", epoch=7)
    lines = _step_lines(row, tmp_path)
    assert len(lines) == 2 and lines[1].strip().startswith("requeued 1x (job 12 at epoch 7") and len(lines[1]) <= 100
