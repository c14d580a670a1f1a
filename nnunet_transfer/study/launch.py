"""The submitit executors: a study's jobs (:class:`.scheduler.Job`) on SLURM, or through submitit's
local executor.

One job for the shared plans, one per pretraining, one per (target, initialisation, strategy,
fold) training with its prediction and evaluation; each runs :func:`.job_entry.run_job`. Which jobs
are done and what each waits for is the scheduler's (:mod:`.scheduler`). On SLURM every job that is
not done is submitted at once with ``afterok`` dependencies on those not done (fine-tuning waits for
its pretraining), so SLURM itself holds back a failed job's dependants; submitit's local executor
has no dependencies, so :func:`.scheduler.drive` starts each job when the scheduler has it ready,
``launcher.max_parallel`` at a time. Jobs record their steps in the same per-step state files as the
local runner, so any launcher can resume what another started. Multi-GPU trainings use nnU-Net's
own ``-num_gpus`` (``launcher.num_gpus``).
"""
from __future__ import annotations

import pandas as pd
import submitit

from nnunet_transfer.errors import NnunetTransferError
from nnunet_transfer.study import slurm, state
from nnunet_transfer.study.job_entry import run_job
from nnunet_transfer.study.paths import activate
from nnunet_transfer.study.requeue import RequeueableJob
from nnunet_transfer.study.scheduler import (BLOCKED, DONE, WAITING, Job, Schedule, drive, job_schedule,  # noqa: F401
                                             jobs)  # Job, jobs: importers' names
from nnunet_transfer.study.sources import record_external_sources
from nnunet_transfer.study.spec import Study

LOCAL_POLL_S = 1.0


def _parameters(study: Study, job: Job, slurm: bool) -> dict:
    launcher = study.launcher
    params = {"name": f"{study.name}:{job.name}", "timeout_min": launcher.timeout_min}
    if slurm:
        params.update({f"slurm_{k}": getattr(launcher, k) for k in ("partition", "account", "qos")
                       if getattr(launcher, k) is not None})
        params["gpus_per_node"] = _gpus(study, job)  # the plan: none, planning and preprocessing run on CPUs
        params["cpus_per_task"] = launcher.cpus_per_task
        if launcher.mem_gb is not None:
            params["mem_gb"] = launcher.mem_gb
        params["slurm_signal_delay_s"] = launcher.signal_delay_s  # --signal=USR2@N: the job requeues itself
    return params


def _gpus(study: Study, job: Job) -> int:
    launcher = study.launcher
    return 0 if job.name.split("/")[0] == "plan" else (launcher.gpus_per_node if launcher.gpus_per_node is not None
                                         else launcher.num_gpus)


def plan_jobs(study: Study, live: dict[str, str] | None = None, stuck: dict[str, str] | None = None,
              all_jobs: list[Job] | None = None) -> pd.DataFrame:
    """What would be submitted: job, steps, dependencies, its ``state`` now (the scheduler's, with the
    failed job a blocked one comes from or the job a waiting one waits for) and ``submit`` (``done``
    jobs are not submitted; with SLURM, ``live`` jobs, queued or running, are not submitted again,
    ``stuck`` ones are cancelled and submitted again). ``all_jobs``: the study's, when made already."""
    live, stuck = live or {}, stuck or {}
    all_jobs = jobs(study) if all_jobs is None else all_jobs
    schedule = job_schedule(study, all_jobs)

    def now(job: Job) -> str:
        now, blocker = schedule.state(job.name), schedule.blocker(job.name)
        return f"{now} ({blocker})" if now in (BLOCKED, WAITING) else now

    def status(job: Job) -> str:
        if schedule.state(job.name) == DONE:
            return "no (done)"
        if job.name in stuck:
            return f"again (job {stuck[job.name]} can never start: a job it waits for was cancelled or failed)"
        if job.name in live:
            return f"no (job {live[job.name]} queued or running)"
        return "yes"
    return pd.DataFrame([{"job": j.name, "steps": ", ".join(j.steps), "after": ", ".join(j.deps) or "-",
                          "state": now(j), "submit": status(j)} for j in all_jobs])


def _submit_slurm(study: Study, pending: list[Job], live: dict[str, str]) -> dict[str, str]:
    """Submit ``pending`` with ``afterok`` dependencies (on jobs submitted now or still live);
    returns job name -> id. When sbatch refuses one, every job this call submitted is cancelled
    and NnunetTransferError names the job and sbatch's reason."""
    executor = submitit.AutoExecutor(folder=study.folder / "submitit", cluster="slurm",
                                     slurm_max_num_timeout=study.launcher.max_requeues)
    job_entry = RequeueableJob(run_job, study.folder, study.launcher.max_requeues)  # time limit: requeued
    ids, submitted, record = dict(live), [], slurm.read_record(study)
    for job in pending:
        after = [ids[d] for d in job.deps if d in ids]
        extra = {"dependency": "afterok:" + ":".join(after)} if after else {}
        executor.update_parameters(**_parameters(study, job, True), slurm_additional_parameters=extra)
        try:
            ids[job.name] = executor.submit(job_entry, str(study.path), list(job.steps)).job_id
        except Exception as e:  # noqa: BLE001 - submitit raises a bare Exception / CalledProcessError for sbatch
            slurm.cancel(submitted)
            reason = str(getattr(e, "stderr", None) or e).strip().splitlines()
            raise NnunetTransferError(
                f"sbatch refused job {job.name}: {reason[-1] if reason else type(e).__name__}. The "
                f"{len(submitted)} job(s) submitted before it were cancelled; nothing of this submission is "
                f"queued.") from None
        submitted.append(ids[job.name])
        record[job.name] = ids[job.name]
        slurm.write_record(study, record)  # written job by job: a crash leaves no unrecorded job behind
    return ids


def submit(study: Study, kind: str, dry_run: bool = False) -> pd.DataFrame:
    """Submit the study's pending jobs (``kind``: ``slurm`` or ``submitit-local``); with ``dry_run`` only
    return what would be submitted. Local jobs are awaited, each started when the scheduler has it
    ready (``launcher.max_parallel`` at a time; a failed job holds back only its dependants); SLURM
    jobs are submitted with dependencies and not awaited, after their requests are checked against
    the partition (:mod:`nnunet_transfer.study.slurm`); jobs still queued or running are not
    submitted again. Returns the job table with the job ids."""
    activate(study)  # fail here, not on the cluster, when the nnU-Net folders are missing
    live, stuck = slurm.live_jobs(study) if kind == "slurm" else ({}, {})
    if not dry_run:  # checkpoints given as sources: recorded before any job (and the jobs made), checked by each
        record_external_sources(study)
    all_jobs = jobs(study)
    schedule = job_schedule(study, all_jobs)
    table = plan_jobs(study, live, stuck, all_jobs)
    if dry_run:
        return table
    if kind == "slurm":
        slurm.cancel(list(stuck.values()))
        live = {name: i for name, i in live.items() if name not in stuck}
        pending = [j for j in all_jobs if schedule.state(j.name) != DONE and j.name not in live]
        if pending:
            slurm.check_requests(study, slurm.partition(study.launcher.partition),
                                 max(_gpus(study, j) for j in pending))
        ids = _submit_slurm(study, pending, live)
    else:
        ids = _run_local(study, all_jobs, schedule.restarted())
    table["job_id"] = table["job"].map(ids).fillna("")
    return table


def _run_local(study: Study, all_jobs: list[Job], schedule: Schedule) -> dict[str, str]:
    """Run the jobs through submitit's local executor, each when the scheduler has it ready,
    ``launcher.max_parallel`` at a time; returns job name -> id. Raises NnunetTransferError naming
    the failed steps (with their errors and logs) after every job that could run has run."""
    executor = submitit.AutoExecutor(folder=study.folder / "submitit", cluster="local")
    by_name, ids = {j.name: j for j in all_jobs}, {}

    def start(name: str, slot: int) -> submitit.Job:
        executor.update_parameters(**_parameters(study, by_name[name], False))
        handle = executor.submit(run_job, str(study.path), list(by_name[name].steps))
        ids[name] = handle.job_id
        return handle

    def poll(handle: submitit.Job) -> bool | None:
        return None if not handle.done() else handle.exception() is None

    drive(schedule, list(range(study.launcher.max_parallel)), start, poll, poll_s=LOCAL_POLL_S)
    failed = [s for name in schedule.nodes(state.FAILED) for s in by_name[name].steps
              if state.read_state(study.folder, s)["status"] != DONE]
    if failed:
        blocked = [s for name in schedule.nodes(BLOCKED) for s in by_name[name].steps]
        detail = "; ".join(f"{s}: {state.read_state(study.folder, s).get('error', 'did not finish')} "
                           f"(log: {state.read_state(study.folder, s).get('log', '-')})" for s in failed)
        raise NnunetTransferError(f"a submitit-local job failed: {detail}"
                                  + (f"; {len(blocked)} step(s) depending on it did not run" if blocked else ""))
    return ids


if __name__ == "__main__":  # the child command of earlier versions; now nnunet_transfer.study.job_entry
    import sys

    from nnunet_transfer.study.job_entry import main
    main(sys.argv[1:])
