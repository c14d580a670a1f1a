"""Per-step state: atomic records, interrupted runs detected, one runner per study."""
import os
import subprocess
import sys

import pytest

from nnunet_transfer.errors import NnunetTransferError
from nnunet_transfer.io import write_json_atomic
from nnunet_transfer.study import state


def test_mark_and_read(tmp_path):
    assert state.read_state(tmp_path, "train/a/b")["status"] == "pending"
    state.mark(tmp_path, "train/a/b", state.DONE, log="x.log")
    record = state.read_state(tmp_path, "train/a/b")
    assert record["status"] == "done" and record["log"] == "x.log" and record["pid"] == os.getpid()
    assert (tmp_path / "state" / "train__a__b.json").is_file()
    assert not list((tmp_path / "state").glob(".*"))  # no temporary file left


def test_running_step_of_a_dead_process_is_interrupted(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    state.mark(tmp_path, "plan", state.RUNNING)
    assert state.read_state(tmp_path, "plan")["status"] == "running"  # this process is alive
    record = state.read_state(tmp_path, "plan")
    record["pid"] = int(dead.stdout)
    write_json_atomic(record, state.state_path(tmp_path, "plan"))
    assert state.read_state(tmp_path, "plan")["status"] == "interrupted"


def test_second_runner_is_refused(tmp_path):
    code = ("import sys, time; from pathlib import Path; from nnunet_transfer.study.state import runner_lock\n"
            "with runner_lock(Path(sys.argv[1])):\n    print('locked', flush=True); time.sleep(30)")
    holder = subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(NnunetTransferError, match=f"another runner is working on .* \\(pid {holder.pid}\\)"):
            with state.runner_lock(tmp_path):
                pass
    finally:
        holder.kill()
        holder.wait()
    with state.runner_lock(tmp_path):  # released when its holder was killed
        pass
