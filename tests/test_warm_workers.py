"""Warm workers: a command in a fork of a warm server behaves as the command in a subprocess would.

Its environment and output, its exit status, a crash or a signal (the runner goes on), the runner's
Ctrl-C or death (the child goes too); and a real ``nnUNetv2_train`` in a warm worker equals the
stock command bit for bit.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch

from nnunet_transfer import warm_workers
from nnunet_transfer.errors import CommandKilled, NnunetTransferError
from nnunet_transfer.nnunet_commands import run_warm, train
from tests.conftest import use_folders

pytestmark = pytest.mark.xdist_group("planned_tiny")  # one server and the session's planned datasets per worker

SCRIPT = "tests.warm_helpers:main"


def _env(**extra) -> dict[str, str]:
    return {**os.environ, **extra}


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"
    except (OSError, IndexError):
        return False


def test_the_child_gets_the_commands_environment_arguments_and_log(tmp_path):
    log = tmp_path / "a.log"
    lines = []
    env = _env(nnUNet_raw=str(tmp_path / "raw"), CUDA_VISIBLE_DEVICES="3")
    assert warm_workers.run([SCRIPT, "env", "nnUNet_raw", "CUDA_VISIBLE_DEVICES"], env, log, lines.append) == 0
    text = log.read_text()
    assert f"nnUNet_raw={tmp_path / 'raw'}" in text and "CUDA_VISIBLE_DEVICES=3" in text
    assert "argv=env nnUNet_raw CUDA_VISIBLE_DEVICES" in text
    assert "from a grandchild" in text  # file descriptors: processes the command starts write there too
    assert "Epoch 0\n" in lines
    env.pop("CUDA_VISIBLE_DEVICES")  # another tree, another device: the same server serves it
    assert warm_workers.run([SCRIPT, "env", "CUDA_VISIBLE_DEVICES"], env, log, lines.append) == 0
    assert "CUDA_VISIBLE_DEVICES=None" in log.read_text()


@pytest.mark.parametrize("how, code", [("exit3", 3), ("raise", 1), ("os_exit", 7), ("segfault", -11),
                                       ("sigkill", -9)])
def test_exit_status_crash_and_signals_are_the_commands_and_the_runner_goes_on(tmp_path, how, code):
    log = tmp_path / "a.log"
    assert warm_workers.run([SCRIPT, how], _env(), log) == code
    if how == "raise":
        assert "ValueError: the reason" in log.read_text()
    assert warm_workers.run([SCRIPT, "env"], _env(), log) == 0  # the next command runs


def test_errors_read_as_a_subprocess_failure(tmp_path):
    log = tmp_path / "logs" / "x.log"
    with pytest.raises(NnunetTransferError, match=r"exit code 3\): the real reason\nFull log: .*x.log"):
        run_warm([SCRIPT, "ours"], log, "test", total=2, progress=False)
    assert log.read_text().startswith(f"$ {SCRIPT} ours")
    with pytest.raises(CommandKilled, match="ended by signal 9"):
        run_warm([SCRIPT, "sigkill"], log, "test", progress=False)


def test_ctrl_c_in_the_runner_stops_the_child(tmp_path):
    log = tmp_path / "a.log"
    pid_file = tmp_path / "pid"

    def interrupt(line: str) -> None:
        if line.startswith("sleeping"):
            raise KeyboardInterrupt

    start = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        warm_workers.run([SCRIPT, "sleep", str(pid_file)], _env(), log, interrupt)
    assert time.monotonic() - start < 60
    assert not _alive(int(pid_file.read_text()))
    assert warm_workers.run([SCRIPT, "env"], _env(), log) == 0


def test_a_killed_server_is_a_killed_command_and_the_next_gets_a_new_server(tmp_path):
    pid_file = tmp_path / "pid"

    def kill_server(line: str) -> None:
        if line.startswith("sleeping"):
            server = int(Path(f"/proc/{pid_file.read_text()}/stat").read_text().split(") ")[1].split()[1])
            os.kill(server, signal.SIGKILL)

    assert warm_workers.run([SCRIPT, "sleep", str(pid_file)], _env(), tmp_path / "a.log", kill_server) == -9
    for _ in range(50):
        if not _alive(int(pid_file.read_text())):
            break
        time.sleep(0.2)
    assert not _alive(int(pid_file.read_text()))
    assert warm_workers.run([SCRIPT, "env"], _env(), tmp_path / "a.log") == 0


def test_a_killed_runner_takes_its_server_and_child_along(tmp_path):
    pid_file = tmp_path / "pid"
    runner = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import os
        from nnunet_transfer import warm_workers
        warm_workers.run([{SCRIPT!r}, "sleep", {str(pid_file)!r}], dict(os.environ), {str(tmp_path / 'a.log')!r})
        """)], cwd=Path(__file__).resolve().parents[1])
    deadline = time.monotonic() + 120
    while not pid_file.is_file() and time.monotonic() < deadline and runner.poll() is None:
        time.sleep(0.2)
    assert pid_file.is_file(), "the command did not start"
    child = int(pid_file.read_text())
    runner.kill()
    runner.wait()
    for _ in range(50):
        if not _alive(child):
            break
        time.sleep(0.2)
    assert not _alive(child), "the command outlived its killed runner"


def test_a_server_that_cannot_start_says_why_once(tmp_path, monkeypatch):
    monkeypatch.setattr(warm_workers, "_unavailable", set())
    monkeypatch.setattr(sys, "executable", "/bin/false")  # the server's interpreter ends at once
    env = _env(SOMETHING_ELSE="1")  # a key of its own: no idle server of the other tests serves it
    assert warm_workers.enabled(env)
    with pytest.raises(warm_workers.WorkerUnavailable, match="did not start"):
        warm_workers.run([SCRIPT, "env"], env, tmp_path / "a.log")
    assert not warm_workers.enabled(env)  # the caller runs the stock command from now on


def test_cluster_jobs_and_the_switch_use_plain_subprocesses():
    assert warm_workers.enabled({}) == sys.platform.startswith("linux")
    assert not warm_workers.enabled({"SLURM_JOB_ID": "12"})
    assert not warm_workers.enabled({"SUBMITIT_EXECUTOR": "local"})
    assert not warm_workers.enabled({warm_workers.SWITCH: "0"})


@pytest.mark.integration
def test_warm_training_equals_stock_nnunetv2_train_bit_for_bit(planned_tiny, monkeypatch, tmp_path):
    """Same seed, CPU, no augmentation workers: the same weights and losses as ``nnUNetv2_train``."""
    use_folders(monkeypatch, planned_tiny)
    monkeypatch.setenv("nnUNet_n_proc_DA", "0")
    monkeypatch.setenv("nnUNet_def_n_proc", "1")
    fold = Path(planned_tiny["nnUNet_results"]) / "Dataset911_DemoStroke" / \
        "nnUNetTrainerFromScratch__TinyPlans__2d" / "fold_all"
    # a server started for another tree: nnU-Net reads its folders when it uses them, not at import
    warm_workers.warm_up(_env(nnUNet_raw=str(tmp_path), nnUNet_preprocessed=str(tmp_path),
                              nnUNet_results=str(tmp_path), nnUNet_n_proc_DA="0", nnUNet_def_n_proc="1"))
    checkpoints = {}
    for switch in ("0", "1"):
        monkeypatch.setenv(warm_workers.SWITCH, switch)
        log = tmp_path / f"train{switch}.log"
        train("911", "2d", "all", "nnUNetTrainerFromScratch", "TinyPlans", log, device="cpu", progress=False)
        assert ("in a warm worker" in log.read_text().splitlines()[0]) == (switch == "1")
        checkpoints[switch] = torch.load(fold / "checkpoint_final.pth", map_location="cpu", weights_only=False)
        os.rename(fold, fold.with_name(f"fold_all_{switch}"))
    stock, warm = checkpoints["0"], checkpoints["1"]
    assert stock["network_weights"].keys() == warm["network_weights"].keys()
    assert all(torch.equal(stock["network_weights"][k], warm["network_weights"][k]) for k in stock["network_weights"])
    assert stock["logging"]["train_losses"] == warm["logging"]["train_losses"]
    assert stock["logging"]["val_losses"] == warm["logging"]["val_losses"]
