"""Run a study's steps as cluster jobs through submitit: SLURM, or submitit's local executor.

One job for the shared plans, one per pretraining, one per (target, initialisation, strategy,
fold) training with its prediction and evaluation. On SLURM every job is submitted at once with
``afterok`` dependencies (fine-tuning waits for its pretraining); submitit's local executor has
no dependencies, so jobs go in waves. Jobs record their steps in the same per-step state files
as the local runner, so any launcher can resume what another started. Multi-GPU trainings use
nnU-Net's own ``-num_gpus`` (``launcher.num_gpus``).
"""
from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
import submitit

from nnunet_transfer.processes import forked_children_die_on_sigterm
from nnunet_transfer.errors import NnunetTransferError
from nnunet_transfer.study import slurm, state
from nnunet_transfer.study.runner import run_step
from nnunet_transfer.study.sources import record_external_sources
from nnunet_transfer.study.spec import Study, load_study
from nnunet_transfer.study.steps import Step, activate, expand


@dataclass(frozen=True)
class Job:
    name: str
    steps: tuple[str, ...]
    deps: tuple[str, ...]  # names of jobs that must succeed first


def jobs(study: Study) -> list[Job]:
    """The study's jobs in dependency order (the plans, pretrainings, then one job per trained model)."""
    steps = expand(study)
    out = [Job(s.id, (s.id,), s.deps) for s in steps if s.kind in ("plan", "pretrain")]
    for step in steps:
        if step.kind == "train":
            out.append(Job(step.id.replace("train/", "run/", 1), (step.id, step.id.replace("train/", "test/", 1)),
                           step.deps))
    return out


def run_job(study_file: str, step_ids: list[str]) -> list[str]:
    """Job entry point (runs on the cluster node): run the given steps of the study in order."""
    forked_children_die_on_sigterm()  # else nnU-Net's pools hang under submitit's SIGTERM handler
    study = load_study(study_file)
    activate(study)
    by_id: dict[str, Step] = {s.id: s for s in expand(study)}
    for step_id in step_ids:
        run_step(study, by_id[step_id])
    return step_ids


def job_pending(study: Study, job: Job) -> bool:
    """Whether a step of ``job`` is not done."""
    return any(state.read_state(study.folder, s)["status"] != state.DONE for s in job.steps)


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
    return params


def _gpus(study: Study, job: Job) -> int:
    launcher = study.launcher
    return 0 if job.name.split("/")[0] == "plan" else (launcher.gpus_per_node if launcher.gpus_per_node is not None
                                         else launcher.num_gpus)


def plan_jobs(study: Study, live: dict[str, str] | None = None, stuck: dict[str, str] | None = None
              ) -> pd.DataFrame:
    """What would be submitted: job, steps, dependencies, status (``done`` jobs are not submitted;
    with SLURM, ``live`` jobs, queued or running, are not submitted again, ``stuck`` ones are
    cancelled and submitted again)."""
    live, stuck = live or {}, stuck or {}

    def status(job: Job) -> str:
        if not job_pending(study, job):
            return "no (done)"
        if job.name in stuck:
            return f"again (job {stuck[job.name]} can never start: a job it waits for was cancelled or failed)"
        if job.name in live:
            return f"no (job {live[job.name]} queued or running)"
        return "yes"
    return pd.DataFrame([{"job": j.name, "steps": ", ".join(j.steps), "after": ", ".join(j.deps) or "-",
                          "submit": status(j)} for j in jobs(study)])


def _submit_slurm(study: Study, pending: list[Job], live: dict[str, str]) -> dict[str, str]:
    """Submit ``pending`` with ``afterok`` dependencies (on jobs submitted now or still live);
    returns job name -> id. When sbatch refuses one, every job this call submitted is cancelled
    and NnunetTransferError names the job and sbatch's reason."""
    executor = submitit.AutoExecutor(folder=study.folder / "submitit", cluster="slurm")
    ids, submitted, record = dict(live), [], slurm.read_record(study)
    for job in pending:
        after = [ids[d] for d in job.deps if d in ids]
        extra = {"dependency": "afterok:" + ":".join(after)} if after else {}
        executor.update_parameters(**_parameters(study, job, True), slurm_additional_parameters=extra)
        try:
            ids[job.name] = executor.submit(run_job, str(study.path), list(job.steps)).job_id
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
    return what would be submitted. Local jobs are awaited wave by wave (``launcher.max_parallel``
    at a time); SLURM jobs are submitted with dependencies and not awaited, after their requests
    are checked against the partition (:mod:`nnunet_transfer.study.slurm`); jobs still queued or
    running are not submitted again. Returns the job table with the job ids."""
    activate(study)  # fail here, not on the cluster, when the nnU-Net folders are missing
    live, stuck = slurm.live_jobs(study) if kind == "slurm" else ({}, {})
    if not dry_run:  # checkpoints given as sources: recorded before any job (and the jobs made), checked by each
        record_external_sources(study)
    table = plan_jobs(study, live, stuck)
    if dry_run:
        return table
    if kind == "slurm":
        slurm.cancel(list(stuck.values()))
        live = {name: i for name, i in live.items() if name not in stuck}
        pending = [j for j in jobs(study) if job_pending(study, j) and j.name not in live]
        if pending:
            slurm.check_requests(study, slurm.partition(study.launcher.partition),
                                 max(_gpus(study, j) for j in pending))
        ids = _submit_slurm(study, pending, live)
    else:
        ids = {}
        pending = [j for j in jobs(study) if job_pending(study, j)]
        executor = submitit.AutoExecutor(folder=study.folder / "submitit", cluster="local")
        max_parallel = study.launcher.max_parallel
        remaining = list(pending)
        while remaining:
            ready = [j for j in remaining if all(d not in {r.name for r in remaining} for d in j.deps)][:max_parallel]
            if not ready:
                break
            submitted = []
            for job in ready:
                executor.update_parameters(**_parameters(study, job, False))
                submitted.append((job, executor.submit(run_job, str(study.path), list(job.steps))))
            for job, handle in submitted:
                ids[job.name] = handle.job_id
                handle.result()  # raises submitit's FailedJobError with the job's traceback
                remaining.remove(job)
    table["job_id"] = table["job"].map(ids).fillna("")
    return table


if __name__ == "__main__":  # one job in a child process of the multi-GPU local launcher (study.parallel)
    import sys
    run_job(sys.argv[1], sys.argv[2:])
