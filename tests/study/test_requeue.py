"""A SLURM job warned of its time limit (or preemption): its training is stopped, the requeue is
recorded in the running step's history, and the same job comes back for submitit to requeue, at
most ``launcher.max_requeues`` times. The real signal path is tested in tests/integration/test_slurm.py."""
import json
import subprocess
import sys
import textwrap

import pytest

from nnunet_transfer.errors import CommandKilled
from nnunet_transfer.study import requeue, state
from nnunet_transfer.study.requeue import RequeueableJob, epoch_reached

STEPS = ["train/t/scratch/scratch/fold_0", "test/t/scratch/scratch/fold_0"]


def entry(study_file, step_ids):
    return step_ids


@pytest.fixture
def running(tmp_path, monkeypatch):
    """The job's training step running, its log at epoch 7; job id 4242; stopping recorded, not done."""
    log = tmp_path / "logs" / "train.log"
    log.parent.mkdir()
    log.write_text("$ nnUNetv2_train ...\n" + "".join(f"2024-01-01 10:00:0{e}.000000: Epoch {e}\n" for e in range(8)))
    state.mark(tmp_path, STEPS[0], state.RUNNING, log=str(log))
    monkeypatch.setenv("SLURM_JOB_ID", "4242")
    stopped = []
    monkeypatch.setattr(requeue, "stop_descendants", lambda grace_s: stopped.append(grace_s) or [])
    return stopped


def test_a_warned_job_stops_its_training_records_the_requeue_and_comes_back(tmp_path, running):
    delayed = RequeueableJob(entry, tmp_path, max_requeues=2).checkpoint("s.toml", STEPS)
    assert running == [requeue.STOP_GRACE_S]
    assert delayed.function.requeues == 1 and delayed.args == ("s.toml", STEPS)
    assert delayed.function(*delayed.args) == STEPS  # the same job: its steps again
    [event] = state.step_history(tmp_path, STEPS[0])
    assert event["event"] == "requeued" and event["job_id"] == "4242" and event["epoch"] == 7
    assert (event["requeue"], event["max_requeues"]) == (1, 2)
    again = delayed.function.checkpoint("s.toml", STEPS)
    assert again.function.requeues == 2
    assert state.history_summary(state.step_history(tmp_path, STEPS[0])).startswith("requeued 2x (job 4242 at epoch 7")


def test_after_max_requeues_the_step_is_interrupted_with_why(tmp_path, running):
    with pytest.raises(CommandKilled, match="not requeued.*launcher.max_requeues = 1"):
        RequeueableJob(entry, tmp_path, max_requeues=1, requeues=1).checkpoint("s.toml", STEPS)
    assert [e["event"] for e in state.step_history(tmp_path, STEPS[0])] == ["not requeued"]


def test_the_event_goes_to_the_step_that_was_running(tmp_path, running):
    state.mark(tmp_path, STEPS[0], state.DONE)
    state.mark(tmp_path, STEPS[1], state.RUNNING)
    RequeueableJob(entry, tmp_path, max_requeues=3).checkpoint("s.toml", STEPS)
    assert state.step_history(tmp_path, STEPS[0]) == []
    assert state.step_history(tmp_path, STEPS[1])[0]["epoch"] is None  # a prediction has no epochs


def test_epoch_reached_reads_the_last_epoch_line(tmp_path):
    log = tmp_path / "x.log"
    assert epoch_reached(log) is None
    log.write_text("Epoch 0\nfoo\n2024-01-01 10:00:00.000000: Epoch 12\ntrain_loss -0.5\n")
    assert epoch_reached(log) == 12


def test_stop_descendants_ends_children_and_grandchildren(tmp_path):
    """In a process of its own (stopping the test process's children would stop pytest's helpers)."""
    script = textwrap.dedent(f"""
        import json, subprocess, sys, time
        from nnunet_transfer.processes import stop_descendants
        sleeper = "import signal, subprocess, sys, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); " \\
                  "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); time.sleep(60)"
        child = subprocess.Popen([sys.executable, "-c", sleeper])  # ignores SIGTERM: needs the SIGKILL
        time.sleep(1.5)
        pids = stop_descendants(grace_s=1.0)
        json.dump({{"pids": pids, "child": child.pid, "code": child.wait(timeout=10)}},
                  open({str(tmp_path / "out.json")!r}, "w"))
    """)
    subprocess.run([sys.executable, "-c", script], check=True, timeout=60)
    out = json.loads((tmp_path / "out.json").read_text())
    assert out["child"] in out["pids"] and len(out["pids"]) == 2  # the child and its child
    assert out["code"] == -9
    for pid in out["pids"]:
        try:
            stat = open(f"/proc/{pid}/stat").read()
        except OSError:
            continue
        assert stat.rsplit(")", 1)[1].split()[0] == "Z" or pid != out["child"]
