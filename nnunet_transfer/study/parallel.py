"""Several GPUs on one machine: the study's jobs side by side, one GPU each.

``launcher.gpus = [0, 1, 2, 3]`` (or ``study run --gpus 0 1 2 3``) makes the local launcher run
the jobs of the SLURM launcher (the plan, each pretraining, each trained model with its test) as
child processes, at most one per listed device, each with ``CUDA_VISIBLE_DEVICES`` set to its
device. A job starts when the scheduler (:mod:`.scheduler`) has it ready, the jobs it depends on
done (a fine-tuning after its pretraining, everything after the plan), and a device is free; a
failed job's dependants do not start, the others go on. Each child (:mod:`.job_entry`) runs the
job's steps through the same ``run_step`` as every launcher, so state, logs, resuming and the
runner lock are the local launcher's: a second ``study run`` starts only what is not done.
Children die with the runner (``PR_SET_PDEATHSIG``).
"""
from __future__ import annotations

import functools
import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from tqdm import tqdm

from nnunet_transfer.processes import die_with_parent
from nnunet_transfer.study import state
from nnunet_transfer.study.paths import activate
from nnunet_transfer.study.scheduler import BLOCKED, POLL_S, Job, drive, job_schedule, jobs
from nnunet_transfer.study.sources import record_external_sources
from nnunet_transfer.study.spec import Study


def job_command(study: Study, job: Job) -> list[str]:
    """The child process of one job: this installation's interpreter running the job's steps."""
    return [sys.executable, "-m", "nnunet_transfer.study.job_entry", str(study.path), *job.steps]


def job_log(study: Study, job: Job) -> Path:
    """Where a job's own output goes (the steps' nnU-Net logs are in ``logs/`` as always)."""
    return study.folder / "logs" / f"{state.step_file_stem(job.name)}.job.log"


def run_parallel(study: Study, devices: Sequence[str], progress: bool = True,
                 command: Callable[[Study, Job], list[str]] = job_command) -> list[str]:
    """Run every job that is not done, at most one per device at a time, respecting dependencies.

    Returns the ids of the steps that failed (those of jobs that did not finish). Holds the study's
    runner lock; records or checks external sources first, as ``run_local`` does.
    """
    activate(study)
    devices = [str(d) for d in devices]
    with state.runner_lock(study.folder):
        record_external_sources(study)
        all_jobs = jobs(study)  # after the record: a hub checkpoint planned like is read from its recorded file
        by_name = {j.name: j for j in all_jobs}
        schedule = job_schedule(study, all_jobs).restarted()
        bar = tqdm(total=len(all_jobs), initial=len(schedule.nodes(state.DONE)),
                   desc=f"study {study.name} on {len(devices)} devices", unit="job", disable=not progress)

        def start(name: str, device: str) -> _Child:
            log = job_log(study, by_name[name])
            log.parent.mkdir(parents=True, exist_ok=True)
            handle = open(log, "a", encoding="utf-8")
            env = dict(os.environ, CUDA_VISIBLE_DEVICES=device)
            try:
                proc = subprocess.Popen(command(study, by_name[name]), env=env, stdout=handle, stderr=subprocess.STDOUT,
                                        preexec_fn=functools.partial(die_with_parent, os.getpid()))
            except BaseException:
                handle.close()
                raise
            return _Child(by_name[name], device, proc, handle)

        def poll(child: _Child) -> bool | None:
            if child.proc.poll() is None:
                return None
            child.log.close()
            if child.proc.returncode == 0 and _done(study, child.job):
                bar.update()
                return True
            tqdm.write(f"FAILED {child.job.name} on device {child.device} (exit {child.proc.returncode}); log: "
                       f"{job_log(study, child.job)}")
            return False

        drive(schedule, devices, start, poll, poll_s=POLL_S)
        bar.close()
    return [s for name in schedule.nodes(state.FAILED, BLOCKED) for s in by_name[name].steps
            if state.read_state(study.folder, s)["status"] != state.DONE]


@dataclass
class _Child:
    job: Job
    device: str
    proc: subprocess.Popen
    log: IO[str]


def _done(study: Study, job: Job) -> bool:
    return all(state.read_state(study.folder, s)["status"] == state.DONE for s in job.steps)
