"""A real single-node SLURM cluster for a test, from Debian's ``slurm-wlm`` and ``munge`` packages.

No systemd here: each daemon is started by hand and stopped by the pid it wrote, and only the
daemons this helper started are stopped (a munge that was already running stays). The controller
and the node daemon listen on free ports and read a ``slurm.conf`` in a temporary folder; every
SLURM command (and every job, which inherits the environment) finds it through ``SLURM_CONF``.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Iterator

DAEMONS = ("slurmctld", "slurmd", "munged", "sbatch", "squeue", "sinfo", "scancel", "munge", "unmunge")
MUNGE_RUN = Path("/run/munge")
SHORT = "short"  # a partition with a one-minute time limit


def missing() -> str | None:
    """Why a cluster cannot be started here, or None."""
    absent = [d for d in DAEMONS if shutil.which(d) is None and not Path("/usr/sbin", d).is_file()]
    if absent:
        return f"SLURM / munge not installed ({', '.join(absent)} missing; apt-get install slurm-wlm munge)"
    if os.geteuid() != 0:
        return "starting slurmd and munged needs root"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _munge_works() -> bool:
    encode = subprocess.run(["munge", "-n"], capture_output=True)
    return encode.returncode == 0 and subprocess.run(["unmunge"], input=encode.stdout,
                                                     capture_output=True).returncode == 0


def _start_munge() -> int | None:
    """Start munged as user munge unless a working one runs; returns the pid it started, or None."""
    if _munge_works():
        return None
    MUNGE_RUN.mkdir(parents=True, exist_ok=True)
    shutil.chown(MUNGE_RUN, "munge", "munge")
    key = Path("/etc/munge/munge.key")
    if not key.is_file():
        subprocess.run(["mungekey", "--create"], check=True)
        shutil.chown(key, "munge", "munge")
    subprocess.run(["su", "-s", "/bin/sh", "munge", "-c", "/usr/sbin/munged --force"], check=True)
    for _ in range(50):
        if _munge_works():
            return int((MUNGE_RUN / "munged.pid").read_text())
        time.sleep(0.1)
    raise RuntimeError("munged did not start")


def _node_line() -> str:
    """This machine as ``slurmd -C`` describes it, with a default memory per CPU so that jobs
    without --mem do not take the whole node."""
    first = subprocess.run(["slurmd", "-C"], capture_output=True, text=True, check=True).stdout.splitlines()[0]
    fields = dict(item.split("=", 1) for item in first.split())
    return " ".join(f"{k}={v}" for k, v in fields.items() if k != "UpTime")


def _write_conf(folder: Path, node: str) -> Path:
    fields = dict(item.split("=", 1) for item in node.split())
    memory = int(fields["RealMemory"]) * 3 // 4
    node = node.replace(f"RealMemory={fields['RealMemory']}", f"RealMemory={memory}")
    conf = folder / "slurm.conf"
    conf.write_text("\n".join([
        "ClusterName=nnunettransfertest", f"SlurmctldHost={fields['NodeName']}", "SlurmUser=root",
        f"SlurmctldPort={_free_port()}", f"SlurmdPort={_free_port()}", "AuthType=auth/munge",
        f"StateSaveLocation={folder / 'state'}", f"SlurmdSpoolDir={folder / 'spool'}",
        f"SlurmctldPidFile={folder / 'slurmctld.pid'}", f"SlurmdPidFile={folder / 'slurmd.pid'}",
        f"SlurmctldLogFile={folder / 'slurmctld.log'}", f"SlurmdLogFile={folder / 'slurmd.log'}",
        "ProctrackType=proctrack/linuxproc", "TaskPlugin=task/none", "SelectType=select/cons_tres",
        "SelectTypeParameters=CR_Core_Memory", f"DefMemPerCPU={memory // int(fields['CPUs'])}",
        "SchedulerType=sched/backfill", "MailProg=/bin/true", "ReturnToService=2", "KillWait=5",
        # a job past its time limit is ended a minute later (the job requeues itself on SLURM's warning
        # signal before that), and a requeued job may start again after 10 s instead of 120
        "OverTimeLimit=1", "AuthInfo=cred_expire=10",
        f"{node} State=UNKNOWN", f"PartitionName=debug Nodes={fields['NodeName']} Default=YES MaxTime=INFINITE "
        f"State=UP", f"PartitionName={SHORT} Nodes={fields['NodeName']} MaxTime=1 State=UP", ""]))
    for sub in ("state", "spool"):
        (folder / sub).mkdir(exist_ok=True)
    return conf


def _stop(pid: int | None, timeout: float = 10) -> None:
    if not pid:
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


@contextlib.contextmanager
def single_node_cluster(folder: Path) -> Iterator[dict[str, str]]:
    """A running one-node cluster (partitions ``debug``, no time limit, and :data:`SHORT`, one minute);
    yields the environment its commands need."""
    folder.mkdir(parents=True, exist_ok=True)
    munged = _start_munge()
    conf = _write_conf(folder, _node_line())
    env = dict(os.environ, SLURM_CONF=str(conf))
    pids: list[int] = []
    try:
        for daemon in ("slurmctld", "slurmd"):
            subprocess.run([daemon, "-f", str(conf)], env=env, check=True)
            pid_file = folder / f"{daemon}.pid"
            for _ in range(100):
                if pid_file.is_file() and pid_file.read_text().strip():
                    break
                time.sleep(0.05)
            pids.append(int(pid_file.read_text()))
        for _ in range(200):
            state = subprocess.run(["sinfo", "-h", "-o", "%T"], env=env, capture_output=True, text=True).stdout
            if set(state.split()) == {"idle"}:  # one line per partition
                break
            time.sleep(0.1)
        else:
            raise RuntimeError(f"the node did not become idle: {state!r}; see {folder / 'slurmctld.log'}")
        yield env
    finally:
        for pid in reversed(pids):
            _stop(pid)
        _stop(munged)
