"""The nnUNetv2_train command line and its runner."""
import sys

import pytest

from nnunet_transfer.errors import NnunetTransferError
from nnunet_transfer.nnunet_commands import run_logged, train_command


def test_train_command_multi_gpu_and_continue():
    assert train_command("D", "3d_fullres", 0, "T", "P", device="cpu")[1:] == [
        "D", "3d_fullres", "0", "-tr", "T", "-p", "P", "-device", "cpu"]
    cmd = train_command("D", "3d_fullres", "all", "T", "P", continue_training=True, device="cuda", num_gpus=4)
    assert cmd[-3:] == ["-num_gpus", "4", "--c"]


def test_nnunet_runs_from_the_interpreters_installation_whatever_the_path(monkeypatch):
    """A job started without the virtual environment on PATH still runs this installation's nnU-Net."""
    from pathlib import Path
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    command = train_command("D", "2d", 0, "T", "P", device="cpu")[0]
    assert command == str(Path(sys.executable).parent / "nnUNetv2_train") and Path(command).is_file()


def test_a_failing_command_is_one_error_with_its_log(tmp_path):
    log = tmp_path / "logs" / "x.log"
    script = ("print('Epoch 0'); print('nnunet_transfer.errors.NnunetTransferError: the real reason'); "
              "raise SystemExit(3)")
    with pytest.raises(NnunetTransferError, match=r"exit code 3\): the real reason\nFull log: .*x.log"):
        run_logged([sys.executable, "-c", script], log, "test", total=2, progress=False)
    assert "Epoch 0" in log.read_text()
    with pytest.raises(NnunetTransferError, match="not_a_command_here not found on PATH"):
        run_logged(["not_a_command_here"], log, "test", progress=False)


def test_a_command_ended_by_a_signal_is_killed_not_failed(tmp_path):
    """scancel ends a job's training with SIGTERM: the step was interrupted (it runs again), not failed."""
    from nnunet_transfer.errors import CommandKilled
    script = "import os, signal; os.kill(os.getpid(), signal.SIGTERM)"
    with pytest.raises(CommandKilled, match="ended by signal 15"):
        run_logged([sys.executable, "-c", script], tmp_path / "x.log", "test", progress=False)
