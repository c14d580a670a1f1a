"""What the SLURM launcher asks of the cluster before and around submitting.

- The partition: ``sinfo`` says how many CPUs, how much memory and how many GPUs (GRES ``gpu``)
  its nodes have and its time limit; a job asking for more would stay pending for ever or be
  refused by ``sbatch`` half-way through a submission, so such a request is refused before
  anything is submitted, naming the ``[launcher]`` key to change.
- The jobs already in the queue: every submitted job's id is recorded in
  ``<study>/submitit/slurm_jobs.json``; ``squeue`` says which are still queued or running, and those
  are not submitted again (their dependants wait on them). A job that can never start because a
  job it depends on was cancelled or failed (``DependencyNeverSatisfied``) is cancelled and
  submitted again with the rest.
"""
from __future__ import annotations

import getpass
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from nnunet_transfer.errors import NnunetTransferError
from nnunet_transfer.io import read_json, write_json_atomic
from nnunet_transfer.study.spec import Study

RECORD_FILE = "slurm_jobs.json"
LIVE_STATES = ("PENDING", "RUNNING", "CONFIGURING", "COMPLETING", "REQUEUED", "RESIZING", "SUSPENDED")
NEVER = "DependencyNeverSatisfied"


def _run(cmd: list[str]) -> str:
    if shutil.which(cmd[0]) is None:
        raise NnunetTransferError(f"{cmd[0]} not found: the slurm launcher needs SLURM's commands on PATH (run "
                                  f"`study run` on the cluster's login node)")
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        raise NnunetTransferError(f"`{' '.join(cmd)}` failed: {(out.stderr or out.stdout).strip()[:300]}")
    return out.stdout


@dataclass(frozen=True)
class Partition:
    name: str
    cpus: int  # per node, the largest node
    mem_mb: int  # per node
    gpus: int  # GRES gpu per node
    time_limit_min: int | None  # None: infinite


def _number(text: str) -> int:
    match = re.match(r"\d+", text)
    return int(match.group()) if match else 0


def _gpus(gres: str) -> int:
    """GPUs in a GRES string: ``gpu:4``, ``gpu:a100:4(S:0-1)``, ``gpu:2,shard:8``, ``(null)``."""
    total = 0
    for item in gres.split(","):
        parts = item.split("(")[0].split(":")
        if parts[0] == "gpu":
            total += _number(parts[-1]) if len(parts) > 1 else 1
    return total


def _minutes(limit: str) -> int | None:
    """SLURM's time limit (``minutes``, ``minutes:seconds``, ``hours:minutes:seconds``,
    ``days-hours[:minutes[:seconds]]``, ``infinite``) in whole minutes, rounded up; None: none."""
    if limit.strip().lower() in ("infinite", "unlimited", "n/a", ""):
        return None
    days = 0
    if "-" in limit:
        head, limit = limit.split("-", 1)
        days = int(head)
        hours, minutes, seconds = ([int(p) for p in limit.split(":")] + [0, 0])[:3]
    else:
        parts = [int(p) for p in limit.split(":")]
        if len(parts) == 1:
            hours, minutes, seconds = 0, parts[0], 0
        elif len(parts) == 2:
            hours, minutes, seconds = 0, parts[0], parts[1]
        else:
            hours, minutes, seconds = parts[-3:]
    return (days * 24 + hours) * 60 + minutes + (1 if seconds else 0)


def partition(name: str | None) -> Partition:
    """The partition's nodes as ``sinfo`` describes them (the default partition when ``name`` is None)."""
    cmd = ["sinfo", "-h", "-o", "%P|%c|%m|%G|%l"] + (["-p", name] if name else [])
    rows = [line.split("|") for line in _run(cmd).splitlines() if line.strip()]
    if name is None:
        rows = [r for r in rows if r[0].endswith("*")]
    if not rows:
        raise NnunetTransferError(f"sinfo knows no partition {name!r}" if name else
                                  "sinfo shows no default partition; set launcher.partition in the study file")
    limits = [_minutes(r[4]) for r in rows]
    return Partition(rows[0][0].rstrip("*"), max(_number(r[1]) for r in rows), max(_number(r[2]) for r in rows),
                     max(_gpus(r[3]) for r in rows), None if None in limits else max(limits))


def check_requests(study: Study, part: Partition, gpus: int) -> None:
    """Refuse requests the partition's nodes cannot meet, naming the key to change."""
    launcher, where = study.launcher, f"partition {part.name!r}"
    problems = []
    if launcher.cpus_per_task > part.cpus:
        problems.append(f"launcher.cpus_per_task = {launcher.cpus_per_task}, but the nodes of {where} have "
                        f"{part.cpus} CPUs: set cpus_per_task = {part.cpus} or less")
    if gpus > part.gpus:
        problems.append(f"launcher.gpus_per_node = {gpus}, but {where} offers "
                        f"{part.gpus or 'no'} GPUs per node (sinfo GRES): "
                        + ("set gpus_per_node = 0 to train on its CPUs, or choose a GPU partition" if not part.gpus
                           else f"set gpus_per_node = {part.gpus} or less"))
    if launcher.mem_gb is not None and launcher.mem_gb * 1024 > part.mem_mb:
        problems.append(f"launcher.mem_gb = {launcher.mem_gb}, but the nodes of {where} have "
                        f"{part.mem_mb / 1024:.1f} GB")
    if part.time_limit_min is not None and launcher.timeout_min > part.time_limit_min:
        problems.append(f"launcher.timeout_min = {launcher.timeout_min}, but {where} allows "
                        f"{part.time_limit_min} minutes")
    if launcher.signal_delay_s >= launcher.timeout_min * 60:
        problems.append(f"launcher.signal_delay_s = {launcher.signal_delay_s}, but a job runs at most "
                        f"launcher.timeout_min = {launcher.timeout_min} minutes: it would be warned (and requeued) "
                        f"as it starts; set signal_delay_s below {launcher.timeout_min * 60}")
    if problems:
        raise NnunetTransferError(f"{study.path}: the jobs would never run on {where}: " + "; ".join(problems)
                                  + ". Nothing was submitted.")


def record_path(study: Study) -> Path:
    return study.folder / "submitit" / RECORD_FILE


def read_record(study: Study) -> dict[str, str]:
    """Job name -> the SLURM job id it was last submitted as."""
    path = record_path(study)
    return read_json(path) if path.is_file() else {}


def write_record(study: Study, record: dict[str, str]) -> None:
    write_json_atomic(record, record_path(study))


def queue(job_ids: list[str]) -> dict[str, tuple[str, str]]:
    """Job id -> (state, reason) of those of ``job_ids`` still in SLURM's queue."""
    if not job_ids:
        return {}
    # this user's jobs, filtered here: squeue -j fails when every id asked for has left the queue
    out = _run(["squeue", "-h", "-u", getpass.getuser(), "-o", "%i|%T|%r"])
    found = {}
    for line in out.splitlines():
        if line.count("|") == 2:
            job_id, state, reason = line.strip().split("|")
            if job_id in job_ids:
                found[job_id] = (state, reason)
    return found


def live_jobs(study: Study) -> tuple[dict[str, str], dict[str, str]]:
    """``(live, stuck)``: job name -> id of the study's recorded jobs that are queued or running,
    and of those among them that can never start (a job they depend on was cancelled or failed)."""
    record = read_record(study)
    states = queue(sorted(set(record.values())))
    live = {name: i for name, i in record.items() if states.get(i, ("",))[0] in LIVE_STATES}
    stuck = {name: i for name, i in live.items() if NEVER in states[i][1]}
    return live, stuck


def cancel(job_ids: list[str]) -> None:
    if job_ids:
        subprocess.run(["scancel", *job_ids], capture_output=True, text=True)
