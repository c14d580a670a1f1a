"""Several GPUs on one machine: the study's jobs side by side, one GPU each.

``launcher.gpus = [0, 1, 2, 3]`` (or ``study run --gpus 0 1 2 3``) makes the local launcher run
the jobs of the SLURM launcher (the plan, each pretraining, each trained model with its test) as
child processes, at most one per listed device, each with ``CUDA_VISIBLE_DEVICES`` set to its
device. A job starts when the jobs it depends on are done (a fine-tuning after its pretraining,
everything after the plan) and a device is free; a failed job's dependants do not start, the
others go on. Each child runs the job's steps through the same ``run_step`` as every launcher, so
state, logs, resuming and the runner lock are the local launcher's: a second ``study run`` starts
only what is not done. Children die with the runner (``PR_SET_PDEATHSIG``).
"""
from __future__ import annotations

import functools
import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from tqdm import tqdm

from nnunet_transfer.processes import die_with_parent
from nnunet_transfer.study import state
from nnunet_transfer.study.launch import Job, job_pending, jobs
from nnunet_transfer.study.sources import record_external_sources
from nnunet_transfer.study.spec import Study
from nnunet_transfer.study.steps import activate

POLL_S = 0.2


def job_command(study: Study, job: Job) -> list[str]:
    """The child process of one job: this installation's interpreter running the job's steps."""
    return [sys.executable, "-m", "nnunet_transfer.study.launch", str(study.path), *job.steps]


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
        done = {j.name for j in all_jobs if not job_pending(study, j)}
        pending = [j for j in all_jobs if j.name not in done]
        failed: set[str] = set()
        running: dict[str, tuple[Job, subprocess.Popen, object]] = {}
        free = list(devices)
        bar = tqdm(total=len(all_jobs), initial=len(done), desc=f"study {study.name} on {len(devices)} devices",
                   unit="job", disable=not progress)
        while pending or running:
            for job in list(pending):
                if any(d in failed for d in job.deps):  # blocked for good: its dependency failed
                    pending.remove(job)
                    failed.add(job.name)
                elif free and all(d in done for d in job.deps):
                    device = free.pop(0)
                    log = job_log(study, job)
                    log.parent.mkdir(parents=True, exist_ok=True)
                    handle = open(log, "a", encoding="utf-8")
                    env = dict(os.environ, CUDA_VISIBLE_DEVICES=device)
                    try:
                        proc = subprocess.Popen(command(study, job), env=env, stdout=handle,
                                                stderr=subprocess.STDOUT,
                                                preexec_fn=functools.partial(die_with_parent, os.getpid()))
                    except BaseException:
                        handle.close()
                        raise
                    running[device] = (job, proc, handle)
                    pending.remove(job)
            if not running:
                break  # nothing can start: the rest waits on failed jobs
            time.sleep(POLL_S)
            for device, (job, proc, handle) in list(running.items()):
                if proc.poll() is None:
                    continue
                handle.close()
                del running[device]
                free.append(device)
                free.sort(key=devices.index)
                if proc.returncode == 0 and not job_pending(study, job):
                    done.add(job.name)
                    bar.update()
                else:
                    failed.add(job.name)
                    tqdm.write(f"FAILED {job.name} on device {device} (exit {proc.returncode}); log: "
                               f"{job_log(study, job)}")
        bar.close()
    by_name = {j.name: j for j in all_jobs}
    return [s for name in failed for s in by_name[name].steps
            if state.read_state(study.folder, s)["status"] != state.DONE]
